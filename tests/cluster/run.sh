#!/usr/bin/env bash
# Acceptance run of the local cluster (make test-cluster):
#   1. take any previous cluster down and record the host's state (interfaces, iptables chains, ipsets,
#      mounts, kernel settings);
#   2. bring the cluster up, timed from nothing to a Ready node with its add-ons (cold when
#      binaries had to be built, warm when they were cached);
#   3. run the playbook again: nothing may change;
#   4. run the pytest checks (node, version, local image, DNS, PVC, metrics, NodePort, and
#      NetworkPolicy enforced by the network_policy role), then the `existing` provider end to
#      end against this cluster (tests/existing/run.sh);
#   5. take the cluster down and check that nothing of it is left on the host;
#   6. bring it up once more from the cache (warm time) and take it down again.
set -euo pipefail
cd "$(dirname "$0")/../.."
export ANSIBLE_CONFIG=cluster/ansible.cfg ANSIBLE_FORCE_COLOR=0
# Per-task timings in the logs under $out.
export ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks
playbook=(ansible-playbook cluster/cluster.yml)
cache=${FLASK_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flask-k8s}
out=${CLUSTER_TEST_OUT:-build/test-cluster}
mkdir -p "$out" "$cache"
cluster_dir=/var/lib/flask-k8s/cluster

log() { printf '\n=== %s\n' "$*"; }

# One line per interface, iptables chain, ipset, mount, kernel setting, cluster process (the
# network policy engine's too) and cluster file on the host, sorted (Docker's own interfaces,
# chains and mounts are left out: other work on the machine starts and stops containers
# meanwhile).
host_state() {
    {
        ip -o link show | awk -F': ' '{print "interface " $2}' | cut -d@ -f1 | grep -vE '^interface (veth|docker0$)'
        { ip -o link show master fk8s0 2>/dev/null || true; } | awk -F': ' '{print "interface on fk8s0 " $2}'
        for tool in iptables ip6tables; do
            for table in filter nat mangle raw; do
                "$tool" -t "$table" -S 2>/dev/null | awk -v t="$tool $table" '$1 == "-N" {print "chain " t " " $2}' |
                    grep -v ' DOCKER' || true
            done
        done
        if command -v ipset >/dev/null; then ipset list -n | sed 's/^/ipset /'; fi
        awk '{print "mount " $5}' /proc/self/mountinfo | grep -vE '^mount (/var/lib/docker/|/run/docker/)' || true
        sysctl net.ipv4.ip_forward net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables \
            net.bridge.bridge-nf-call-ip6tables vm.overcommit_memory vm.panic_on_oom kernel.panic \
            kernel.panic_on_oops 2>/dev/null | sed 's/^/sysctl /'
        for p in /proc/[0-9]*; do
            cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
            case $cmd in
                *"$cluster_dir"*|*"$cache/bin/"*|*/run/flask-k8s/containerd*|*"cluster-service.sh supervise"*|\
                /usr/local/bin/kube-router\ *)
                    echo "process ${p#/proc/} $cmd" ;;
            esac
        done
        for path in "$cluster_dir" /run/flask-k8s/containerd /tmp/hostpath_pv /var/log/containers /run/netns; do
            if [[ -e $path ]]; then echo "file $path"; fi
        done
    } | sort -u
}

# Fails when the host has anything (listed by host_state) that it did not have before the run.
check_clean() {
    local left
    host_state >"$out/host-after-$1.txt"
    left=$(comm -13 "$out/host-before.txt" "$out/host-after-$1.txt")
    if [[ -n $left ]]; then
        echo "FAIL: the cluster left this on the host after $1:" >&2
        echo "$left" >&2
        return 1
    fi
    echo "host clean after $1: no process, iptables chain, mount, interface, setting or file of the cluster left"
}

