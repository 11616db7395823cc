#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine (there is no systemd to start one).
#   scripts/docker-engine.sh ensure [--privileged]
#                                     install docker.io when no engine is installed, start
#                                     dockerd in the background when none answers, wait until
#                                     `docker info` works; prints "running" or "started"
#   scripts/docker-engine.sh stop     stop the dockerd this script started (by its pidfile)
#   scripts/docker-engine.sh status   prints "running" or "stopped" (exit 0 / 3)
# Where root lacks CAP_SYS_RESOURCE, Docker refuses every --privileged container (minikube's
# node is one): the engine this script starts then runs containers through
# scripts/runc-wrapper.sh (installed as $wrapper), and an engine it started earlier without it
# is restarted. An engine started by someone else is left alone; `ensure` then says what to
# configure, and with --privileged fails.
set -euo pipefail

pidfile=/run/flask-k8s/dockerd.pid
logfile=/var/log/flask-k8s/dockerd.log
wait_seconds=${DOCKER_ENGINE_WAIT_SECONDS:-60}
wrapper_source=$(cd "$(dirname "$0")" && pwd)/runc-wrapper.sh
wrapper=/usr/local/libexec/flask-k8s/runc-wrapper
runtime=flask-k8s-runc

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

# True when root's capability bounding set lacks CAP_SYS_RESOURCE (capability 24).
needs_wrapper() {
  local bnd
  bnd=$(awk '$1 == "CapBnd:" { print $2 }' /proc/self/status)
  (( (16#$bnd >> 24 & 1) == 0 ))
}

uses_wrapper() {
  [[ "$(timeout 10 docker info --format '{{.DefaultRuntime}}' 2>/dev/null)" == "$runtime" ]]
}

install_wrapper() {
  [[ -f "$wrapper_source" ]] || {
    echo "docker-engine.sh: $wrapper_source is missing (run this script from the project's scripts/)" >&2
    return 1
  }
  cmp -s "$wrapper_source" "$wrapper" && return
  mkdir -p "$(dirname "$wrapper")"
  install -m 0755 "$wrapper_source" "$wrapper.tmp"
  mv -f "$wrapper.tmp" "$wrapper"
}

install_engine() {
  echo "docker-engine.sh: installing docker.io" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get -o DPkg::Lock::Timeout=300 install -y -q docker.io >&2; then
    apt-get -o DPkg::Lock::Timeout=300 update -q >&2
    apt-get -o DPkg::Lock::Timeout=300 install -y -q docker.io >&2
  fi
}

# The engine answers and, where root lacks CAP_SYS_RESOURCE, runs containers through the
# wrapper (or someone else's engine does not, and that has been said).
settled() {
  answers || return 1
  needs_wrapper || return 0
  install_wrapper
  uses_wrapper && return 0
  ours && return 1
  echo "docker-engine.sh: root lacks CAP_SYS_RESOURCE, so this Docker engine (not started by" \
    "this script, left as it is) refuses privileged containers such as minikube's node until" \
    "its default runtime is $wrapper (daemon.json: {\"runtimes\": {\"$runtime\": {\"path\":" \
    "\"$wrapper\"}}, \"default-runtime\": \"$runtime\"}) and it is restarted." >&2
  [[ $privileged != true ]] || exit 1
}

ensure() {
  privileged=false
  [[ ${1:-} != --privileged ]] || privileged=true
  if settled; then
    echo running
    return
  fi
  # One ensure at a time: concurrent callers would otherwise start two engines.
  mkdir -p "$(dirname "$pidfile")"
  exec 9>"$(dirname "$pidfile")/docker-engine.lock"
  flock -w 120 9
  if settled; then
    echo running
    return
  fi
  if answers && ours; then
    echo "docker-engine.sh: restarting the dockerd this script started, to run containers through $wrapper" >&2
    stop >/dev/null
  fi
  command -v dockerd >/dev/null 2>&1 || install_engine
  local started_pid="" args=()
  if needs_wrapper; then
    install_wrapper
    args=(--add-runtime "$runtime=$wrapper" --default-runtime "$runtime")
  fi
  if ! ours; then
    mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
    # dockerd refuses to start over a pidfile whose process it still sees (a killed engine
    # not yet reaped); such a pidfile is stale.
    rm -f "$pidfile" /var/run/docker.pid
    setsid dockerd --pidfile "$pidfile" "${args[@]}" >>"$logfile" 2>&1 </dev/null 9>&- &
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
  ensure) ensure "${2:-}" ;;
  stop) stop ;;
  status)
    if answers; then echo running; else echo stopped; exit 3; fi
    ;;
  *)
    echo "usage: $0 ensure [--privileged]|stop|status" >&2
    exit 2
    ;;
esac
