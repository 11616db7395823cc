#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine (there is no systemd to start one).
#   scripts/docker-engine.sh ensure   install docker.io when no engine is installed, start
#                                     dockerd in the background when none answers, wait until
#                                     `docker info` works; prints "running" or "started"
#   scripts/docker-engine.sh stop     stop the dockerd this script started (by its pidfile)
#   scripts/docker-engine.sh status   prints "running" or "stopped" (exit 0 / 3)
set -euo pipefail

pidfile=/run/flask-k8s/dockerd.pid
logfile=/var/log/flask-k8s/dockerd.log
wait_seconds=${DOCKER_ENGINE_WAIT_SECONDS:-60}

answers() {
  command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1
}

# True when the dockerd recorded in our pidfile still runs (a stale pidfile after a reboot or
# a killed session names no process, or another one).
ours() {
  local pid
  [[ -f "$pidfile" ]] || return 1
  pid=$(cat "$pidfile")
  [[ "$pid" =~ ^[0-9]+$ ]] && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == dockerd ]] &&
    # a killed dockerd not yet reaped is a zombie ("Z"), not a running engine
    [[ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]]
}

install_engine() {
  echo "docker-engine.sh: installing docker.io" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q docker.io >&2; then
    apt-get update -q >&2
    apt-get install -y -q docker.io >&2
  fi
}

ensure() {
  if answers; then
    echo running
    return
  fi
  # One ensure at a time: concurrent callers would otherwise start two engines.
  mkdir -p "$(dirname "$pidfile")"
  exec 9>"$(dirname "$pidfile")/docker-engine.lock"
  flock -w 120 9
  if answers; then
    echo running
    return
  fi
  command -v dockerd >/dev/null 2>&1 || install_engine
  local started_pid=""
  if ! ours; then
    mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
    # dockerd refuses to start over a pidfile whose process it still sees (a killed engine
    # not yet reaped); such a pidfile is stale.
    rm -f "$pidfile" /var/run/docker.pid
    setsid dockerd --pidfile "$pidfile" >>"$logfile" 2>&1 </dev/null 9>&- &
    started_pid=$!
  fi
  local waited=0
  until answers; do
    if [[ -n "$started_pid" ]] && ! kill -0 "$started_pid" 2>/dev/null; then
      echo "docker-engine.sh: dockerd exited at start; see $logfile" >&2
      tail -n 5 "$logfile" >&2 || true
      exit 1
    fi
    if (( waited >= wait_seconds )); then
      echo "docker-engine.sh: dockerd did not answer within ${wait_seconds}s; see $logfile" >&2
      tail -n 20 "$logfile" >&2 || true
      exit 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
  echo started
}

stop() {
  if ! [[ -f "$pidfile" ]]; then
    echo "not started by this script"
    return
  fi
  local pid
  pid=$(cat "$pidfile")
  if ours; then
    kill -TERM "$pid"
    for _ in $(seq 1 30); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "docker-engine.sh: dockerd $pid still running after 30s" >&2
      exit 1
    fi
  fi
  rm -f "$pidfile"
  echo stopped
}

case ${1:-} in
  ensure) ensure ;;
  stop) stop ;;
  status)
    if answers; then echo running; else echo stopped; exit 3; fi
    ;;
  *)
    echo "usage: $0 ensure|stop|status" >&2
    exit 2
    ;;
esac
