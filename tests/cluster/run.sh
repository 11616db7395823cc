#!/usr/bin/env bash
# Acceptance run of the local cluster (make test-cluster), on the tests' own instance
# (cluster/test-instance.yml: its own state directory, volumes and kubeconfig; it refuses to
# start while the cluster of `make deploy` runs, and leaves that cluster's data alone):
#   1. take any previous test cluster down, deleting its volumes, and record the host's state
#      (interfaces, iptables chains, ipsets, mounts, kernel settings);
#   2. bring the cluster up, timed from nothing to a Ready node with its add-ons (cold when
#      binaries had to be built, warm when they were cached);
#   3. run the playbook again: nothing may change;
#   4. run the pytest checks (node, version, local image, DNS, volumes, metrics, NodePort on
#      loopback only, NetworkPolicy enforced by the network_policy role, and who reaches etcd,
#      the API server, the kubelet and the keys); renew every certificate (tests/cluster/renew.sh)
#      and check the cluster's security again; expose the
#      NodePorts on the host's addresses (local_cluster_api_exposure=network) and check them
#      there, with the network policy's checks from outside the node; then the `existing`
#      provider end to end against this cluster (tests/existing/run.sh); another instance
#      (another state directory) refuses to start or to be taken down meanwhile;
#   5. take the cluster down: nothing of it is left on the host but its volumes, with their
#      owner and mode; a container that fetches packages over the network still works;
#   6. bring it up once more from the cache (warm time): a claim of the same name finds the
#      file written on the first cluster; take it down, deleting its volumes.
set -euo pipefail
cd "$(dirname "$0")/../.."
export ANSIBLE_CONFIG=cluster/ansible.cfg ANSIBLE_FORCE_COLOR=0
# Per-task timings in the logs under $out.
export ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks
instance=cluster/test-instance.yml
playbook=(ansible-playbook cluster/cluster.yml -e "@$instance")
cache=${FLASK_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flask-k8s}
out=${CLUSTER_TEST_OUT:-build/test-cluster}
mkdir -p "$out" "$cache"
setting() { sed -n "s/^$1: //p" "$instance"; }
cluster_dir=$(setting local_cluster_dir)
volumes_dir=$(setting local_cluster_volumes_dir)
run_dir=$(setting local_cluster_containerd_run_dir)
# The tests (conftest.py, tests/existing/run.sh) reach this instance.
export FLASK_K8S_KUBECONFIG=$cluster_dir/admin.kubeconfig FLASK_K8S_CONTAINERD_ADDRESS=$run_dir/containerd.sock \
    FLASK_K8S_VOLUMES_DIR=$volumes_dir
# Packet forwarding is left on by a teardown, for the software that runs on (docs/local-cluster.md).
shared_sysctls='net.ipv4.ip_forward|net.bridge.bridge-nf-call-iptables|net.bridge.bridge-nf-call-ip6tables'

log() { printf '\n=== %s\n' "$*"; }

# One line per interface, iptables chain, ipset, mount, kernel setting, cluster process (the
# network policy engine's too) and cluster file on the host, sorted (Docker's own interfaces,
# chains and mounts are left out: other work on the machine starts and stops containers
# meanwhile; where / is a private mount, a running dockerd bind-mounts /var/lib/docker itself).
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
        awk '{print "mount " $5}' /proc/self/mountinfo | grep -vE '^mount (/var/lib/docker|/run/docker)(/|$)' || true
        sysctl net.ipv4.conf.all.route_localnet vm.overcommit_memory vm.panic_on_oom kernel.panic \
            kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes 2>/dev/null | sed 's/^/sysctl /'
        for p in /proc/[0-9]*; do
            cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
            case $cmd in
                *"$cluster_dir"*|*"$run_dir"*|*"cluster-service.sh supervise"*|/usr/local/bin/kube-router\ *)
                    echo "process ${p#/proc/} $cmd" ;;
                *) if grep -qE ':/kubepods(/|$)' "$p/cgroup" 2>/dev/null; then echo "process ${p#/proc/} $cmd"; fi ;;
            esac
        done
        for path in "$cluster_dir" "$run_dir" /var/log/containers /run/netns; do
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

