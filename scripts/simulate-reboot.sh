#!/usr/bin/env bash
# Simulate a restart of this host for the local cluster, as faithfully as is safe on a machine
# that others share and that keeps running (docs/local-cluster.md#a-restart-of-the-host):
#   1. every process of every local cluster on the host (its components, their supervisors,
#      its containerd's shims and the pods) is killed with SIGKILL, nothing stopped cleanly;
#   2. what a restart takes with it: the clusters' mounts, the pods' network namespaces, the
#      bridge and its veths, the clusters' iptables chains and ipsets, the pods' cgroups;
#   3. /run is a tmpfs: /run/flask-k8s is emptied, and the shim sockets in /run/containerd/s
#      that no live process serves are removed. The Docker engine is shared and stays up (a
#      restart would stop it): its pidfile stays while it runs;
#   4. /tmp is emptied as `systemd-tmpfiles --boot --remove` does on Debian (`D /tmp`): every
#      entry goes but those a live process still holds (an open file, a working directory, a
#      mapped file or a bound socket at or below it), those matching --keep-tmp GLOB (on a
#      shared machine, other people's tools that keep state there between processes) and those
#      named in --keep-tmp-listed FILE, one name a line (what /tmp held before the cluster came
#      up: molecule lists it, so that only what came after goes);
#   5. the kernel settings the clusters set go back to their values at boot (the kernel's
#      default, its command line, /etc/sysctl.d and the like), except packet forwarding while a
#      process outside the clusters needs it (a running Docker engine).
# It says what it did and what it left, and why. The clusters' state directories and volumes
# (on disk, under /var/lib) stay, as after a restart; `make deploy` then starts the cluster
# again.
# Usage: scripts/simulate-reboot.sh [--keep-tmp[=] GLOB]... [--keep-tmp-listed[=] FILE]   (as root)
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=collections/ansible_collections/flask_k8s/stack/roles/local_cluster/files/cluster-host.sh
. "$root/collections/ansible_collections/flask_k8s/stack/roles/local_cluster/files/cluster-host.sh"
keep_tmp=() listed=""
while (($#)); do
    case $1 in
        --keep-tmp) keep_tmp+=("${2:?--keep-tmp needs a glob}"); shift 2 ;;
        --keep-tmp=*) keep_tmp+=("${1#--keep-tmp=}"); shift ;;
        --keep-tmp-listed) listed=${2:?--keep-tmp-listed needs a file}; shift 2 ;;
        --keep-tmp-listed=*) listed=${1#--keep-tmp-listed=}; shift ;;
        *) echo "usage: scripts/simulate-reboot.sh [--keep-tmp GLOB]... [--keep-tmp-listed FILE]" >&2; exit 2 ;;
    esac
done
((EUID == 0)) || { echo "simulate-reboot.sh: run it as root" >&2; exit 2; }
# The names of --keep-tmp-listed, read before anything is touched: a file that cannot be read
# stops the script, rather than /tmp being emptied whole.
declare -A listed_names=()
if [[ -n $listed ]]; then
    [[ -r $listed ]] || { echo "simulate-reboot.sh: cannot read the list of /tmp entries to keep, $listed" >&2; exit 2; }
    while IFS= read -r name; do [[ -n $name ]] && listed_names[$name]=1; done <"$listed"
fi

say() { echo "simulate-reboot: $*"; }

# The kernel settings the local cluster sets (its own and its kubelet's), with the kernel's
# default value; the value at boot may differ by the kernel's command line or sysctl.d.
declare -A kernel_default=(
    [net.ipv4.ip_forward]=0
    [net.bridge.bridge-nf-call-iptables]=1
    [net.bridge.bridge-nf-call-ip6tables]=1
    [net.ipv4.conf.all.route_localnet]=0
    [vm.overcommit_memory]=0
    [vm.panic_on_oom]=0
    [kernel.panic]=0
    [kernel.panic_on_oops]=0
    [kernel.keys.root_maxkeys]=1000000
    [kernel.keys.root_maxbytes]=25000000
)