# Time from nothing to a Ready node (polled every second beside the playbook) and to the end
# of the playbook (add-ons available). Prints "<seconds to Ready node> <seconds to playbook end>".
up() {
    local start=$SECONDS kubectl poller ready_file=$out/ready-$1
    kubectl=$(cluster/build.sh --status kubectl | cut -d' ' -f2)
    rm -f "$ready_file"
    (
        until [[ -x $kubectl ]] && "$kubectl" --kubeconfig "$cluster_dir/admin.kubeconfig" get nodes \
            -o 'jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}' 2>/dev/null |
            grep -q True; do
            sleep 1
        done
        echo $((SECONDS - start)) >"$ready_file"
    ) &
    poller=$!
    if ! "${playbook[@]}" -e local_cluster_state=present >"$out/up-$1.log" 2>&1; then
        kill "$poller" 2>/dev/null || true
        tail -n 40 "$out/up-$1.log" >&2
        echo "FAIL: cluster-up ($1) failed; full log $out/up-$1.log" >&2
        return 1
    fi
    wait "$poller" 2>/dev/null || true
    echo "$(cat "$ready_file" 2>/dev/null || echo '?') $((SECONDS - start))"
}

down() {
    "${playbook[@]}" -e local_cluster_state=absent >"$out/down-$1.log" 2>&1 || {
        tail -n 40 "$out/down-$1.log" >&2
        echo "FAIL: cluster-down ($1) failed; full log $out/down-$1.log" >&2
        return 1
    }
}

# Whatever happens, the run ends with the cluster down.
trap 'down final >/dev/null 2>&1 || true' EXIT

# The first cluster-up starts the engine through the docker_engine role, as a first
# `make deploy` on a new machine does; the engine then stays up for the image builds.
log "Docker engine stopped (if this project started it): cluster-up starts it"
scripts/docker-engine.sh stop
log "Start from nothing"
down initial
host_state >"$out/host-before.txt"

missing=$(cluster/build.sh --status all | awk '$3 == "missing" {print $1}' | xargs)
kind=warm
[[ -z $missing ]] || kind=cold
log "cluster-up #1 ($kind${missing:+: builds $missing})"
read -r first first_total < <(up first) || true
[[ -n ${first_total:-} ]] || exit 1
echo "time to a Ready node ($kind): ${first}s; add-ons available after ${first_total}s"
if [[ $kind == cold ]]; then
    echo "$first $first_total $(date -u +%FT%TZ)" >"$cache/cold-time-to-ready"
fi

log "Second run changes nothing"
"${playbook[@]}" -e local_cluster_state=present >"$out/up-again.log" 2>&1
recap=$(grep -E '^localhost +:' "$out/up-again.log")
echo "$recap"
status=0
if ! grep -qE 'changed=0 .*failed=0' <<<"$recap"; then
    echo "FAIL: the second run changed something:" >&2
    grep -B2 -E '^changed:' "$out/up-again.log" >&2 || true
    status=1
fi

log "Acceptance checks"
pytest -p no:cacheprovider -v -s tests/cluster || status=1

log "The existing provider, against this cluster"
start=$SECONDS
if tests/existing/run.sh; then
    echo "existing provider end to end in $((SECONDS - start)) s"
else
    status=1
fi

log "cluster-down"
down first
check_clean teardown || status=1

log "cluster-up #2 (warm: binaries cached)"
read -r second second_total < <(up second) || true
[[ -n ${second_total:-} ]] || exit 1
echo "time to a Ready node (warm): ${second}s; add-ons available after ${second_total}s"
down second
check_clean "second teardown" || status=1

log "Summary"
if [[ $kind == cold ]]; then
    echo "cold time to a Ready node (with builds): ${first}s (add-ons available: ${first_total}s)"
elif [[ -f $cache/cold-time-to-ready ]]; then
    read -r cold cold_total when <"$cache/cold-time-to-ready"
    echo "cold time to a Ready node (with builds): ${cold}s (add-ons: ${cold_total}s; measured $when, binaries were cached this time)"
else
    echo "cold time to a Ready node: not measured here (binaries were already cached)"
fi
echo "warm time to a Ready node (cached binaries): ${second}s (add-ons available: ${second_total}s)"
echo "first run this time ($kind): ${first}s (add-ons available: ${first_total}s)"
((status == 0)) && echo "test-cluster: PASS" || echo "test-cluster: FAIL"
exit "$status"
