# shellcheck shell=bash
# What of a local cluster lives on the host besides its files: its processes, mounts, pod
# network, iptables chains, ipsets and pod cgroups, and the functions that remove them. Sourced
# by cluster-cleanup.sh (a cluster taken down) and scripts/simulate-reboot.sh (a cluster lost to
# a restart of the host). Each function appends what it removed to the array `did`.

# True when something is mounted at or below $1.
mounted_below() {
    awk -v p="$1" '$5 == p || index($5, p "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# The socket of the containerd of the cluster whose state directory is $1 (from its
# configuration), or nothing.
cluster_containerd_socket() {
    local config
    config=$(sed -n 's/^--config=//p' "$1/run/containerd.cmd" 2>/dev/null)
    [[ -n $config ]] || return 0
    awk '/^\[grpc\]/ { grpc = 1; next } /^\[/ { grpc = 0 } grpc && $1 == "address" { gsub(/"/, "", $3); print $3 }' "$config" 2>/dev/null
}

# cluster_kill_processes DIR SOCKET: SIGKILL to every process of the cluster whose state
# directory is DIR: the components' supervisors and the components (a cluster binary with DIR
# on its command line), the shims of its containerd (SOCKET), and everything in the kubelet's
# pod cgroups. Twice, for what a dying supervisor started meanwhile.
cluster_kill_processes() {
    local dir=$1 sock=$2 binaries p pid cmd exe _
    binaries=$(for f in "$dir"/run/*.cmd; do [[ -f $f ]] && head -n1 "$f"; done | sort -u)
    for _ in 1 2; do
        for p in /proc/[0-9]*; do
            pid=${p#/proc/}
            [[ $pid != "$$" ]] || continue
            cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
            exe=$(readlink "$p/exe" 2>/dev/null) || exe=''
            exe=${exe% (deleted)}
            if { [[ -n $sock ]] && [[ $cmd == *containerd-shim*"-address $sock"* ]]; } ||
                { [[ $cmd == *"cluster-service.sh supervise "* ]] &&
                    tr '\0' '\n' 2>/dev/null <"$p/environ" | grep -qxF "FLASK_K8S_CLUSTER_DIR=$dir"; } ||
                { [[ -n $exe ]] && grep -qxF "$exe" <<<"$binaries" && [[ $cmd == *"$dir/"* ]]; } ||
                grep -qE ':/kubepods(/|$)' "$p/cgroup" 2>/dev/null; then
                kill -KILL "$pid" 2>/dev/null && did+=("process $pid")
            fi
        done
        sleep 0.5
    done
}

# cluster_unmount DIR RUNDIR: every mount under the state and runtime directories, and the
# pods' network namespaces.
cluster_unmount() {
    local dir=$1 rundir=$2 m ns mounts
    mapfile -t mounts < <(awk '{print $5}' /proc/self/mountinfo |
        grep -E "^($dir|$rundir|/run/netns/cni-|/var/run/netns/cni-)" | sort -r)
    for m in "${mounts[@]}"; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
        did+=("mount $m")
    done
    for ns in /run/netns/cni-*; do
        [[ -e $ns ]] && rm -f "$ns" && did+=("network namespace $ns")
    done
}

# cluster_remove_network BRIDGE: the pods' veth ends on the bridge and the bridge; the iptables
# chains of kube-proxy, the kubelet, the CNI plugins and the network policy engine, kube-router
# (KUBE-*, CNI-*: first the rules that jump to them, then the chains); the engine's ipsets.
cluster_remove_network() {
    local bridge=$1 veth tool table rules rule chains chain set policy_engine_ran=false
    if ip link show "$bridge" >/dev/null 2>&1; then
        for veth in $(ip -o link show master "$bridge" | awk -F': ' '{print $2}' | cut -d@ -f1); do
            ip link delete "$veth" 2>/dev/null
        done
        ip link delete "$bridge" && did+=("interface $bridge")
    fi
    for tool in iptables ip6tables; do
        command -v "$tool" >/dev/null || continue
        for table in filter nat mangle raw; do
            rules=$("$tool" -t "$table" -S 2>/dev/null) || continue
            while IFS= read -r rule; do
                # shellcheck disable=SC2086 # the rule is iptables-save syntax, split on purpose
                eval "$tool -t $table -D ${rule#-A }" 2>/dev/null
            done < <(grep -E '^-A .* -j (KUBE-|CNI-)' <<<"$rules" | grep -vE '^-A (KUBE-|CNI-)')
            chains=$(grep -oE '^-N (KUBE-|CNI-)[^ ]*' <<<"$rules" | cut -d' ' -f2)
            if grep -qE '^(KUBE-ROUTER-|KUBE-NWPLCY-|KUBE-POD-FW-)' <<<"$chains"; then policy_engine_ran=true; fi
            for chain in $chains; do "$tool" -t "$table" -F "$chain" 2>/dev/null; done
            for chain in $chains; do
                "$tool" -t "$table" -X "$chain" 2>/dev/null && did+=("$tool chain $table/$chain")
            done
        done
    done
    # The network policy engine's ipsets (KUBE-SRC-*, KUBE-DST-*, their inet6: twins and its
    # TMP-* swap sets), now that no rule refers to them. The host needs the ipset tool to see
    # them: it is installed when the engine's chains showed that it ran.
    if [[ $policy_engine_ran == true ]] && ! command -v ipset >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q ipset >/dev/null 2>&1 ||
            echo "cluster-host.sh: could not install ipset; kube-router's ipsets may remain" >&2
    fi
    if command -v ipset >/dev/null; then
        for set in $(ipset list -n 2>/dev/null | grep -E '^(inet6:)?(KUBE-SRC-|KUBE-DST-|TMP-)[A-Z2-7]{16}$'); do
            ipset destroy "$set" 2>/dev/null && did+=("ipset $set")
        done
    fi
}

# The kubelet's pod cgroups.
cluster_remove_pod_cgroups() {
    local cg
    for cg in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
        [[ -d $cg ]] || continue
        find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
        did+=("cgroup $cg")
    done
}
