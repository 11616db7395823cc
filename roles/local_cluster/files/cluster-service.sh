#!/usr/bin/env bash
# Supervise one component of the local cluster as a background process.
#   cluster-service.sh ensure NAME [READY_COMMAND [TIMEOUT_SECONDS]]
#       Start NAME when it is not running, restart it when its command line or one of its
#       configuration files changed since it was started, and wait until READY_COMMAND
#       (run by bash) succeeds. Prints "unchanged", "started" or "restarted".
#   cluster-service.sh stop NAME      stop NAME by its pidfile; prints "stopped" or "absent"
#   cluster-service.sh status NAME    prints "running" (exit 0) or "stopped" (exit 3)
# Files, under $FLASK_K8S_CLUSTER_DIR (default /var/lib/flask-k8s/cluster):
#   run/NAME.cmd      the command, one argument per line (written by the local_cluster role)
#   run/NAME.deps     optional: files whose contents belong to the configuration
#   run/NAME.pid, run/NAME.fingerprint, logs/NAME.log
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
dir=${FLASK_K8S_CLUSTER_DIR:-/var/lib/flask-k8s/cluster}
action=${1:?usage: cluster-service.sh ensure|stop|status NAME}
name=${2:?usage: cluster-service.sh ensure|stop|status NAME}
cmdfile=$dir/run/$name.cmd
pidfile=$dir/run/$name.pid
stampfile=$dir/run/$name.fingerprint
logfile=$dir/logs/$name.log

# The pid in the pidfile, when that process is alive and still runs the component's binary.
running_pid() {
    local pid exe
    [[ -s $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    [[ ${exe% (deleted)} == "$(head -n1 "$cmdfile")" ]] || return 1
    echo "$pid"
}

fingerprint() {
    {
        cat "$cmdfile"
        if [[ -f $dir/run/$name.deps ]]; then
            while IFS= read -r dep; do
                [[ -z $dep ]] || { echo "== $dep"; cat "$dep"; }
            done <"$dir/run/$name.deps"
        fi
    } | sha256sum | cut -d' ' -f1
}

stop() {
    local pid
    if ! pid=$(running_pid); then
        rm -f "$pidfile" "$stampfile"
        return 1
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$pidfile" "$stampfile"
}

fail() {
    echo "$name: $1; last lines of its log $logfile:" >&2
    tail -n 25 "$logfile" >&2 2>/dev/null || true
    exit 1
}

ensure() {
    local ready=${1:-true} timeout=${2:-60} result pid want
    [[ -f $cmdfile ]] || { echo "$name: no command file $cmdfile" >&2; exit 2; }
    want=$(fingerprint)
    if pid=$(running_pid) && [[ -f $stampfile && $(<"$stampfile") == "$want" ]]; then
        result=unchanged
    else
        result=started
        if stop; then result=restarted; fi
        mkdir -p "$dir/logs"
        local -a argv
        mapfile -t argv <"$cmdfile"
        echo "=== $(date -u +%FT%TZ) starting $name" >>"$logfile"
        setsid "${argv[@]}" >>"$logfile" 2>&1 </dev/null &
        pid=$!
        echo "$pid" >"$pidfile"
        echo "$want" >"$stampfile"
    fi
    local deadline=$((SECONDS + timeout))
    until bash -c "$ready" >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile" "$stampfile"; fail "exited while starting"; }
        ((SECONDS < deadline)) || fail "not ready after ${timeout}s (check: $ready)"
        sleep 0.5
    done
    echo "$result"
}

case $action in
    ensure) shift 2; ensure "$@" ;;
    stop) if stop; then echo stopped; else echo absent; fi ;;
    status) if running_pid >/dev/null; then echo running; else echo stopped; exit 3; fi ;;
    *) echo "usage: cluster-service.sh ensure|stop|status NAME" >&2; exit 2 ;;
esac
