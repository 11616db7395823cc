#!/usr/bin/env bash
# Supervise one component of the local cluster as a background process.
#   cluster-service.sh ensure NAME [READY_COMMAND [TIMEOUT_SECONDS]]
#       Start NAME's supervisor when it is not running, restart it when the component's
#       command line or one of its configuration files changed since it was started, and wait
#       until READY_COMMAND (run by bash) succeeds. Prints "unchanged", "started" or "restarted".
#   cluster-service.sh stop NAME      stop NAME (supervisor and component) by its pidfile;
#                                     prints "stopped" or "absent"
#   cluster-service.sh status NAME    prints "running" (exit 0) or "stopped" (exit 3)
#   cluster-service.sh others         prints the state directory of every other instance of
#                                     the local cluster that runs on this host (its components'
#                                     supervisors), one a line
#   cluster-service.sh supervise NAME (internal) run the component, start it again 2 s after
#                                     it exits, forward SIGTERM/SIGINT to it and exit with it
# Files, under $FLASK_K8S_CLUSTER_DIR (default /var/lib/flask-k8s/cluster):
#   run/NAME.cmd      the command, one argument per line (written by the local_cluster role)
#   run/NAME.deps     the files the component reads, written by `ensure`: every file under
#                     config/, kubeconfig/ or pki/ that the command line names, and every such
#                     file those files name in turn (a kubeconfig's certificate, say); the
#                     component restarts when one of them changes
#   run/NAME.pid (the supervisor), run/NAME.child (the component), run/NAME.restarts,
#   run/NAME.fingerprint, logs/NAME.log
# Every component starts with its open-file limit (soft and hard) raised as far as this script
# may, at least to 16384: pods inherit containerd's, and the service's gunicorn sizes its
# worker connections by it.
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
dir=${FLASK_K8S_CLUSTER_DIR:-/var/lib/flask-k8s/cluster}
action=${1:?usage: cluster-service.sh ensure|stop|status NAME, or others}
if [[ $action == others ]]; then
    # Supervisors of this script whose state directory is not this one.
    for pid in $(pgrep -f 'cluster-service\.sh supervise ' || true); do
        other=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | sed -n 's/^FLASK_K8S_CLUSTER_DIR=//p')
        if [[ -n $other && $other != "$dir" ]]; then echo "$other"; fi
    done | sort -u
    exit 0
fi
name=${2:?usage: cluster-service.sh ensure|stop|status NAME}
cmdfile=$dir/run/$name.cmd
pidfile=$dir/run/$name.pid
childfile=$dir/run/$name.child
restartsfile=$dir/run/$name.restarts
stampfile=$dir/run/$name.fingerprint
depsfile=$dir/run/$name.deps
logfile=$dir/logs/$name.log
self=$(readlink -f "$0")
min_nofile=16384

