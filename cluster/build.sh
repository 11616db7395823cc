#!/usr/bin/env bash
# Build the clusters' binaries from the Go module proxy, pinned by cluster/versions.env, into
# the binary cache: $FLASK_K8S_CACHE/bin/<name>-<version>-<recipe>/<name>. <recipe> is a hash
# of how the binary is built (its wrapper module's files, package, linker flags and Go flags;
# pause's compiler flags; busybox's Debian package), so a change to any of them builds a new
# binary on every machine, beside the old one. The local cluster and the offline minikube run
# the same versions, so they share every build.
# A binary already in the cache is not rebuilt. One line per component on stdout:
#   <name> <path> cached|built
# Usage: cluster/build.sh [--minikube] [--status] [all | COMPONENT...]
#   --status   build nothing; print "<name> <path> cached|missing" per component
#   --minikube the offline minikube's set (docs/minikube.md): minikube, storage-provisioner,
#              kubeadm, crictl and the components its images are made of
#   components: kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
#               etcd coredns metrics-server pause local-path-provisioner busybox
#               (--minikube adds: minikube storage-provisioner kubeadm crictl)
#               kube-router (built only when named: the network policy engine, docs/network-policy.md)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=cluster/versions.env
. "$here/versions.env"
cache=${FLASK_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flask-k8s}
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -buildvcs=false -trimpath"
kube_components=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
all_components=("${kube_components[@]}" etcd coredns metrics-server pause local-path-provisioner busybox)
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
        local-path-provisioner) echo "$LOCAL_PATH_PROVISIONER_VERSION" ;;
        busybox) echo "$BUSYBOX_VERSION" ;;
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

