#!/usr/bin/env bash
# Take the local cluster down and remove what it left on the host, except its volumes (and
# them too when asked). Idempotent; prints one line per kind of thing it removed, "nothing to
# remove" when the host was already clean, then one line that says where the volumes are or
# which it deleted.
# Environment (set by the local_cluster role):
#   FLASK_K8S_CLUSTER_DIR     state directory (pidfiles, logs, certificates, kubelet and containerd roots)
#   FLASK_K8S_RUN_DIR         runtime directory of the cluster's containerd (socket, state)
#   FLASK_K8S_BRIDGE          name of the CNI bridge
#   FLASK_K8S_SERVICES        components in start order (stopped in reverse)
#   FLASK_K8S_VOLUMES_DIR     the volumes, <namespace>/<claim>: kept unless FLASK_K8S_DELETE_VOLUMES=true
#   FLASK_K8S_SHARED_SYSCTLS  kernel settings left as they are (packet forwarding, which other
#                             software on the host needs); the others recorded before the first
#                             start are put back
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
dir=${FLASK_K8S_CLUSTER_DIR:-/var/lib/flask-k8s/cluster}
rundir=${FLASK_K8S_RUN_DIR:-/run/flask-k8s/containerd}
bridge=${FLASK_K8S_BRIDGE:-fk8s0}
services=${FLASK_K8S_SERVICES:-containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy}
volumes=${FLASK_K8S_VOLUMES_DIR:-/var/lib/flask-k8s/volumes}
delete_volumes=${FLASK_K8S_DELETE_VOLUMES:-false}
shared_sysctls=" ${FLASK_K8S_SHARED_SYSCTLS:-net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables} "
here=$(cd "$(dirname "$0")" && pwd)
did=()
# shellcheck source=roles/local_cluster/files/cluster-host.sh
. "$here/cluster-host.sh"

# Another instance of the local cluster (another state directory) shares the bridge, the
# iptables chains and the pods' cgroups: removing them would break it.
if others=$(FLASK_K8S_CLUSTER_DIR=$dir "$here/cluster-service.sh" others) && [[ -n $others ]]; then
    echo "cluster-cleanup.sh: the local cluster of $others is running on this host; take it down first (it shares the network and cgroups this cleanup removes)" >&2
    exit 1
fi

# 1. Stop the kubelet first so that it starts no new pod, then every container of the
#    cluster's containerd, then the remaining components in reverse start order.
[[ $("$here/cluster-service.sh" stop kubelet 2>/dev/null) == stopped ]] && did+=("process kubelet")
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

# 2. Processes left behind, mounts, the pods' network, the iptables chains and ipsets.
cluster_kill_processes "$dir" "$sock"
cluster_unmount "$dir" "$rundir"
cluster_remove_network "$bridge"

# 3. Kernel settings changed for the cluster, back to the values saved before it started,
#    except packet forwarding: the Docker engine, other containers, VMs or VPNs on the host
#    may need it after the cluster, and the cluster cannot know.
if [[ -f $dir/sysctl-before ]]; then
    while IFS='=' read -r key value; do
        [[ -n $key ]] || continue
        now=$(sysctl -n "$key" 2>/dev/null) || continue
        [[ $now != "$value" ]] || continue
        if [[ $shared_sysctls == *" $key "* ]]; then
            did+=("kept $key=$now (was $value before the cluster; packet forwarding stays for the software that runs on)")
        else
            sysctl -qw "$key=$value" 2>/dev/null && did+=("restored $key=$value")
        fi
    done <"$dir/sysctl-before"
fi

# 4. The kubelet's pod cgroups.
cluster_remove_pod_cgroups

# 5. Files: state and runtime directories, and the directories outside them that the cluster
#    created (listed in host-paths-created when it first started). Never through a mount: a
#    volume still mounted below the state directory keeps it in place.
# The kubelet links every container's log into /var/log/containers.
if [[ -d /var/log/containers ]] && [[ -n $(find /var/log/containers -maxdepth 1 -type l -lname "$dir/*" -print -quit) ]]; then
    find /var/log/containers -maxdepth 1 -type l -lname "$dir/*" -delete
    did+=("files /var/log/containers/*")
fi
created=()
[[ -f $dir/host-paths-created ]] && mapfile -t created <"$dir/host-paths-created"
for path in "$dir" "$rundir"; do
    [[ -e $path ]] || continue
    if mounted_below "$path"; then
        echo "cluster-cleanup.sh: left $path in place: something is still mounted below it" >&2
        continue
    fi
    rm -rf "$path" && did+=("files $path")
done
for path in "${created[@]}"; do
    [[ -n $path && -d $path ]] || continue
    find "$path" -depth -type d -empty ! -path "$volumes" ! -path "$volumes/*" -delete 2>/dev/null
    [[ -e $path ]] || did+=("files $path")
done

if ((${#did[@]})); then printf '%s\n' "${did[@]}" | sort -u; else echo "nothing to remove"; fi

# 6. The volumes: kept for the next cluster, or deleted when asked; one line either way.
mapfile -t claims < <(cd "$volumes" 2>/dev/null && find . -mindepth 2 -maxdepth 2 -type d | sed 's|^\./||' | sort)
if [[ $delete_volumes == true ]]; then
    if mounted_below "$volumes"; then
        echo "cluster-cleanup.sh: deleted no volume: something is still mounted below $volumes" >&2
        exit 1
    fi
    deleted=()
    for claim in "${claims[@]}"; do
        rm -rf "${volumes:?}/$claim" && deleted+=("$claim ($volumes/$claim)")
    done
    find "$volumes" -mindepth 1 -maxdepth 1 -type d -empty -delete 2>/dev/null
    if ((${#deleted[@]})); then
        echo "volumes: deleted ${#deleted[@]}: $(printf '%s, ' "${deleted[@]}" | sed 's/, $//')"
    else
        echo "volumes: none to delete in $volumes"
    fi
elif ((${#claims[@]})); then
    echo "volumes: kept ${#claims[@]} in $volumes for the next cluster: $(printf '%s, ' "${claims[@]}" | sed 's/, $//')"
else
    echo "volumes: none in $volumes"
fi
