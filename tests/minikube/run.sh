#!/usr/bin/env bash
# Acceptance run of the offline minikube (make test-minikube, docs/minikube.md) on a real
# minikube profile, which it deletes again:
#   1. scripts/minikube-cache.sh (builds what is missing), then `minikube start`, timed;
#   2. checks: the node is Ready at the pinned version and its pods nest in the node
#      container's cgroup; every kube-system pod runs (CoreDNS without loop errors,
#      storage-provisioner from its tagged image); a pod resolves cluster names and, when this
#      host resolves it, an external name; a PersistentVolumeClaim binds and keeps a file; an
#      image built here and loaded with `minikube image load` runs; its NodePort answers from
#      this host on `minikube ip`; the metrics-server add-on serves node and pod metrics;
#   3. a second `minikube start` on the running profile; the minikube role stops the profile
#      (minikube_state: stopped, what `make teardown TEARDOWN_CLUSTER=true` does) and a start
#      finds the file on the PersistentVolumeClaim;
#   4. `minikube delete`: no container, network, volume or cgroup of the profile is left. The
#      node's kubelet sets kernel settings of the host (they are not namespaced); the run puts
#      back those it changed.
# Settings: MINIKUBE_TEST_PROFILE (default flask-k8s-test), MINIKUBE_TEST_OUT (build/test-minikube).
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=${MINIKUBE_TEST_PROFILE:-flask-k8s-test}
out=${MINIKUBE_TEST_OUT:-build/test-minikube}
namespace="minikube-acceptance"
probe_image=flask-k8s/minikube-probe:test
external_name=proxy.golang.org
mkdir -p "$out"
out=$(cd "$out" && pwd)
# minikube writes the profile's context here, not into the user's kubeconfig.
export KUBECONFIG=$out/kubeconfig
failures=0

log() { printf '\n=== %s\n' "$*"; }
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# wait_for SECONDS WHAT COMMAND...: run COMMAND every 2 s until it succeeds; a progress line
# every 30 s; false when the time is up.
wait_for() {
  local limit=$1 what=$2 start=$SECONDS next=30
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS - start >= limit)); then
      echo "  $what: not within ${limit}s" >&2
      return 1
    fi
    if ((SECONDS - start >= next)); then
      echo "  waiting for $what ($((SECONDS - start))s)"
      next=$((next + 30))
    fi
    sleep 2
  done
}

log "Offline cache (scripts/minikube-cache.sh)"
summary=$(scripts/minikube-cache.sh)
value() { sed -n "s/^$1=//p" <<<"$summary"; }
minikube=$(value minikube)
kubectl=$(value kubectl)
kubernetes_version=$(value kubernetes_version)
read -ra start_args <<<"$(value start_args)"
read -ra addon_args <<<"$(value addon_metrics_server_args)"
read -ra load_images <<<"$(value load_images)"
if [[ -n $(value minikube_home) ]]; then export MINIKUBE_HOME; MINIKUBE_HOME=$(value minikube_home); fi
# minikube compares the kubectl on PATH with the cluster's version: let it find the built one.
export PATH="${kubectl%/*}:$PATH"
mk() { "$minikube" -p "$profile" "$@"; }
kc() { "$kubectl" --context "$profile" "$@"; }

