#!/usr/bin/env bash
# The `existing` cluster provider, end to end, against a running local cluster treated as "a
# cluster you already have" (make test-cluster runs this while its cluster, the tests' own
# instance of cluster/test-instance.yml, is up):
#   1. a registry on loopback (scripts/registry.sh) that the cluster pulls from;
#   2. site.yml with cluster_provider=existing: images pushed to the registry, the database and
#      the service deployed from there; a second run changes nothing; Services deleted by hand
#      are restored by the next run;
#   3. the pods run the registry's images, and verify.yml's smoke check passes through the
#      NodePort;
#   4. teardown.yml removes the deployment and deletes its data (the volumes of its claims, by
#      their provisioner), the registry is stopped.
# Throwaway credentials and vault password live in $out; nothing in group_vars/ is touched.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${EXISTING_TEST_OUT:-build/test-existing}
kubeconfig=${FLASK_K8S_KUBECONFIG:-/var/lib/flask-k8s/test/cluster/admin.kubeconfig}
registry=127.0.0.1:5000
mkdir -p "$out"
rm -f "$out/secrets.yml" "$out/vault-pass"
export FLASK_K8S_VAULT_PASSWORD_FILE=$PWD/$out/vault-pass ANSIBLE_FORCE_COLOR=0
unset ANSIBLE_CONFIG ANSIBLE_VAULT_PASSWORD_FILE
args=(
    -e cluster_provider=existing
    -e "existing_cluster_kubeconfig=$kubeconfig"
    -e existing_cluster_context=flask-k8s-local
    -e "existing_cluster_image_registry=$registry"
    -e existing_cluster_pulls_images=false
    # The local cluster's NodePorts answer on loopback only.
    -e existing_cluster_node_address=127.0.0.1
    -e "flask_k8s_secrets_file=$PWD/$out/secrets.yml"
)
kubectl() { "$(cluster/build.sh --status kubectl | cut -d' ' -f2)" --kubeconfig "$kubeconfig" "$@"; }
log() { printf '\n=== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

teardown() {
    ansible-playbook playbooks/teardown.yml "${args[@]}" -e teardown_delete_data=true >"$out/teardown.log" 2>&1 ||
        { tail -n 20 "$out/teardown.log" >&2; echo "FAIL: teardown of the existing provider failed" >&2; return 1; }
}
# After a failure: the deployment and its data go; always: the registry stops. A teardown or
# a stop that fails fails the run.
cleanup() {
    local rc=$?
    if ((rc != 0)); then teardown || rc=1; fi
    scripts/registry.sh stop >/dev/null || { echo "FAIL: the registry on $registry did not stop" >&2; rc=1; }
    exit "$rc"
}
trap cleanup EXIT

log "Registry on $registry"
scripts/registry.sh ensure

log "Credentials of this test"
ansible-playbook playbooks/setup.yml -e "flask_k8s_secrets_file=$PWD/$out/secrets.yml" >"$out/setup.log" 2>&1 ||
    { tail -n 20 "$out/setup.log" >&2; fail "setup.yml"; }

log "site.yml with cluster_provider=existing"
start=$SECONDS
ansible-playbook playbooks/site.yml "${args[@]}" >"$out/deploy.log" 2>&1 ||
    { tail -n 40 "$out/deploy.log" >&2; fail "site.yml with the existing provider; full log $out/deploy.log"; }
echo "converged in $((SECONDS - start)) s"
grep -q 'Cluster provider: existing' "$out/deploy.log" || fail "site.yml did not use the existing provider"

log "Second run changes nothing"
ansible-playbook playbooks/site.yml "${args[@]}" >"$out/deploy-again.log" 2>&1 ||
    { tail -n 40 "$out/deploy-again.log" >&2; fail "second site.yml"; }
recap=$(grep -E '^localhost +:' "$out/deploy-again.log")
echo "$recap"
grep -qE 'changed=0 .*failed=0' <<<"$recap" || { grep -B3 '^changed:' "$out/deploy-again.log" >&2; fail "the second run changed something"; }

log "Objects deleted by hand come back with the next run"
kubectl -n flask-mongodb delete service flask-service mongodb-service >/dev/null
ansible-playbook playbooks/site.yml "${args[@]}" >"$out/deploy-restore.log" 2>&1 ||
    { tail -n 40 "$out/deploy-restore.log" >&2; fail "site.yml after deleting the Services"; }
said() { tr -s ' \n' '  ' <"$out/deploy-restore.log" | grep -qF "$1"; }
said 'Applying the database again: Service/flask-mongodb/mongodb-service no longer exist' ||
    fail "site.yml did not notice that mongodb-service was deleted"
said 'Applying the service again: Service/flask-mongodb/flask-service no longer exist' ||
    fail "site.yml did not notice that flask-service was deleted"
kubectl -n flask-mongodb get service flask-service mongodb-service >/dev/null || fail "the Services were not restored"
echo "flask-service and mongodb-service deleted by hand, restored by the next run"

log "The pods run the registry's images"
images=$(kubectl -n flask-mongodb get pods -o jsonpath='{range .items[*]}{.spec.containers[*].image}{"\n"}{end}' | sort -u)
echo "$images"
[[ -n $images ]] || fail "no pods in flask-mongodb"
if grep -v "^$registry/" <<<"$images"; then fail "a pod runs an image that is not from $registry"; fi
curl -sf "http://$registry/v2/_catalog" | grep -q 'flask-k8s/flaskapp' || fail "the registry does not hold flask-k8s/flaskapp"

log "Smoke check through the NodePort"
ansible-playbook playbooks/verify.yml "${args[@]}" -e verify_only=smoke >"$out/verify.log" 2>&1 ||
    { tail -n 30 "$out/verify.log" >&2; fail "verify.yml smoke check; full log $out/verify.log"; }

log "teardown.yml with teardown_delete_data=true deletes the volumes of the claims"
claims=$(kubectl -n flask-mongodb get pvc -o jsonpath='{range .items[*]}{.spec.volumeName}{"\n"}{end}')
[[ -n $claims ]] || fail "no volume claim in flask-mongodb"
teardown || fail "teardown.yml with teardown_delete_data=true; full log $out/teardown.log"
said=$(tr -s ' \n' '  ' <"$out/teardown.log" | grep -o "Deleted the data: [^']*" | tail -n 1 || true)
echo "$said"
[[ -n $said ]] || fail "teardown.yml did not end saying that it deleted the data"
for volume in $claims; do
    if kubectl get pv "$volume" >/dev/null 2>&1; then fail "the volume $volume was not deleted"; fi
done
echo "the volumes $(echo "$claims" | xargs) were deleted with their claims"
echo "existing provider: PASS"
