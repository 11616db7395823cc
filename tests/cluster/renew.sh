#!/usr/bin/env bash
# Renewal of the local cluster's certificates (tests/cluster/run.sh runs it; it runs on its own
# against any instance that is up):
#   tests/cluster/renew.sh STATE_DIR LOG_PREFIX PLAYBOOK_COMMAND...
# converges with local_cluster_cert_renew_days above the remaining life of every certificate
# (the CAs' too), then checks that each was signed anew, that etcd, the API server and the
# kubelet serve the new ones, that the cluster works on, and that a converge with the same
# settings renews nothing more.
set -euo pipefail
dir=${1:?usage: renew.sh STATE_DIR LOG_PREFIX PLAYBOOK_COMMAND...}
log=${2:?usage: renew.sh STATE_DIR LOG_PREFIX PLAYBOOK_COMMAND...}
shift 2
pki=$dir/pki
# Certificates last 1100 days from now on (the CAs 3300): every one has fewer than 1099 left.
renew=(-e local_cluster_state=present -e local_cluster_cert_days=1100 -e local_cluster_cert_renew_days=1099)
certs=(ca etcd-ca apiserver etcd-server etcd-peer apiserver-etcd-client kubelet kubelet-client admin)
port=$(sed -n 's#^ *server: https://[^:]*:\([0-9]*\).*#\1#p' "$dir/admin.kubeconfig")
kubectl=$(cluster/build.sh --status kubectl | cut -d' ' -f2)

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
serials() {
    local cert
    for cert in "${certs[@]}"; do echo "$cert $(openssl x509 -noout -serial -in "$pki/$cert.crt")"; done
}
# The serial of the certificate a component serves at ADDRESS (with a client certificate, etcd).
served() {
    openssl s_client -connect "$1" "${@:2}" </dev/null 2>/dev/null | openssl x509 -noout -serial
}
converge() {
    "$@" "${renew[@]}" >"$log" 2>&1 || { tail -n 40 "$log" >&2; fail "the converge failed; full log $log"; }
}

before=$(serials)
converge "$@"
tr -s ' \n' '  ' <"$log" | grep -o 'Renewed [0-9]* certificate(s)[^:]*' || fail "the converge renewed nothing"
after=$(serials)
while read -r cert serial; do
    [[ $(grep "^$cert " <<<"$before") != "$cert $serial" ]] || fail "$cert.crt was not renewed ($serial)"
    echo "$cert renewed: $(openssl x509 -noout -enddate -in "$pki/$cert.crt")"
done <<<"$after"

for check in "apiserver 127.0.0.1:$port" "kubelet 127.0.0.1:10250" \
    "etcd-server 127.0.0.1:2379 -cert $pki/apiserver-etcd-client.crt -key $pki/apiserver-etcd-client.key"; do
    read -r cert address client <<<"$check"
    # shellcheck disable=SC2086 # the client certificate's options
    now=$(served "$address" $client)
    [[ $now == "$(openssl x509 -noout -serial -in "$pki/$cert.crt")" ]] ||
        fail "$address serves $now, not the renewed $cert.crt"
    echo "$address serves the renewed $cert.crt ($now)"
done

"$kubectl" --kubeconfig "$dir/admin.kubeconfig" wait node --all --for=condition=Ready --timeout=120s
"$kubectl" --kubeconfig "$dir/admin.kubeconfig" -n kube-system wait deployment --all --for=condition=Available --timeout=120s

converge "$@"
[[ $(serials) == "$after" ]] || fail "a converge with the same settings renewed a certificate again"
grep -qE 'changed=0 .*failed=0' "$log" || fail "a converge with the same settings changed something; log $log"
echo "a converge with the same settings renews nothing more"
