#!/bin/bash
# Runs kube-router with the iptables backend the node already uses, so that its rules sit in
# the same tables as kube-proxy's. IPTABLES_MODE: nft, legacy, or auto (default): the backend
# that holds more rules now. The choice is made by putting iptables* links to that backend
# first on PATH, in the writable directory IPTABLES_BIN_DIR (an emptyDir: the root filesystem
# is read-only).
set -euo pipefail

rule_count() {
    { "iptables-$1-save" 2>/dev/null; "ip6tables-$1-save" 2>/dev/null; } | grep -c '^-A' || true
}

mode=${IPTABLES_MODE:-auto}
if [[ $mode == auto ]]; then
    legacy=$(rule_count legacy)
    nft=$(rule_count nft)
    mode=nft
    if ((legacy > nft)); then mode=legacy; fi
    echo "entrypoint: iptables backend $mode (rules: legacy $legacy, nft $nft)" >&2
fi
case $mode in
    nft|legacy) ;;
    *) echo "entrypoint: IPTABLES_MODE must be nft, legacy or auto, not '$mode'" >&2; exit 2 ;;
esac

bin=${IPTABLES_BIN_DIR:-/run/kube-router/bin}
mkdir -p "$bin"
for tool in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    ln -sfn "/usr/sbin/xtables-$mode-multi" "$bin/$tool"
done
export PATH=$bin:$PATH
exec /usr/local/bin/kube-router "$@"
