#!/usr/bin/env bash
# Take the local cluster down and remove what it left on the host. Idempotent; prints one
# line per kind of thing it removed, and "nothing to remove" when the host was already clean.
# Environment (set by the local_cluster role):
#   FLASK_K8S_CLUSTER_DIR   state directory (pidfiles, logs, certificates, kubelet and containerd roots)
#   FLASK_K8S_RUN_DIR       runtime directory of the cluster's containerd (socket, state)
#   FLASK_K8S_BRIDGE        name of the CNI bridge
#   FLASK_K8S_SERVICES      components in start order (stopped in reverse)
#   FLASK_K8S_HOSTPATH_DIR  directory of the host-path provisioner's volumes
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
dir=${FLASK_K8S_CLUSTER_DIR:-/var/lib/flask-k8s/cluster}
rundir=${FLASK_K8S_RUN_DIR:-/run/flask-k8s/containerd}
bridge=${FLASK_K8S_BRIDGE:-fk8s0}
services=${FLASK_K8S_SERVICES:-containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy}
hostpath_dir=${FLASK_K8S_HOSTPATH_DIR:-/tmp/hostpath_pv}
here=$(cd "$(dirname "$0")" && pwd)
did=()

# 1. Stop the kubelet first so that it starts no new pod, then every container of the
#    cluster's containerd, then the remaining components in reverse start order.
for svc in kubelet; do
    [[ $("$here/cluster-service.sh" stop "$svc" 2>/dev/null) == stopped ]] && did+=("process $svc")
done
sock=$rundir/containerd.sock
if [[ -S $sock ]] && ctr -a "$sock" version >/dev/null 2>&1; then
    for ns in $(ctr -a "$sock" namespaces ls -q 2>/dev/null); do
        for task in $(ctr -a "$sock" -n "$ns" tasks ls -q 2>/dev/null); do
            ctr -a "$sock" -n "$ns" tasks kill -s SIGKILL "$task" >/dev/null 2>&1
            did+=("container $task")
        done
        sleep 1
        for task in $(ctr -a "$sock" -n "$ns" tasks ls -q 2>/dev/null); do
            ctr -a "$sock" -n "$ns" tasks delete -f "$task" >/dev/null 2>&1
        done
    done
fi
for svc in $(tr ' ' '\n' <<<"$services" | tac); do
    [[ $svc == kubelet ]] && continue
    if [[ $svc == kube-proxy && -x $(head -n1 "$dir/run/kube-proxy.cmd" 2>/dev/null) ]]; then
        "$here/cluster-service.sh" stop kube-proxy >/dev/null 2>&1 && did+=("process kube-proxy")
        "$(head -n1 "$dir/run/kube-proxy.cmd")" --cleanup >/dev/null 2>&1
        continue
    fi
    [[ $("$here/cluster-service.sh" stop "$svc" 2>/dev/null) == stopped ]] && did+=("process $svc")
done