# The pid in the pidfile, when that process is alive and is still NAME's supervisor. Its
# command line is matched by the script's name, not its path: a supervisor started from where
# the script lay before (another checkout path, the roles' earlier place) is still this one's,
# to be kept or stopped, never left running beside a second one.
running_pid() {
    local pid
    [[ -s $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") == *"/cluster-service.sh supervise $name "* ]] || return 1
    echo "$pid"
}

# The component's pid, when that process is alive and runs the component's binary.
child_pid() {
    local pid exe
    [[ -s $childfile ]] || return 1
    pid=$(<"$childfile")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    [[ ${exe% (deleted)} == "$(head -n1 "$cmdfile")" ]] || return 1
    echo "$pid"
}

supervise() {
    local -a argv
    local child='' stopping=false rc restarts=0
    mapfile -t argv <"$cmdfile"
    trap 'stopping=true; [[ -z $child ]] || kill -TERM "$child" 2>/dev/null' TERM INT
    while true; do
        echo "=== $(date -u +%FT%TZ) starting $name"
        "${argv[@]}" </dev/null &
        child=$!
        echo "$child" >"$childfile"
        rc=0
        wait "$child" || rc=$?
        while kill -0 "$child" 2>/dev/null; do wait "$child" || rc=$?; done
        rm -f "$childfile"
        if [[ $stopping == true ]]; then
            echo "=== $(date -u +%FT%TZ) $name stopped"
            exit 0
        fi
        restarts=$((restarts + 1))
        echo "$restarts" >"$restartsfile"
        echo "=== $(date -u +%FT%TZ) $name exited with status $rc; starting it again in 2 s (restart $restarts)"
        # In the background, so that a TERM ends the pause at once; a stop asked for meanwhile
        # starts nothing more.
        sleep 2 &
        wait $! || true
        if [[ $stopping == true ]]; then
            echo "=== $(date -u +%FT%TZ) $name stopped"
            exit 0
        fi
    done
}

# The files the component reads (see run/NAME.deps above), one a line, in the order they are
# found.
deps() {
    local -A seen=()
    local -a queue=("$cmdfile")
    local i=0 path pattern
    pattern="$(sed 's/[][\.*^$+?(){}|]/\\&/g' <<<"$dir")/(config|kubeconfig|pki)/[A-Za-z0-9._-]+"
    while ((i < ${#queue[@]})); do
        while IFS= read -r path; do
            if [[ -f $path && -z ${seen[$path]:-} ]]; then
                seen[$path]=1
                queue+=("$path")
                echo "$path"
            fi
        done < <(grep -aoE -- "$pattern" "${queue[i]}" || true)
        i=$((i + 1))
    done
}

# A hash of the command line and of every file in run/NAME.deps.
fingerprint() {
    {
        cat "$cmdfile"
        while IFS= read -r dep; do
            echo "== $dep"
            cat "$dep"
        done <"$depsfile"
    } | sha256sum | cut -d' ' -f1
}

stop() {
    local pid child
    child=$(child_pid) || child=''
    if ! pid=$(running_pid); then
        # No supervisor: a component left without one is still stopped by its pid.
        if [[ -n $child ]]; then kill -KILL "$child" 2>/dev/null || true; fi
        rm -f "$pidfile" "$childfile" "$stampfile" "$restartsfile"
        [[ -n $child ]] && return 0
        return 1
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        if [[ -n $child ]]; then kill -KILL "$child" 2>/dev/null || true; fi
        sleep 0.5
    fi
    # The component the supervisor last started, which may be a later one than the one read
    # above (a restart under way when the stop came).
    if child=$(child_pid); then
        kill -KILL "$child" 2>/dev/null || true
    fi
    rm -f "$pidfile" "$childfile" "$stampfile" "$restartsfile"
}

# Raise this shell's open-file limit, which the component inherits: the hard limit to 1048576
# when it is lower and the shell may (root with CAP_SYS_RESOURCE), the soft one to the hard one.
raise_nofile() {
    local hard
    hard=$(ulimit -Hn)
    if [[ $hard != unlimited ]] && ((hard < 1048576)); then ulimit -Hn 1048576 2>/dev/null || true; fi
    ulimit -Sn "$(ulimit -Hn)"
    hard=$(ulimit -Hn)
    if [[ $hard != unlimited ]] && ((hard < min_nofile)); then
        echo "$name: the open-file limit is $hard, below the $min_nofile pods need, and cannot be raised here" \
            "(without CAP_SYS_RESOURCE): raise the hard limit (ulimit -Hn) of the shell that runs the playbook" >&2
        exit 1
    fi
}

# Whether the running component's open-file limit is at least min_nofile (a component started
# by an earlier version of this script may have less; one its supervisor is restarting is left to it).
nofile_ok() {
    local child hard
    child=$(child_pid) || return 0
    hard=$(awk '/^Max open files/ {print $5}' "/proc/$child/limits" 2>/dev/null) || return 0
    [[ $hard == unlimited ]] || ((hard >= min_nofile))
}

fail() {
    echo "$name: $1; last lines of its log $logfile:" >&2
    tail -n 25 "$logfile" >&2 2>/dev/null || true
    exit 1
}

ensure() {
    local ready=${1:-true} timeout=${2:-60} result pid want
    [[ -f $cmdfile ]] || { echo "$name: no command file $cmdfile" >&2; exit 2; }
    deps >"$depsfile"
    want=$(fingerprint)
    if pid=$(running_pid) && [[ -f $stampfile && $(<"$stampfile") == "$want" ]] && nofile_ok; then
        result=unchanged
    else
        raise_nofile
        result=started
        if stop; then result=restarted; fi
        mkdir -p "$dir/logs"
        rm -f "$restartsfile"
        setsid "$self" supervise "$name" >>"$logfile" 2>&1 </dev/null &
        pid=$!
        echo "$pid" >"$pidfile"
        echo "$want" >"$stampfile"
    fi
    local deadline=$((SECONDS + timeout))
    until bash -c "$ready" >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile" "$stampfile"; fail "its supervisor exited"; }
        if [[ $result != unchanged && $(cat "$restartsfile" 2>/dev/null || echo 0) -ge 3 ]]; then
            stop || true
            fail "exited 3 times while starting"
        fi
        ((SECONDS < deadline)) || fail "not ready after ${timeout}s (check: $ready)"
        sleep 0.5
    done
    echo "$result"
}

case $action in
    ensure) shift 2; ensure "$@" ;;
    stop) if stop; then echo stopped; else echo absent; fi ;;
    status) if running_pid >/dev/null; then echo running; else echo stopped; exit 3; fi ;;
    supervise) supervise ;;
    *) echo "usage: cluster-service.sh ensure|stop|status NAME" >&2; exit 2 ;;
esac
