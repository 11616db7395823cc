#!/usr/bin/env bash
# OCI runtime for dockerd on hosts where root lacks CAP_SYS_RESOURCE (scripts/docker-engine.sh
# registers it there, and only there). Docker gives a --privileged container every capability
# it knows; runc cannot grant one that root itself lacks, so every privileged container fails
# with "unable to apply caps: operation not permitted". This wrapper removes CAP_SYS_RESOURCE
# from the container's configuration (`runc create|run`: <bundle>/config.json) and from the
# process of `runc exec` (--process FILE), then runs runc with the same arguments.
set -euo pipefail

cap=CAP_SYS_RESOURCE
runc=$(command -v runc) || { echo "runc-wrapper.sh: runc is not on PATH" >&2; exit 127; }
python=/usr/bin/python3
[[ -x $python ]] || python=python3

# Rewrite the JSON file $2 without $cap in any capability set; $1 is where the sets are:
# "process" for a bundle's config.json, "" for the process file of `runc exec`.
drop_cap() {
  grep -q "\"$cap\"" "$2" || return 0
  "$python" -I -S -c '
import json, os, sys
key, path, cap = sys.argv[1:]
with open(path) as f:
    doc = json.load(f)
proc = doc.get(key, {}) if key else doc
sets = proc.get("capabilities") or {}
for name, caps in sets.items():
    if isinstance(caps, list):
        sets[name] = [c for c in caps if c != cap]
tmp = path + ".tmp"
with open(tmp, "w") as f:
    json.dump(doc, f)
os.replace(tmp, path)
' "$1" "$2" "$cap"
}

command="" bundle="" process=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  arg=${args[i]}
  if [[ -z $command ]]; then
    case $arg in create|run|exec) command=$arg ;; esac
    continue
  fi
  case $command:$arg in
    create:--bundle|create:-b|run:--bundle|run:-b) bundle=${args[i + 1]:-} ;;
    create:--bundle=*|run:--bundle=*) bundle=${arg#--bundle=} ;;
    exec:--process|exec:-p) process=${args[i + 1]:-} ;;
    exec:--process=*) process=${arg#--process=} ;;
  esac
done

case $command in
  create|run) drop_cap process "${bundle:-.}/config.json" ;;
  exec) [[ -z $process ]] || drop_cap "" "$process" ;;
esac
exec "$runc" "$@"
