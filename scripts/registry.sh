#!/usr/bin/env bash
# A container registry on loopback, for the `existing` cluster provider's tests: Debian's
# docker-registry (the CNCF distribution registry), installed when missing, started in the
# background with its own configuration and storage.
#   scripts/registry.sh ensure   install and start it unless it answers; prints "running" or "started"
#   scripts/registry.sh stop     stop the registry this script started and remove its storage
#   scripts/registry.sh status   prints "running" (exit 0) or "stopped" (exit 3)
# REGISTRY_ADDR (default 127.0.0.1:5000) is where it listens. Docker and containerd talk plain
# HTTP to a registry on a loopback address without further configuration.
set -euo pipefail

addr=${REGISTRY_ADDR:-127.0.0.1:5000}
state=/var/lib/flask-k8s-registry
pidfile=/run/flask-k8s/registry.pid
logfile=/var/log/flask-k8s/registry.log
config=$state/config.yml

answers() {
  curl -sf -o /dev/null "http://$addr/v2/"
}

ours() {
  local pid
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == docker-registry ]]
}

ensure() {
  if answers; then
    echo running
    return
  fi
  if ! command -v docker-registry >/dev/null 2>&1; then
    echo "registry.sh: installing docker-registry" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends docker-registry >&2 ||
      { apt-get -o DPkg::Lock::Timeout=300 update -q >&2 && apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends docker-registry >&2; }
    # The package starts nothing here (no systemd); its own service stays off.
  fi
  mkdir -p "$state/storage" "$(dirname "$pidfile")" "$(dirname "$logfile")"
  cat >"$config" <<CONFIG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $state/storage
  delete:
    enabled: true
http:
  addr: $addr
CONFIG
  setsid docker-registry serve "$config" >>"$logfile" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 1 30); do
    if answers; then
      echo started
      return
    fi
    ours || { echo "registry.sh: docker-registry exited at start; see $logfile" >&2; tail -n 5 "$logfile" >&2; exit 1; }
    sleep 1
  done
  echo "registry.sh: docker-registry did not answer on $addr within 30 s; see $logfile" >&2
  exit 1
}

stop() {
  if ours; then
    kill -TERM "$(<"$pidfile")"
    for _ in $(seq 1 20); do ours || break; sleep 0.5; done
  fi
  rm -f "$pidfile"
  rm -rf "$state"
  echo stopped
}

case ${1:-} in
  ensure) ensure ;;
  stop) stop ;;
  status) if answers; then echo running; else echo stopped; exit 3; fi ;;
  *) echo "usage: $0 ensure|stop|status" >&2; exit 2 ;;
esac