cleanup() {
  if mk status >/dev/null 2>&1 || docker inspect "$profile" >/dev/null 2>&1; then
    echo "deleting profile $profile"
    mk delete >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
cleanup

# Controllers attached to no cgroup v1 hierarchy on the host (they belong to cgroup2); the
# node must not take them.
unattached() { awk 'NR > 1 && $2 == 0 { print $1 }' /proc/cgroups | sort | tr '\n' ' '; }
unattached_before=$(unattached)
# The kernel settings the kubelet adjusts, as they were before the node existed.
kernel_settings=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
sysctl -e "${kernel_settings[@]}" >"$out/sysctl-before.txt"

log "minikube start -p $profile ${start_args[*]} --wait=all"
start=$SECONDS
mk start "${start_args[@]}" --wait=all 2>&1 | tee "$out/start-1.log"
start_seconds=$((SECONDS - start))
echo "minikube start to a Ready node with its system pods: ${start_seconds}s"
node_id=$(docker inspect -f '{{.Id}}' "$profile")

log "Checks"
if [[ $(kc get nodes -o 'jsonpath={.items[0].status.conditions[?(@.type=="Ready")].status} {.items[0].status.nodeInfo.kubeletVersion}') == "True $kubernetes_version" ]]; then
  pass "the node is Ready and runs $kubernetes_version"
else
  fail "the node is not Ready at $kubernetes_version: $(kc get nodes -o wide)"
fi
# Every cgroup (of any hierarchy, cgroup2 included) of the node's pod processes, as the host
# sees them, must lie below the node container's.
outside=$(
  for f in /proc/[0-9]*/cgroup; do
    if grep -q ":/docker/$node_id/kubepods" "$f" 2>/dev/null; then grep -v ":/docker/$node_id" "$f" || true; fi
  done | sort -u
)
if [[ -d /sys/fs/cgroup/cpu/docker/$node_id/kubepods && -d /sys/fs/cgroup/memory/docker/$node_id/kubepods ]] &&
  [[ -z $outside && $(unattached) == "$unattached_before" ]]; then
  pass "the pods' cgroups nest in the node container's (/docker/${node_id:0:12}/kubepods), in every hierarchy; no controller taken from the host"
else
  fail "the pods' cgroups do not all nest in /docker/$node_id ($outside), or the node took a controller (before: $unattached_before, now: $(unattached))"
fi

all_running() {
  [[ -z $(kc -n kube-system get pods --no-headers | awk '$3 != "Running" || split($2, r, "/") && r[1] != r[2]') ]]
}
if wait_for 180 "every kube-system pod Running and ready" all_running; then
  pass "every kube-system pod is Running: $(kc -n kube-system get pods --no-headers | awk '{printf "%s ", $1}')"
else
  fail "kube-system pods not all Running: $(kc -n kube-system get pods)"
fi
coredns_log=$(kc -n kube-system logs -l k8s-app=kube-dns --tail=-1)
restarts=$(kc -n kube-system get pods -l k8s-app=kube-dns -o 'jsonpath={.items[*].status.containerStatuses[*].restartCount}')
if grep -qi 'loop' <<<"$coredns_log" || [[ $restarts =~ [1-9] ]]; then
  fail "CoreDNS reports a loop or restarted ($restarts): $(grep -i loop <<<"$coredns_log" | head -3)"
else
  pass "CoreDNS runs without loop errors or restarts"
fi
provisioner_image=$(kc -n kube-system get pod storage-provisioner -o 'jsonpath={.spec.containers[0].image}')
if [[ $provisioner_image =~ ^gcr.io/k8s-minikube/storage-provisioner:v[0-9]+$ ]]; then
  pass "storage-provisioner runs $provisioner_image"
else
  fail "storage-provisioner image is '$provisioner_image'"
fi

log "A locally built image, loaded with minikube image load"
ctx=$(mktemp -d)
(cd tests/cluster/probe && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$ctx/probe" .)
cp tests/cluster/Dockerfile.probe "$ctx/Dockerfile"
docker build -q -t "$probe_image" "$ctx" >/dev/null
rm -rf "$ctx"
mk image load "$probe_image"
kc create namespace "$namespace" >/dev/null
kc apply -n "$namespace" -f - >/dev/null <<EOF
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: web, labels: {app: web}}
  spec:
    securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
    containers:
    - name: probe
      image: $probe_image
      imagePullPolicy: Never
      args: [serve, ":8080"]
      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
      resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {memory: 64Mi}}
- apiVersion: v1
  kind: Service
  metadata: {name: web}
  spec:
    type: NodePort
    selector: {app: web}
    ports: [{port: 80, targetPort: 8080}]
- apiVersion: v1
  kind: PersistentVolumeClaim
  metadata: {name: data}
  spec:
    accessModes: [ReadWriteOnce]
    resources: {requests: {storage: 16Mi}}
EOF
if kc -n "$namespace" wait --for=condition=Ready pod/web --timeout=120s >/dev/null; then
  pass "a pod runs the image built here and loaded with minikube image load ($probe_image, imagePullPolicy Never)"
else
  fail "the pod of the loaded image does not run: $(kc -n "$namespace" describe pod web | tail -n 15)"
fi

pod_succeeded() { [[ $(kc -n "$namespace" get pod "$1" -o 'jsonpath={.status.phase}') == Succeeded ]]; }

# run_pod NAME ARGS [VOLUME_CLAIM]: a pod running the probe once with ARGS (a YAML list), the
# claim mounted at /data; prints its log.
run_pod() {
  local name=$1 args=$2 claim=${3:-}
  {
    echo "{apiVersion: v1, kind: Pod, metadata: {name: $name}, spec: {restartPolicy: Never,"
    echo "  containers: [{name: probe, image: $probe_image, imagePullPolicy: Never, args: $args"
    if [[ -n $claim ]]; then
      echo "    , volumeMounts: [{name: data, mountPath: /data}]}]"
      echo "  , volumes: [{name: data, persistentVolumeClaim: {claimName: $claim}}]}}"
    else
      echo "    }]}}"
    fi
  } | kc apply -n "$namespace" -f - >/dev/null
  wait_for 120 "pod $name to finish" pod_succeeded "$name" ||
    { kc -n "$namespace" describe pod "$name" | tail -n 15 >&2; return 1; }
  kc -n "$namespace" logs "$name"
}