# 2. Processes left behind: supervisors and containerd shims of the cluster, components
#    running one of the cluster's binaries with the cluster's directory on their command line,
#    and anything still in the kubelet's pod cgroups. Each is killed by its pid.
binaries=$(for f in "$dir"/run/*.cmd; do [[ -f $f ]] && head -n1 "$f"; done | sort -u)
for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
    exe=$(readlink "$p/exe" 2>/dev/null) || exe=''
    exe=${exe% (deleted)}
    if [[ $cmd == *containerd-shim*"-address $sock"* ]] ||
        [[ $cmd == *"$here/cluster-service.sh supervise "* ]] ||
        { [[ -n $exe ]] && grep -qxF "$exe" <<<"$binaries" && [[ $cmd == *"$dir/"* ]]; } ||
        grep -qE ':/kubepods(/|$)' "$p/cgroup" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null && did+=("process $pid")
    fi
done
sleep 0.5

# 3. Mounts under the cluster's directories and the pods' network namespaces.
mapfile -t mounts < <(awk '{print $5}' /proc/self/mountinfo |
    grep -E "^($dir|$rundir|/run/netns/cni-|/var/run/netns/cni-)" | sort -r)
for m in "${mounts[@]}"; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    did+=("mount $m")
done
for ns in /run/netns/cni-*; do
    [[ -e $ns ]] && rm -f "$ns"
done

# 4. Network interfaces: the pods' veth ends on the bridge, then the bridge.
if ip link show "$bridge" >/dev/null 2>&1; then
    for veth in $(ip -o link show master "$bridge" | awk -F': ' '{print $2}' | cut -d@ -f1); do
        ip link delete "$veth" 2>/dev/null
    done
    ip link delete "$bridge" && did+=("interface $bridge")
fi

# 5. iptables chains created by kube-proxy, the kubelet, the CNI plugins and the network policy
#    engine, kube-router (KUBE-*, CNI-*): first the rules that jump to them, then the chains.
for tool in iptables ip6tables; do
    command -v "$tool" >/dev/null || continue
    for table in filter nat mangle raw; do
        rules=$("$tool" -t "$table" -S 2>/dev/null) || continue
        while IFS= read -r rule; do
            # shellcheck disable=SC2086 # the rule is iptables-save syntax, split on purpose
            eval "$tool -t $table -D ${rule#-A }" 2>/dev/null
        done < <(grep -E '^-A .* -j (KUBE-|CNI-)' <<<"$rules" | grep -vE '^-A (KUBE-|CNI-)')
        chains=$(grep -oE '^-N (KUBE-|CNI-)[^ ]*' <<<"$rules" | cut -d' ' -f2)
        grep -qE '^(KUBE-ROUTER-|KUBE-NWPLCY-|KUBE-POD-FW-)' <<<"$chains" && policy_engine_ran=true
        for chain in $chains; do "$tool" -t "$table" -F "$chain" 2>/dev/null; done
        for chain in $chains; do
            "$tool" -t "$table" -X "$chain" 2>/dev/null && did+=("$tool chain $table/$chain")
        done
    done
done

# 5b. The network policy engine's ipsets (KUBE-SRC-*, KUBE-DST-*, their inet6: twins and its
#     TMP-* swap sets), now that no rule refers to them. The host needs the ipset tool to see
#     them: it is installed when the engine's chains showed that it ran.
if [[ ${policy_engine_ran:-false} == true ]] && ! command -v ipset >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q ipset >/dev/null 2>&1 ||
        echo "cluster-cleanup.sh: could not install ipset; kube-router's ipsets may remain" >&2
fi
if command -v ipset >/dev/null; then
    for set in $(ipset list -n 2>/dev/null | grep -E '^(inet6:)?(KUBE-SRC-|KUBE-DST-|TMP-)[A-Z2-7]{16}$'); do
        ipset destroy "$set" 2>/dev/null && did+=("ipset $set")
    done
fi

# 6. Kernel settings changed for the cluster, back to the values saved before it started.
if [[ -f $dir/sysctl-before ]]; then
    while IFS='=' read -r key value; do
        [[ -n $key ]] && sysctl -qw "$key=$value" 2>/dev/null
    done <"$dir/sysctl-before"
    did+=("sysctls restored")
fi

# 7. The kubelet's pod cgroups.
for cg in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d $cg ]] || continue
    find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
    did+=("cgroup $cg")
done

# 8. Files: state, runtime directory, provisioned volumes, and the directories outside them
#    that the cluster created (listed in host-paths-created when it first started).
# The kubelet links every container's log into /var/log/containers.
if [[ -d /var/log/containers ]] && [[ -n $(find /var/log/containers -maxdepth 1 -type l -lname "$dir/*" -print -quit) ]]; then
    find /var/log/containers -maxdepth 1 -type l -lname "$dir/*" -delete
    did+=("files /var/log/containers/*")
fi
created=()
[[ -f $dir/host-paths-created ]] && mapfile -t created <"$dir/host-paths-created"
for path in "$dir" "$rundir" "$hostpath_dir"; do
    [[ -e $path ]] && rm -rf "$path" && did+=("files $path")
done
for path in "${created[@]}"; do
    [[ -n $path && -d $path ]] || continue
    find "$path" -depth -type d -empty -delete 2>/dev/null
    [[ -e $path ]] || did+=("files $path")
done

if ((${#did[@]})); then printf '%s\n' "${did[@]}" | sort -u; else echo "nothing to remove"; fi
