#!/usr/bin/env bash
# Build the clusters' binaries from the Go module proxy, pinned by cluster/versions.env, into
# the binary cache: $FLASK_K8S_CACHE/bin/<name>-<version>/<name>. The local cluster and the
# offline minikube run the same versions, so they share every build.
# A binary already in the cache is not rebuilt. One line per component on stdout:
#   <name> <path> cached|built
# Usage: cluster/build.sh [--minikube] [--status] [all | COMPONENT...]
#   --status   build nothing; print "<name> <path> cached|missing" per component
#   --minikube the offline minikube's set (docs/minikube.md): minikube, storage-provisioner,
#              kubeadm, crictl and the components its images are made of
#   components: kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
#               etcd coredns metrics-server pause
#               (--minikube adds: minikube storage-provisioner kubeadm crictl)
#               kube-router (built only when named: the network policy engine, docs/network-policy.md)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=cluster/versions.env
. "$here/versions.env"
cache=${FLASK_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flask-k8s}
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -buildvcs=false -trimpath"
kube_components=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
all_components=("${kube_components[@]}" etcd coredns metrics-server pause)
minikube_components=(minikube storage-provisioner kubeadm "${kube_components[@]}" crictl
    etcd coredns metrics-server pause)
set_name=local

version_of() {
    case $1 in
        minikube) echo "$MINIKUBE_VERSION" ;;
        storage-provisioner) echo "$MINIKUBE_STORAGE_PROVISIONER_VERSION" ;;
        crictl) echo "$CRICTL_VERSION" ;;
        kube-router) echo "$KUBE_ROUTER_VERSION" ;;
        kube-*|kubelet|kubectl|kubeadm) echo "$KUBERNETES_VERSION" ;;
        etcd) echo "$ETCD_VERSION" ;;
        coredns) echo "$COREDNS_VERSION" ;;
        metrics-server) echo "$METRICS_SERVER_VERSION" ;;
        pause) echo "$PAUSE_VERSION" ;;
        *) echo "build.sh: unknown component '$1' (known: ${known[*]})" >&2; return 1 ;;
    esac
}

# The version of $2 that the wrapper module in $1 requires must be the one versions.env pins.
check_module() {
    local dir=$1 mod=$2 want=$3 have
    have=$(cd "$dir" && go list -m -f '{{.Version}}' "$mod")
    [[ $have == "$want" ]] || {
        echo "build.sh: ${dir#"$here"/}/go.mod requires $mod $have, cluster/versions.env pins $want; regenerate the wrapper module" >&2
        return 1
    }
}