names=(kubernetes.default.svc.cluster.local "web.$namespace.svc.cluster.local")
host_resolves=false
if getent hosts "$external_name" >/dev/null; then host_resolves=true names+=("$external_name"); fi
lookup_json=$(printf '"%s",' lookup "${names[@]}")
if answers=$(run_pod lookup "[${lookup_json%,}]") && [[ $(grep -c '[0-9]' <<<"$answers") -eq ${#names[@]} ]]; then
  pass "a pod resolves ${names[*]} through CoreDNS$([[ $host_resolves == true ]] || echo " (this host does not resolve $external_name)")"
else
  fail "name resolution in a pod: ${answers:-no answer}"
fi

if run_pod write '[write, /data/file, persisted]' data >/dev/null &&
  [[ $(run_pod read '[cat, /data/file]' data) == persisted ]] &&
  [[ $(kc -n "$namespace" get pvc data -o 'jsonpath={.status.phase}') == Bound ]]; then
  pass "a PersistentVolumeClaim binds ($(kc -n "$namespace" get pvc data -o 'jsonpath={.spec.storageClassName}')) and keeps a file across pods"
else
  fail "PersistentVolumeClaim: $(kc -n "$namespace" get pvc data -o wide)"
fi

node_port=$(kc -n "$namespace" get service web -o 'jsonpath={.spec.ports[0].nodePort}')
url=http://$(mk ip):$node_port/
if reply=$(curl -fsS --max-time 10 "$url") && [[ $reply == "probe web"* ]]; then
  pass "the NodePort answers from this host: $url -> $reply"
else
  fail "NodePort $url: ${reply:-no answer}"
fi

log "metrics-server add-on"
mk image load "${load_images[@]}"
mk addons enable metrics-server "${addon_args[@]}"
top_numbers() {
  kc top nodes --no-headers | grep -q '[0-9]m' && kc top pods -A --no-headers | grep -q "$namespace .*[0-9]m"
}
if wait_for 240 "node and pod metrics" top_numbers; then
  pass "metrics-server serves node and pod metrics"
  kc top nodes
  kc top pods -A
else
  fail "no node or pod metrics: $(kc -n kube-system get pods -l k8s-app=metrics-server) $(kc top pods -A 2>&1 | tail -3)"
fi

log "Second minikube start on the running profile"
start=$SECONDS
mk start "${start_args[@]}" --wait=all 2>&1 | tee "$out/start-2.log"
second_seconds=$((SECONDS - start))
if kc -n "$namespace" get pod web -o 'jsonpath={.status.phase}' | grep -q Running; then
  pass "a second minikube start (${second_seconds}s) keeps the profile and its workloads running"
else
  fail "after a second minikube start the workload is gone"
fi

log "The minikube role stops the profile, and a start finds the volume's file"
start=$SECONDS
ansible-playbook -i localhost, tests/minikube/stop.yml -e "minikube_profile=$profile" \
  -e minikube_offline=true ${MINIKUBE_HOME:+-e "minikube_home=$MINIKUBE_HOME"} >"$out/stop.log" 2>&1 ||
  fail "the minikube role's stop: $(tail -n 15 "$out/stop.log")"
[[ $(mk status -o json 2>/dev/null | tail -n 1) == *'"Host":"Stopped"'* ]] || fail "the profile is not stopped: $(mk status 2>&1 | tail -n 3)"
mk start "${start_args[@]}" --wait=all >"$out/start-3.log" 2>&1 || fail "minikube start after a stop: $(tail -n 5 "$out/start-3.log")"
restart_seconds=$((SECONDS - start))
kc -n "$namespace" delete pod read --ignore-not-found --wait=true >/dev/null
if kept=$(run_pod read '[cat, /data/file]' data) && [[ $kept == persisted ]]; then
  pass "after the role's stop and a start (${restart_seconds}s) the PersistentVolumeClaim still holds its file"
else
  fail "after the role's stop and a start the volume lost its file: ${kept:-no answer}"
fi

log "minikube delete -p $profile"
start=$SECONDS
mk delete
delete_seconds=$((SECONDS - start))
left=$(
  docker ps -a --filter "label=name.minikube.sigs.k8s.io=$profile" --format 'container {{.Names}}'
  docker network ls --filter "name=^$profile\$" --format 'network {{.Name}}'
  docker volume ls --filter "name=^$profile\$" --format 'volume {{.Name}}'
  for c in cpu memory pids systemd; do [[ ! -e /sys/fs/cgroup/$c/docker/$node_id ]] || echo "cgroup $c/docker/$node_id"; done
)
if [[ -z $left ]]; then
  pass "minikube delete (${delete_seconds}s) leaves no container, network, volume or cgroup of the profile"
else
  fail "left after minikube delete: $left"
fi
while read -r key _ value; do
  if [[ $(sysctl -n "$key") != "$value" ]]; then
    echo "restoring $key = $value (the node's kubelet set $(sysctl -n "$key"))"
    sysctl -q -w "$key=$value"
  fi
done <"$out/sysctl-before.txt"

log "Times"
{
  echo "minikube start to a Ready node with its system pods: ${start_seconds}s"
  echo "second minikube start on the running profile: ${second_seconds}s"
  echo "the role's stop and a start: ${restart_seconds:-?}s"
  echo "minikube delete: ${delete_seconds}s"
} | tee "$out/times.txt"
if ((failures > 0)); then
  echo "FAILED: $failures check(s)" >&2
  exit 1
fi
echo "all checks passed"