# The source directory of module $2 as wrapper module $1 requires it, downloaded first when
# the module cache does not have it (`go list -m` alone names no directory then).
module_src() {
    local dir
    dir=$(cd "$1" && go mod download -json "$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [[ -n $dir && -d $dir ]] || { echo "build.sh: module $2 of ${1#"$here"/} could not be downloaded" >&2; return 1; }
    echo "$dir"
}

# Upstream's pause (a static C program in k8s.io/kubernetes' build/pause), at the tag kubeadm names.
pause_cflags="-Os -Wall -Werror -static"
build_pause_c() {
    local out=$1 version=$2 src
    if ! command -v cc >/dev/null || ! [[ -f /usr/lib/x86_64-linux-gnu/libc.a || -f /usr/lib/libc.a ]]; then
        if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
            echo "build.sh: installing gcc and libc6-dev (pause is a static C program)" >&2
            export DEBIAN_FRONTEND=noninteractive
            apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends gcc libc6-dev >&2 ||
                { apt-get -o DPkg::Lock::Timeout=300 update -q >&2 && apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends gcc libc6-dev >&2; } || true
        fi
        if ! command -v cc >/dev/null; then
            echo "build.sh: building pause $version needs a C compiler and static libc: apt-get install gcc libc6-dev" >&2
            return 1
        fi
    fi
    src=$(module_src "$here/k8s" k8s.io/kubernetes)/build/pause/linux/pause.c
    grep -q "^TAG ?= $version\$" "${src%/linux/pause.c}/Makefile" || {
        echo "build.sh: $src is not pause $version (see its Makefile's TAG)" >&2
        return 1
    }
    # shellcheck disable=SC2086 # the flags are separate words
    cc $pause_cflags -DVERSION="v$version" -o "$out" "$src" && strip "$out"
}

# Debian's static busybox (package busybox-static), the shell and tools of the local volume
# provisioner's helper pods: downloaded with apt-get, never installed on the host. Its
# upstream version must be the one versions.env pins.
busybox_package=busybox-static
build_busybox() {
    local out=$1 version=$2 candidate tmp
    candidate=$(apt-cache policy "$busybox_package" 2>/dev/null | awk '$1 == "Candidate:" { print $2 }')
    if [[ -z $candidate || $candidate == "(none)" ]] && [[ $(id -u) == 0 ]]; then
        apt-get -o DPkg::Lock::Timeout=300 update -q >&2 || true
        candidate=$(apt-cache policy "$busybox_package" 2>/dev/null | awk '$1 == "Candidate:" { print $2 }')
    fi
    [[ $candidate =~ ^([0-9]+:)?${version//./\.}- ]] || {
        echo "build.sh: Debian offers $busybox_package '${candidate:-none}', cluster/versions.env pins busybox $version" >&2
        return 1
    }
    tmp=$(mktemp -d "$cache/bin/.busybox.XXXXXX")
    (cd "$tmp" && apt-get -o APT::Sandbox::User=root download -q "$busybox_package=$candidate" >&2 &&
        dpkg-deb -x ./*.deb root) || { rm -rf "$tmp"; return 1; }
    mv "$tmp/root/bin/busybox" "$out"
    rm -rf "$tmp"
}

# A line every minute while a build runs, so that a long build shows it is alive. Stopped
# with SIGTERM, it takes its sleep along: a sleep left behind would hold the caller's output
# pipe open (a play, `$(build.sh)`) for up to a minute after the build.
heartbeat() {
    local name=$1 start=$2 sleeper=""
    trap '[[ -z $sleeper ]] || kill "$sleeper" 2>/dev/null; exit 0' TERM
    while :; do
        sleep 60 &
        sleeper=$!
        wait "$sleeper"
        echo "build.sh: still building $name ($(($(date +%s) - start))s)" >&2
    done
}

# cluster/coredns/main.go imports upstream's plugin set (plugin.cfg) except these: a new
# CoreDNS version's plugins are checked against it, not assumed.
coredns_left_out="route53 azure clouddns dnssec trace"
check_coredns_plugins() {
    local src want have
    src=$(module_src "$here/coredns" github.com/coredns/coredns)
    want=$(awk -F: -v out=" $coredns_left_out " '
        /^[a-z0-9_]+:/ && index(out, " " $1 " ") == 0 {
            print ($2 ~ /\//) ? $2 : "github.com/coredns/coredns/plugin/" $2
        }' "$src/plugin.cfg" | sort)
    have=$(sed -n 's/^[[:space:]]*_ "\(.*\)"$/\1/p' "$here/coredns/main.go" | sort)
    [[ $want == "$have" ]] || {
        echo "build.sh: cluster/coredns/main.go does not import upstream's plugins but $coredns_left_out:" >&2
        diff <(echo "$want") <(echo "$have") >&2 || true
        return 1
    }
}

# The version stamps of the Kubernetes binaries, as upstream's build sets them.
kube_ldflags() {
    local version=$1 minor p ldflags="-s -w"
    minor=${version#v1.}; minor=${minor%%.*}
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X $p.gitVersion=$version -X $p.gitMajor=1 -X $p.gitMinor=$minor"
        ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
    done
    echo "$ldflags"
}

is_kube() {
    case $1 in kube-router) return 1 ;; kube-*|kubelet|kubectl|kubeadm) return 0 ;; *) return 1 ;; esac
}

# The wrapper module a component is built from and its main package: "<dir> <package>"
# (pause: the module whose source holds pause.c, no package; busybox: neither).
source_of() {
    case $1 in
        kube-router) echo "$here/kube-router ." ;;
        kube-*|kubelet|kubectl|kubeadm) echo "$here/k8s k8s.io/kubernetes/cmd/$1" ;;
        pause) echo "$here/k8s -" ;;
        busybox) echo "- -" ;;
        etcd) echo "$here/etcd go.etcd.io/etcd/server/v3" ;;
        coredns) echo "$here/coredns ." ;;
        minikube) echo "$here/minikube k8s.io/minikube/cmd/minikube" ;;
        # A module of its own, which pins the client-go it works with.
        storage-provisioner) echo "$here/storage-provisioner k8s.io/minikube/cmd/storage-provisioner" ;;
        crictl) echo "$here/cri-tools sigs.k8s.io/cri-tools/cmd/crictl" ;;
        metrics-server) echo "$here/metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server" ;;
        local-path-provisioner) echo "$here/local-path-provisioner github.com/rancher/local-path-provisioner" ;;
    esac
}

# The upstream module whose version the wrapper module must require: "<module> <version>".
module_of() {
    local version
    version=$(version_of "$1")
    case $1 in
        kube-router) echo "github.com/cloudnativelabs/kube-router/v2 ${version%-flask-k8s.*}" ;;
        kube-*|kubelet|kubectl|kubeadm) echo "k8s.io/kubernetes $version" ;;
        etcd) echo "go.etcd.io/etcd/server/v3 $version" ;;
        coredns) echo "github.com/coredns/coredns $version" ;;
        minikube|storage-provisioner) echo "k8s.io/minikube $MINIKUBE_VERSION" ;;
        crictl) echo "sigs.k8s.io/cri-tools $version" ;;
        metrics-server) echo "sigs.k8s.io/metrics-server $version" ;;
        local-path-provisioner) echo "github.com/rancher/local-path-provisioner $version" ;;
    esac
}

# The linker flags of a Go component. minikube's stamps that its release's Makefile and
# commit give (they follow from the pinned version) are the placeholders @MINIKUBE_ISO_VERSION@
# and @MINIKUBE_COMMIT@, filled in when it is built.
ldflags_of() {
    local name=$1 version=$2 mod=k8s.io/minikube
    case $name in
        kube-router)
            echo "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$version" \
                "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.BuildDate=1970-01-01T00:00:00Z" ;;
        kube-*|kubelet|kubectl|kubeadm) kube_ldflags "$version" ;;
        etcd) echo "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$version" ;;
        coredns) echo "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$version" ;;
        minikube)
            echo "-s -w -X $mod/pkg/version.version=$MINIKUBE_VERSION -X $mod/pkg/version.isoVersion=@MINIKUBE_ISO_VERSION@" \
                "-X $mod/pkg/version.gitCommitID=@MINIKUBE_COMMIT@" \
                "-X $mod/pkg/version.storageProvisionerVersion=$MINIKUBE_STORAGE_PROVISIONER_VERSION" ;;
        storage-provisioner) echo "-s -w -X $mod/pkg/storage.version=$version" ;;
        crictl) echo "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$version" ;;
        metrics-server) echo "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$version" ;;
        local-path-provisioner) echo "-s -w -X main.VERSION=$version" ;;
    esac
}

# A hash of how a component is built: the build command with its flags and the files of its
# wrapper module (go.mod, go.sum, *.go: the versions of every module it compiles, CoreDNS's
# plugin list). It names the binary's directory in the cache, beside its version.
recipe_of() {
    local name=$1 version dir pkg
    version=$(version_of "$name")
    read -r dir pkg <<<"$(source_of "$name")"
    {
        echo "$name $version"
        case $name in
            pause) echo "cc $pause_cflags -DVERSION=v$version build/pause/linux/pause.c; strip" ;;
            busybox) echo "apt-get download $busybox_package=$version-*; bin/busybox" ;;
            *) echo "CGO_ENABLED=$CGO_ENABLED GOFLAGS=$GOFLAGS go build -ldflags '$(ldflags_of "$name" "$version")' $pkg" ;;
        esac
        if [[ $dir != - ]]; then
            (cd "$dir" && find . -maxdepth 1 -type f \( -name go.mod -o -name go.sum -o -name '*.go' \) -print0 |
                sort -z | xargs -0 sha256sum)
        fi
    } | sha256sum | cut -c1-12
}

# Where a component's binary lives in the cache.
binary_path() {
    echo "$cache/bin/$1-$(version_of "$1")-$(recipe_of "$1")/$1"
}

# Module downloads wait on the network, not the CPU: the modules of every binary to build
# (what `go list -deps` of its packages loads, one `go list` per wrapper module) download side
# by side in the background from the start, while the first build compiles.
prefetch_pids=()
prefetch_modules() {
    local name dir pkg
    local -A dir_pkgs=()
    [[ $status_only == false ]] || return 0
    for name in "$@"; do
        [[ -x ${path_of[$name]} ]] && continue
        read -r dir pkg <<<"$(source_of "$name")"
        [[ $pkg != - ]] || continue
        dir_pkgs[$dir]+=" $pkg"
    done
    for dir in "${!dir_pkgs[@]}"; do
        # shellcheck disable=SC2086 # the packages are one word each
        (cd "$dir" && GONOSUMDB=${GONOSUMDB:+$GONOSUMDB,}k8s.io/minikube go list -deps ${dir_pkgs[$dir]} >/dev/null 2>&1) &
        prefetch_pids+=($!)
    done
}

# Takes the lock of the binary $3 ($1 $2) into lock_fd, saying so when another build.sh holds
# it: one build of a binary at a time, so a second build.sh (make binaries in the background,
# a play in the foreground) waits for the first and then finds the binary cached.
lock_binary() {
    mkdir -p "${3%/*}"
    exec {lock_fd}>"${3%/*}.lock"
    if ! flock -n "$lock_fd"; then
        echo "build.sh: waiting for another build of $1 $2" >&2
        flock "$lock_fd"
    fi
}

# The Kubernetes binaries share most of their packages: one `go build` of all those missing
# links them side by side instead of one after the other. Each is then in the cache, and
# build_one finds it there.
build_kube_group() {
    local name version out lock locks=() names=() pkgs=() start status=0 tmpdir beat
    [[ $status_only == false ]] || return 0
    for name in "$@"; do
        is_kube "$name" || continue
        version=$(version_of "$name")
        out=${path_of[$name]}
        [[ -x $out ]] && continue
        lock_binary "$name" "$version" "$out"
        locks+=("$lock_fd")
        [[ -x $out ]] || names+=("$name")
    done
    if ((${#names[@]} < 2)); then
        for lock in "${locks[@]}"; do exec {lock}>&-; done
        return 0
    fi
    version=$KUBERNETES_VERSION
    check_module "$here/k8s" k8s.io/kubernetes "$version"
    for name in "${names[@]}"; do pkgs+=("$(source_of "$name" | cut -d' ' -f2)"); done
    tmpdir=$(mktemp -d "$cache/bin/.kube-build.XXXXXX")
    start=$(date +%s)
    echo "build.sh: building ${names[*]} $version (one go build)" >&2
    heartbeat "${names[*]}" "$start" &
    beat=$!
    (cd "$here/k8s" && go build -ldflags "$(kube_ldflags "$version")" -o "$tmpdir/" "${pkgs[@]}") || status=$?
    kill "$beat"
    wait "$beat" 2>/dev/null || true
    if ((status != 0)); then
        rm -rf "$tmpdir"
        echo "build.sh: building ${names[*]} failed" >&2
        return "$status"
    fi
    for name in "${names[@]}"; do
        mv -f "$tmpdir/$name" "${path_of[$name]}"
    done
    rm -rf "$tmpdir"
    for lock in "${locks[@]}"; do exec {lock}>&-; done
    echo "$(date -u +%FT%TZ) $(IFS=+; echo "${names[*]}") $version $(($(date +%s) - start))s" >>"$cache/build-times.log"
    echo "build.sh: built ${names[*]} in $(($(date +%s) - start))s" >&2
}

build_one() {
    local name=$1 version out tmp start ldflags pkg dir mod modver
    version=$(version_of "$name")
    out=${path_of[$name]}
    if [[ -x $out ]]; then
        echo "$name $out cached"
        return 0
    fi
    if [[ $status_only == true ]]; then
        echo "$name $out missing"
        return 0
    fi
    lock_binary "$name" "$version" "$out"
    local lock=$lock_fd
    if [[ -x $out ]]; then
        exec {lock}>&-
        echo "$name $out cached"
        return 0
    fi
    tmp=$out.tmp.$$
    start=$(date +%s)
    read -r dir pkg <<<"$(source_of "$name")"
    read -r mod modver <<<"$(module_of "$name")"
    case $name in
        coredns) check_coredns_plugins ;;
        minikube|storage-provisioner) minikube_stamps "$dir" ;;
    esac
    [[ -z ${mod:-} ]] || check_module "$dir" "$mod" "$modver"
    local beat status=0
    heartbeat "$name" "$start" &
    beat=$!
    case $name in
        pause)
            echo "build.sh: building $name $version (cc build/pause/linux/pause.c of k8s.io/kubernetes $KUBERNETES_VERSION)" >&2
            build_pause_c "$tmp" "$version" || status=$? ;;
        busybox)
            echo "build.sh: fetching $name $version (Debian's $busybox_package)" >&2
            build_busybox "$tmp" "$version" || status=$? ;;
        *)
            ldflags=$(ldflags_of "$name" "$version")
            ldflags=${ldflags//@MINIKUBE_ISO_VERSION@/${minikube_iso_version:-}}
            ldflags=${ldflags//@MINIKUBE_COMMIT@/${minikube_commit:-}}
            echo "build.sh: building $name $version (go build $pkg)" >&2
            (cd "$dir" && go build -ldflags "$ldflags" -o "$tmp" "$pkg") || status=$? ;;
    esac
    kill "$beat"
    wait "$beat" 2>/dev/null || true
    if ((status != 0)); then
        echo "build.sh: building $name failed" >&2
        return "$status"
    fi
    mv -f "$tmp" "$out"
    exec {lock}>&-
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
    src=$(module_src "$1" k8s.io/minikube)
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
declare -A path_of=()
for c in "${components[@]}"; do path_of[$c]=$(binary_path "$c"); done
mkdir -p "$cache/bin"
prefetch_modules "${components[@]}"
build_kube_group "${components[@]}"
for c in "${components[@]}"; do build_one "$c"; done
# Every download has ended by now (each build loaded its package's modules); reap them.
for pid in "${prefetch_pids[@]}"; do wait "$pid" || true; done