# Upstream's pause (a static C program in k8s.io/kubernetes' build/pause), at the tag kubeadm names.
build_pause_c() {
    local out=$1 version=$2 src
    if ! command -v cc >/dev/null || ! [[ -f /usr/lib/x86_64-linux-gnu/libc.a || -f /usr/lib/libc.a ]]; then
        if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
            echo "build.sh: installing gcc and libc6-dev (pause is a static C program)" >&2
            export DEBIAN_FRONTEND=noninteractive
            apt-get install -y -q --no-install-recommends gcc libc6-dev >&2 ||
                { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends gcc libc6-dev >&2; } || true
        fi
        if ! command -v cc >/dev/null; then
            echo "build.sh: building pause $version needs a C compiler and static libc: apt-get install gcc libc6-dev" >&2
            return 1
        fi
    fi
    src=$(cd "$here/k8s" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c
    grep -q "^TAG ?= $version\$" "${src%/linux/pause.c}/Makefile" || {
        echo "build.sh: $src is not pause $version (see its Makefile's TAG)" >&2
        return 1
    }
    cc -Os -Wall -Werror -static -DVERSION="v$version" -o "$out" "$src" && strip "$out"
}

# A line every minute while a build runs, so that a long build shows it is alive.
heartbeat() {
    local name=$1 start=$2
    while sleep 60; do
        echo "build.sh: still building $name ($(($(date +%s) - start))s)" >&2
    done
}

build_one() {
    local name=$1 version out tmp start ldflags pkg dir mod modver
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
        kube-*|kubelet|kubectl|kubeadm)
            local minor=${version#v1.}; minor=${minor%%.*}
            ldflags="-s -w"
            for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
                ldflags+=" -X $p.gitVersion=$version -X $p.gitMajor=1 -X $p.gitMinor=$minor"
                ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
            done
            dir=$here/k8s pkg=k8s.io/kubernetes/cmd/$name mod=k8s.io/kubernetes ;;
        etcd)
            ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$version"
            dir=$here/etcd pkg=go.etcd.io/etcd/server/v3 mod=$pkg ;;
        coredns)
            ldflags="-s -w -X github.com/coredns/coredns/coremain.GitCommit=$version"
            dir=$here/coredns pkg=github.com/coredns/coredns mod=$pkg ;;
        minikube|storage-provisioner)
            dir=$here/minikube mod=k8s.io/minikube modver=$MINIKUBE_VERSION
            # storage-provisioner: a module of its own, which pins the client-go it works with.
            if [[ $name == storage-provisioner ]]; then dir=$here/storage-provisioner; fi
            minikube_stamps "$dir"
            if [[ $name == minikube ]]; then
                ldflags="-s -w -X $mod/pkg/version.version=$MINIKUBE_VERSION"
                ldflags+=" -X $mod/pkg/version.isoVersion=$minikube_iso_version"
                ldflags+=" -X $mod/pkg/version.gitCommitID=$minikube_commit"
                ldflags+=" -X $mod/pkg/version.storageProvisionerVersion=$MINIKUBE_STORAGE_PROVISIONER_VERSION"
            else
                ldflags="-s -w -X $mod/pkg/storage.version=$version"
            fi
            pkg=$mod/cmd/$name ;;
        crictl)
            ldflags="-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$version"
            dir=$here/cri-tools pkg=sigs.k8s.io/cri-tools/cmd/crictl mod=sigs.k8s.io/cri-tools ;;
        metrics-server)
            ldflags="-s -w -X k8s.io/client-go/pkg/version.gitVersion=$version"
            dir=$here/metrics-server pkg=sigs.k8s.io/metrics-server/cmd/metrics-server mod=sigs.k8s.io/metrics-server ;;
        pause) ;;
    esac
    [[ -z ${mod:-} ]] || check_module "$dir" "$mod" "${modver:-$version}"
    local beat status=0
    heartbeat "$name" "$start" &
    beat=$!
    if [[ $name == pause ]]; then
        echo "build.sh: building $name $version (cc build/pause/linux/pause.c of k8s.io/kubernetes $KUBERNETES_VERSION)" >&2
        build_pause_c "$tmp" "$version" || status=$?
    else
        echo "build.sh: building $name $version (go build $pkg)" >&2
        (cd "$dir" && go build -ldflags "$ldflags" -o "$tmp" "$pkg") || status=$?
    fi
    kill "$beat"
    wait "$beat" 2>/dev/null || true
    if ((status != 0)); then
        echo "build.sh: building $name failed" >&2
        return "$status"
    fi
    mv -f "$tmp" "$out"
    echo "$(date -u +%FT%TZ) $name $version $(($(date +%s) - start))s" >>"$cache/build-times.log"
    echo "build.sh: built $name in $(($(date +%s) - start))s" >&2
    echo "$name $out built"
}

# What minikube's own Makefile stamps besides its version: the ISO version and the commit of
# the release tag (from the module proxy's origin record, when it has one).
minikube_stamps() {
    [[ -z ${minikube_iso_version:-} ]] || return 0
    local src info want_tag
    export GONOSUMDB=${GONOSUMDB:+$GONOSUMDB,}k8s.io/minikube
    src=$(cd "$1" && go list -m -f '{{.Dir}}' k8s.io/minikube)
    minikube_iso_version=$(awk '$1 == "ISO_VERSION" && $2 == "?=" { print $3 }' "$src/Makefile")
    want_tag=$(awk '$1 == "STORAGE_PROVISIONER_TAG" && $2 == "?=" { print $3 }' "$src/Makefile")
    [[ $want_tag == "$MINIKUBE_STORAGE_PROVISIONER_VERSION" ]] || {
        echo "build.sh: minikube $MINIKUBE_VERSION tags storage-provisioner $want_tag, cluster/versions.env pins $MINIKUBE_STORAGE_PROVISIONER_VERSION" >&2
        return 1
    }
    info=$(cd "$1" && go mod download -json "k8s.io/minikube@$MINIKUBE_VERSION")
    minikube_commit=$(sed -n 's/^[[:space:]]*"Hash": "\([0-9a-f]*\)".*/\1/p' <<<"$info")
}

status_only=false
while [[ ${1:-} == --* ]]; do
    case $1 in
        --status) status_only=true ;;
        --minikube) set_name=minikube ;;
        *) echo "build.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
    shift
done
if [[ $set_name == minikube ]]; then known=("${minikube_components[@]}"); else known=("${all_components[@]}"); fi
components=("$@")
if [[ ${#components[@]} -eq 0 || ${components[0]} == all ]]; then
    components=("${known[@]}")
fi
for c in "${components[@]}"; do version_of "$c" >/dev/null; done
mkdir -p "$cache/bin"
for c in "${components[@]}"; do build_one "$c"; done