# The value of kernel setting $1 at boot: its default, then the kernel's command line
# (panic=), then the sysctl.d files in the order systemd-sysctl reads them.
boot_value() {
    local key=$1 value=${kernel_default[$1]} file line
    if [[ $key == kernel.panic ]] && line=$(grep -oE '(^| )panic=-?[0-9]+' /proc/cmdline); then
        value=${line##*=}
    fi
    for file in /usr/lib/sysctl.d/*.conf /run/sysctl.d/*.conf /etc/sysctl.d/*.conf /etc/sysctl.conf; do
        [[ -f $file ]] || continue
        line=$(sed -nE "s/^[[:space:]]*${key//./[./]}[[:space:]]*=[[:space:]]*([^[:space:]#]+).*/\1/p" "$file" | tail -n 1)
        [[ -z $line ]] || value=$line
    done
    echo "$value"
}

# Every path a live process holds: open files and directories, working and root directories,
# mapped files, and the paths of bound unix sockets.
held_paths() {
    local p
    for p in /proc/[0-9]*; do
        readlink "$p/cwd" "$p/root" "$p"/fd/* 2>/dev/null
        awk 'NF >= 6 && $6 ~ /^\// { print $6 }' "$p/maps" 2>/dev/null
    done
    awk 'NR > 1 && $8 ~ /^\// { print $8 }' /proc/net/unix
}

# True when a path read on stdin is $1 or lies below it.
at_or_below() {
    awk -v p="$1" '$0 == p || index($0, p "/") == 1 { found = 1; exit } END { exit !found }'
}

# The process (pid and name) that holds $1 or something below it.
holder_of() {
    local path=$1 p
    for p in /proc/[0-9]*; do
        if { readlink "$p/cwd" "$p"/fd/* 2>/dev/null; awk '$6 ~ /^\// { print $6 }' "$p/maps" 2>/dev/null; } |
            at_or_below "$path"; then
            echo "pid ${p#/proc/} ($(cat "$p/comm" 2>/dev/null))"
            return
        fi
    done
    echo "a bound socket"
}

# 1-2. The clusters: every state directory of a local cluster on this host.
mapfile -t clusters < <(
    find /var/lib/flask-k8s -maxdepth 4 -path '*/run/containerd.cmd' 2>/dev/null | sed 's|/run/containerd.cmd$||'
    for p in /proc/[0-9]*; do
        [[ $(tr '\0' ' ' 2>/dev/null <"$p/cmdline") == *"cluster-service.sh supervise "* ]] || continue
        tr '\0' '\n' 2>/dev/null <"$p/environ" | sed -n 's/^FLASK_K8S_CLUSTER_DIR=//p'
    done | sort -u
)
mapfile -t clusters < <(printf '%s\n' "${clusters[@]}" | grep . | sort -u)
did=()
for dir in "${clusters[@]}"; do
    sock=$(cluster_containerd_socket "$dir")
    cluster_kill_processes "$dir" "$sock"
    cluster_unmount "$dir" "${sock%/*}"
    bridge=$(sed -nE 's/.*"bridge": *"([^"]+)".*/\1/p' "$dir"/cni/net.d/*.conflist 2>/dev/null | head -n 1)
    cluster_remove_network "${bridge:-fk8s0}"
done
cluster_remove_pod_cgroups
say "clusters: ${clusters[*]:-none found}"
say "killed $(printf '%s\n' "${did[@]}" | grep -c '^process ') processes with SIGKILL; removed" \
    "$(printf '%s\n' "${did[@]}" | grep -c '^mount ') mounts," \
    "$(printf '%s\n' "${did[@]}" | grep -c '^network namespace ') network namespaces," \
    "$(printf '%s\n' "${did[@]}" | grep -cE '^ip6?tables chain ') iptables chains," \
    "$(printf '%s\n' "${did[@]}" | grep -c '^ipset ') ipsets and" \
    "$(printf '%s\n' "${did[@]}" | grep -c '^interface ') bridge(s)"

# 3. /run.
dockerd_pid=$(cat /run/flask-k8s/dockerd.pid 2>/dev/null)
if [[ -n $dockerd_pid && $(cat "/proc/$dockerd_pid/comm" 2>/dev/null) == dockerd ]]; then
    find /run/flask-k8s -mindepth 1 -maxdepth 1 ! -name dockerd.pid -exec rm -rf {} + 2>/dev/null
    say "/run/flask-k8s emptied but dockerd.pid: the Docker engine (pid $dockerd_pid) is shared and runs on"
else
    rm -rf /run/flask-k8s
    say "/run/flask-k8s removed"
fi
mapfile -t held < <(held_paths | sort -u)
stale=0
for socket in /run/containerd/s/*; do
    [[ -S $socket ]] || continue
    printf '%s\n' "${held[@]}" | grep -qxF "$socket" && continue
    rm -f "$socket" && stale=$((stale + 1))
done
say "/run/containerd/s: removed $stale socket(s) that no live process serves"

# 4. /tmp.
removed=0 left=() before=0
for entry in /tmp/* /tmp/.[!.]* /tmp/..?*; do
    [[ -e $entry || -L $entry ]] || continue
    name=${entry#/tmp/}
    kept_by=""
    for glob in "${keep_tmp[@]}"; do
        # shellcheck disable=SC2053 # a glob on purpose
        if [[ $name == $glob ]]; then kept_by="--keep-tmp $glob"; break; fi
    done
    if [[ -z $kept_by && -n ${listed_names[$name]:-} ]]; then
        before=$((before + 1))
        continue
    fi
    if [[ -z $kept_by ]] && printf '%s\n' "${held[@]}" | at_or_below "$entry"; then
        kept_by="held by $(holder_of "$entry")"
    fi
    if [[ -n $kept_by ]]; then
        left+=("$entry ($kept_by)")
        continue
    fi
    rm -rf "$entry" && removed=$((removed + 1))
done
say "/tmp: removed $removed entries; left ${#left[@]}${left:+: }$(printf '%s; ' "${left[@]}" | sed 's/; $//')${listed:+; kept $before listed in $listed}"

# 5. Kernel settings.
forwarding_needed_by=""
if pid=$(pgrep -x dockerd | head -n 1) && [[ -n $pid ]]; then forwarding_needed_by="dockerd (pid $pid)"; fi
for key in "${!kernel_default[@]}"; do
    now=$(sysctl -n "$key" 2>/dev/null) || continue
    boot=$(boot_value "$key")
    [[ $now != "$boot" ]] || continue
    if [[ -n $forwarding_needed_by && $key == net.ipv4.ip_forward ]]; then
        say "left $key=$now (at boot $boot): $forwarding_needed_by runs on and forwards its containers' packets"
        continue
    fi
    sysctl -qw "$key=$boot" && say "set $key=$boot (was $now), as at boot"
done
say "done: the clusters' state directories and volumes are on disk, as after a restart; make deploy starts the cluster again"