# The settings a teardown leaves (packet forwarding) are as the cluster set them or as before.
check_shared_sysctls() {
    local key before now
    for key in ${shared_sysctls//|/ }; do
        before=$(sed -n "s/^$key=//p" "$out/sysctl-before.txt")
        now=$(sysctl -n "$key" 2>/dev/null) || continue
        if [[ $now != "$before" && $now != 1 ]]; then
            echo "FAIL: $key is $now after $1 (before the run: $before, the cluster sets 1)" >&2
            return 1
        fi
        echo "$key=$now after $1 (before the run: $before)"
    done
}

# What a cluster-down keeps: every volume directory the first cluster made, root-owned, with
# the namespace directories and the volumes directory mode 0700 (the volumes themselves: the
# pod's fsGroup, mode 2770, as the kubelet left them).
check_volumes_kept() {
    local listing
    listing=$(find "$volumes_dir" -maxdepth 2 -printf '%P %u %m\n' | sort)
    printf '  %s\n' "${listing//$'\n'/$'\n'  }"
    grep -qx ' root 700' <<<"$listing" || { echo "FAIL: $volumes_dir is not root's with mode 0700" >&2; return 1; }
    if grep -E '^[^/ ]+ ' <<<"$listing" | grep -vqE ' root 700$'; then
        echo "FAIL: a namespace directory of $volumes_dir is not root's with mode 0700" >&2
        return 1
    fi
    grep -qx 'cluster-acceptance/kept root 2770' <<<"$listing" ||
        { echo "FAIL: the volume cluster-acceptance/kept is gone or not root's with mode 2770" >&2; return 1; }
    [[ $(cat "$volumes_dir/cluster-acceptance/kept/survivor.txt" 2>/dev/null) == "written on the first cluster" ]] ||
        { echo "FAIL: the file on the volume cluster-acceptance/kept did not survive cluster-down" >&2; return 1; }
    echo "volumes kept after $1: cluster-acceptance/kept holds the file written on the first cluster"
}

# After a teardown, software that runs on still reaches the network through the host: a
# container of the Docker engine fetches a package from PyPI.
check_container_network() {
    local base=flask-k8s/python-base:bookworm result
    scripts/docker-engine.sh ensure >/dev/null
    BASE_IMAGE=$base scripts/build-base-image.sh >/dev/null
    if ! result=$(timeout 120 docker run --rm "$base" python3 -c '
import re, urllib.request
index = urllib.request.urlopen("https://pypi.org/simple/six/", timeout=30).read().decode()
url = re.search("href=.([^#]*six-1[.]16[.]0-py2[.]py3-none-any[.]whl)", index).group(1)
data = urllib.request.urlopen(url, timeout=30).read()
print(url.rsplit("/", 1)[1], len(data), "bytes")' 2>&1); then
        echo "FAIL: after $1, a container cannot fetch a package over the network:" >&2
        echo "$result" >&2
        return 1
    fi
    echo "after $1, a container fetched $result"
}

# Seconds the poller below waits for a Ready node (a cold cluster-up builds its binaries first).
ready_timeout=${CLUSTER_TEST_READY_TIMEOUT:-3600}

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
            if ((SECONDS - start >= ready_timeout)); then
                echo "FAIL: the node of cluster-up ($1) was not Ready within $ready_timeout s." >&2
                exit 1
            fi
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
    wait "$poller" 2>/dev/null || return 1
    echo "$(cat "$ready_file") $((SECONDS - start))"
}

# down NAME [ANSIBLE ARGS]: cluster-down, keeping the volumes unless the arguments say otherwise.
down() {
    local name=$1
    shift
    "${playbook[@]}" -e local_cluster_state=absent "$@" >"$out/down-$name.log" 2>&1 || {
        tail -n 40 "$out/down-$name.log" >&2
        echo "FAIL: cluster-down ($name) failed; full log $out/down-$name.log" >&2
        return 1
    }
    # The role's last line, which the YAML callback may wrap.
    awk '/Local cluster volumes:/ { on = 1; sub(/^.*msg: ./, "") } on && /^$/ { exit } on { print }' "$out/down-$name.log" |
        tr -s ' \n' '  ' | sed "s/'[[:space:]]*$//"
    echo
}

# Whatever happens, the run ends with the cluster down and its volumes deleted; a teardown
# that fails fails the run.
final_down() {
    local rc=$?
    down final -e local_cluster_delete_volumes=true >/dev/null || rc=1
    exit "$rc"
}
trap final_down EXIT

# On a machine of its own (CI=true, or CLUSTER_TEST_STOP_DOCKER=true), the first cluster-up
# starts the engine through the docker_engine role, as a first `make deploy` on a new machine
# does; the engine then stays up for the image builds. Elsewhere the engine may be serving
# other work, and is left running.
if [[ ${CLUSTER_TEST_STOP_DOCKER:-${CI:-false}} == true ]]; then
    log "Docker engine stopped (if this project started it): cluster-up starts it"
    scripts/docker-engine.sh stop
fi
log "Start from nothing (the tests' instance, its volumes deleted)"
down initial -e local_cluster_delete_volumes=true
host_state >"$out/host-before.txt"
sysctl ${shared_sysctls//|/ } 2>/dev/null | tr -d ' ' >"$out/sysctl-before.txt"

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
"${playbook[@]}" -e local_cluster_state=present >"$out/up-again.log" 2>&1 ||
    { tail -n 40 "$out/up-again.log" >&2; echo "FAIL: the second cluster-up failed; full log $out/up-again.log" >&2; exit 1; }
recap=$(grep -E '^localhost +:' "$out/up-again.log")
echo "$recap"
status=0
if ! grep -qE 'changed=0 .*failed=0' <<<"$recap"; then
    echo "FAIL: the second run changed something:" >&2
    grep -B2 -E '^changed:' "$out/up-again.log" >&2 || true
    status=1
fi

log "Acceptance checks"
pytest -p no:cacheprovider -v -s -m "not second_cluster and not network_exposure" tests/cluster || status=1

log "Certificates renewed by a converge whose renewal threshold is above their remaining life"
if tests/cluster/renew.sh "$cluster_dir" "$out/up-renew.log" "${playbook[@]}"; then
    pytest -p no:cacheprovider -v -s -m "not second_cluster and not network_exposure" \
        tests/cluster/test_cluster_security.py || status=1
else
    status=1
fi

log "NodePorts exposed on the host's addresses (local_cluster_api_exposure=network)"
if "${playbook[@]}" -e local_cluster_state=present -e local_cluster_api_exposure=network >"$out/up-exposed.log" 2>&1; then
    pytest -p no:cacheprovider -v -s -m network_exposure tests/cluster || status=1
else
    tail -n 40 "$out/up-exposed.log" >&2
    echo "FAIL: cluster-up with local_cluster_api_exposure=network failed; full log $out/up-exposed.log" >&2
    status=1
fi

log "Another instance refuses to start or to be taken down while this one runs"
other=/var/lib/flask-k8s/test/other
for state in present absent; do
    if ansible-playbook cluster/cluster.yml -e "local_cluster_dir=$other/cluster" -e "local_cluster_volumes_dir=$other/volumes" \
        -e "local_cluster_containerd_run_dir=/run/flask-k8s/test/other" -e "local_cluster_state=$state" >"$out/other-$state.log" 2>&1; then
        echo "FAIL: another instance (state=$state) ran while this one runs; log $out/other-$state.log" >&2
        status=1
    elif said=$(tr -s ' \n' '  ' <"$out/other-$state.log" | grep -o "Another local cluster runs on this host (state directory $cluster_dir)[^.]*\."); then
        echo "state=$state refused: $said"
    else
        tail -n 20 "$out/other-$state.log" >&2
        echo "FAIL: another instance (state=$state) failed without saying that this one runs" >&2
        status=1
    fi
done
if [[ -e $other ]]; then
    echo "FAIL: the refused instance left $other" >&2
    status=1
fi

log "The existing provider, against this cluster"
start=$SECONDS
if tests/existing/run.sh; then
    echo "existing provider end to end in $((SECONDS - start)) s"
else
    status=1
fi

log "cluster-down (keeps the volumes)"
down first
check_clean teardown || status=1
check_shared_sysctls teardown || status=1
check_volumes_kept teardown || status=1
check_container_network teardown || status=1

log "cluster-up #2 (warm: binaries cached)"
read -r second second_total < <(up second) || true
[[ -n ${second_total:-} ]] || exit 1
echo "time to a Ready node (warm): ${second}s; add-ons available after ${second_total}s"
log "A claim of the same name on the new cluster finds its data"
pytest -p no:cacheprovider -v -s -m second_cluster tests/cluster || status=1
log "cluster-down, deleting the volumes"
down second -e local_cluster_delete_volumes=true
check_clean "second teardown" || status=1
if [[ -n $(find "$volumes_dir" -mindepth 1 -maxdepth 2 -type d ! -empty 2>/dev/null) ]]; then
    echo "FAIL: a volume is left in $volumes_dir after cluster-down with local_cluster_delete_volumes=true" >&2
    status=1
fi

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
