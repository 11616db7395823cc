#!/usr/bin/env bash
# Acceptance run of the local cluster (make test-cluster):
#   1. take any previous cluster down and record the host's state (interfaces, iptables chains,
#      mounts, kernel settings);
#   2. bring the cluster up, timed from nothing to a Ready node with its add-ons (cold when
#      binaries had to be built, warm when they were cached);
#   3. run the playbook again: nothing may change;
#   4. run the pytest checks (node, version, local image, DNS, PVC, metrics, NodePort);
#   5. take the cluster down and check that nothing of it is left on the host;
#   6. bring it up once more from the cache (warm time) and take it down again.
set -euo pipefail
cd "$(dirname "$0")/../.."
export ANSIBLE_CONFIG=cluster/ansible.cfg ANSIBLE_FORCE_COLOR=0
playbook=(ansible-playbook cluster/cluster.yml)
cache=${FLASK_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flask-k8s}
out=${CLUSTER_TEST_OUT:-build/test-cluster}
mkdir -p "$out" "$cache"
cluster_dir=/var/lib/flask-k8s/cluster

log() { printf '\n=== %s\n' "$*"; }

host_state() {
    {
        echo "## interfaces"
        ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -vE '^veth' | sort
        echo "## veth on the cluster bridge"
        ip -o link show master fk8s0 2>/dev/null | awk -F': ' '{print $2}' | sort
        for tool in iptables ip6tables; do
            for table in filter nat mangle raw; do
                echo "## $tool $table chains"
                "$tool" -t "$table" -S 2>/dev/null | awk '$1 == "-N" {print $2}' | grep -vE '^DOCKER' | sort
            done
        done
        echo "## mounts"
        awk '{print $5}' /proc/self/mountinfo | grep -vE '^/var/lib/docker/|^/run/docker/' | sort
        echo "## kernel settings"
        sysctl net.ipv4.ip_forward net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables \
            vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops 2>/dev/null
        echo "## cluster processes"
        for p in /proc/[0-9]*; do
            cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
            case $cmd in
                *"$cluster_dir"*|*"$cache/bin/"*|*/run/flask-k8s/containerd*) echo "${p#/proc/} $cmd" ;;
            esac
        done
        echo "## files"
        for path in "$cluster_dir" /run/flask-k8s/containerd /tmp/hostpath_pv; do
            [[ -e $path ]] && echo "$path"
        done
        true
    }
}

check_clean() {
    host_state >"$out/host-after-$1.txt"
    if ! diff -u "$out/host-before.txt" "$out/host-after-$1.txt"; then
        echo "FAIL: the cluster left something on the host after $1 (diff above)" >&2
        return 1
    fi
    echo "host clean after $1: no process, iptables chain, mount, interface or file of the cluster left"
}

up() {
    local start=$SECONDS
    "${playbook[@]}" -e local_cluster_state=present >"$out/up-$1.log" 2>&1 || {
        tail -n 40 "$out/up-$1.log" >&2
        echo "FAIL: cluster-up ($1) failed; full log $out/up-$1.log" >&2
        return 1
    }
    echo $((SECONDS - start))
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

log "Docker engine (shared by the image builds; it stays up)"
scripts/docker-engine.sh ensure
log "Start from nothing"
down initial
host_state >"$out/host-before.txt"

missing=$(cluster/build.sh --status all | awk '$3 == "missing" {print $1}' | xargs)
kind=warm
[[ -z $missing ]] || kind=cold
log "cluster-up #1 ($kind${missing:+: builds $missing})"
first=$(up first)
echo "time to Ready ($kind): ${first}s"
if [[ $kind == cold ]]; then
    echo "$first $(date -u +%FT%TZ)" >"$cache/cold-time-to-ready"
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

log "cluster-down"
down first
check_clean teardown || status=1

log "cluster-up #2 (warm: binaries cached)"
second=$(up second)
echo "time to Ready (warm): ${second}s"
down second
check_clean "second teardown" || status=1

log "Summary"
if [[ $kind == cold ]]; then
    echo "cold time to Ready (with builds): ${first}s"
elif [[ -f $cache/cold-time-to-ready ]]; then
    read -r cold when <"$cache/cold-time-to-ready"
    echo "cold time to Ready (with builds): ${cold}s (measured $when; binaries were cached this time)"
else
    echo "cold time to Ready: not measured (binaries were already cached)"
fi
echo "warm time to Ready (cached binaries): ${second}s (first run this time: ${first}s, $kind)"
((status == 0)) && echo "test-cluster: PASS" || echo "test-cluster: FAIL"
exit "$status"
