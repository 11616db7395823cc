#!/usr/bin/env bash
# Build the local cluster's binaries from the Go module proxy, pinned by cluster/versions.env,
# into the binary cache: $FLASK_K8S_CACHE/bin/<name>-<version>/<name>.
# A binary already in the cache is not rebuilt. One line per component on stdout:
#   <name> <path> cached|built
# Usage: cluster/build.sh [--status] [all | COMPONENT...]
#   --status   build nothing; print "<name> <path> cached|missing" per component
#   components: kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
#               etcd coredns metrics-server pause
#               kube-router (built only when named: the network policy engine, docs/network-policy.md)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=cluster/versions.env
. "$here/versions.env"
cache=${FLASK_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flask-k8s}
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -buildvcs=false -trimpath"
kube_components=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
all_components=("${kube_components[@]}" etcd coredns metrics-server pause)

version_of() {
    case $1 in
        kube-router) echo "$KUBE_ROUTER_VERSION" ;;
        kube-*|kubelet|kubectl) echo "$KUBERNETES_VERSION" ;;
        etcd) echo "$ETCD_VERSION" ;;
        coredns) echo "$COREDNS_VERSION" ;;
        metrics-server) echo "$METRICS_SERVER_VERSION" ;;
        pause) echo "$PAUSE_VERSION" ;;
        *) echo "build.sh: unknown component '$1' (known: ${all_components[*]})" >&2; return 1 ;;
    esac
}

build_one() {
    local name=$1 version out tmp start ldflags pkg dir
    version=$(version_of "$name")
    out=$cache/bin/$name-$version/$name
    if [[ -x $out ]]; then
        echo "$name $out cached"
        return 0
    fi
    if [[ $status_only == true ]]; then
        echo "$name $out missing"
        return 0
    fi
    mkdir -p "${out%/*}"
    tmp=$out.tmp.$$
    start=$(date +%s)
    case $name in
        kube-router)
            ldflags="-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$version"
            ldflags+=" -X github.com/cloudnativelabs/kube-router/v2/pkg/version.BuildDate=1970-01-01T00:00:00Z"
            dir=$here/kube-router pkg=. mod=github.com/cloudnativelabs/kube-router/v2 modver=${version%-flask-k8s.*} ;;
        kube-*|kubelet|kubectl)
            local minor=${version#v1.}; minor=${minor%%.*}
            ldflags="-s -w"
            for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
                ldflags+=" -X $p.gitVersion=$version -X $p.gitMajor=1 -X $p.gitMinor=$minor"
                ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
            done
            dir=$here/k8s pkg=k8s.io/kubernetes/cmd/$name ;;
        etcd)
            ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$version"
            dir=$here/etcd pkg=go.etcd.io/etcd/server/v3 ;;
        coredns)
            ldflags="-s -w -X github.com/coredns/coredns/coremain.GitCommit=$version"
            dir=$here/coredns pkg=github.com/coredns/coredns ;;
        metrics-server)
            ldflags="-s -w -X k8s.io/client-go/pkg/version.gitVersion=$version"
            dir=$here/metrics-server pkg=sigs.k8s.io/metrics-server/cmd/metrics-server ;;
        pause)
            ldflags="-s -w -X main.version=$version" dir=$here/pause pkg=. ;;
    esac
    echo "build.sh: building $name $version (go build $pkg)" >&2
    (cd "$dir" && go build -ldflags "$ldflags" -o "$tmp" "$pkg")
    mv -f "$tmp" "$out"
    echo "$(date -u +%FT%TZ) $name $version $(($(date +%s) - start))s" >>"$cache/build-times.log"
    echo "build.sh: built $name in $(($(date +%s) - start))s" >&2
    echo "$name $out built"
}

status_only=false
if [[ ${1:-} == --status ]]; then
    status_only=true
    shift
fi
components=("$@")
if [[ ${#components[@]} -eq 0 || ${components[0]} == all ]]; then
    components=("${all_components[@]}")
fi
for c in "${components[@]}"; do version_of "$c" >/dev/null; done
mkdir -p "$cache/bin"
for c in "${components[@]}"; do build_one "$c"; done
