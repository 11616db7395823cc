#!/usr/bin/env bash
# The offline cache of the minikube provider (docs/minikube.md): everything the real minikube
# would download, built on this machine from the Go module proxy and Debian packages.
#   1. the binaries (cluster/build.sh --minikube): minikube, kubeadm, kubelet, kubectl, the
#      control plane, etcd, CoreDNS, pause, storage-provisioner, metrics-server, crictl;
#   2. the node image for `minikube start --base-image` (images/minikube-node);
#   3. the component images, tagged in the host's Docker engine under the names kubeadm and
#      minikube look up (minikube checks the local engine before any registry);
#   4. kubeadm, kubelet and kubectl where minikube's cache keeps them for the Kubernetes version.
# Only what is missing or out of date is built; a second run changes nothing and says so.
# Progress goes to stderr; stdout ends with the settings a caller needs, one `key=value` a line:
#   minikube, kubectl, minikube_home, base_image, kubernetes_version, start_args,
#   addon_metrics_server_args, load_images
# Usage: scripts/minikube-cache.sh [--check]
#   --check   build nothing: exit 0 when everything is in place, else 1 naming what is missing
#             or out of date
# Environment: FLASK_K8S_CACHE (binary cache), MINIKUBE_HOME (as minikube reads it; default
# $HOME), BASE_IMAGE (the Debian base image, built by scripts/build-base-image.sh).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=cluster/versions.env
. "$root/cluster/versions.env"
base_image=${BASE_IMAGE:-flask-k8s/python-base:bookworm}
minikube_home=${MINIKUBE_HOME:-}
if [[ -z $minikube_home ]]; then
  mini=$HOME/.minikube
elif [[ ${minikube_home##*/} == .minikube ]]; then
  mini=$minikube_home
else
  mini=$minikube_home/.minikube
fi
check_only=false
[[ ${1:-} != --check ]] || check_only=true
label=flask-k8s.source
changed=0 missing=()

say() { echo "minikube-cache: $*" >&2; }

declare -A bin
read_binaries() {
  local name path state
  while read -r name path state; do
    bin[$name]=$path
    if [[ $state == missing ]]; then missing+=("binary $name"); fi
    if [[ $state == built ]]; then changed=$((changed + 1)); fi
  done
}

# The images kubeadm runs for this Kubernetes version must be the versions this cache builds.
check_kubeadm_images() {
  local refs ref repo tag want
  refs=$("${bin[kubeadm]}" config images list --kubernetes-version "$KUBERNETES_VERSION")
  while read -r ref; do
    repo=${ref%:*} tag=${ref##*:}
    case ${repo#registry.k8s.io/} in
      kube-apiserver|kube-controller-manager|kube-scheduler|kube-proxy) want=$KUBERNETES_VERSION ;;
      etcd) want=$ETCD_VERSION tag=v${tag%-*} ;;
      coredns/coredns) want=$COREDNS_VERSION ;;
      pause) want=$PAUSE_VERSION ;;
      *) say "kubeadm $KUBERNETES_VERSION names an image this cache does not build: $ref"; exit 1 ;;
    esac
    [[ $tag == "$want" ]] || {
      say "kubeadm $KUBERNETES_VERSION runs $ref, cluster/versions.env pins $want"
      exit 1
    }
  done <<<"$refs"
}

# What an image is built from: its Dockerfile directory, the binary, the build arguments and
# the base image. An image whose label carries the same fingerprint is up to date.
fingerprint() {
  local dir=$1 binary=$2
  shift 2
  {
    (cd "$root/$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
    stat -c '%n %s %Y' "$binary"
    printf '%s\n' "$@"
    if [[ " $* " == *" BASE_IMAGE="* ]]; then
      docker image inspect -f '{{.Id}}' "$base_image"
    fi
  } | sha256sum | cut -c1-16
}

# minikube start saves every image it needs into its own cache once (from the local engine) and
# reuses that file afterwards: a rebuilt image must drop it.
forget_minikube_copy() {
  local ref=$1
  rm -f "$mini/cache/images/amd64/${ref%:*}_${ref##*:}"
}

# image TAG DIR BINARY [BUILD_ARG...]
image() {
  local tag=$1 dir=$2 binary=$3 fp have ctx start
  shift 3
  if [[ $check_only == true && ! -x $binary ]]; then
    missing+=("image $tag")
    return 0
  fi
  fp=$(fingerprint "$dir" "$binary" "$@")
  have=$(docker image inspect -f "{{index .Config.Labels \"$label\"}}" "$tag" 2>/dev/null || true)
  [[ $have != "$fp" ]] || return 0
  if [[ $check_only == true ]]; then
    missing+=("image $tag")
    return 0
  fi
  say "building image $tag ($dir)"
  start=$(date +%s)
  ctx=$(mktemp -d /tmp/minikube-cache.XXXXXX)
  cp -a "$root/$dir/." "$ctx/"
  cp "$binary" "$ctx/"
  local args=(--label "$label=$fp" -t "$tag")
  local arg
  for arg in "$@"; do args+=(--build-arg "$arg"); done
  # The Dockerfile's steps as they start, as progress; the whole output in a log.
  if ! docker build "${args[@]}" "$ctx" 2>&1 | tee "$ctx.log" |
    awk '/^Step [0-9]+\/[0-9]+ : / { print "minikube-cache:   " substr($0, 1, 100); fflush() }' >&2; then
    tail -n 30 "$ctx.log" >&2
    say "building image $tag failed; full log $ctx.log"
    rm -rf "$ctx"
    exit 1
  fi
  rm -rf "$ctx" "$ctx.log"
  forget_minikube_copy "$tag"
  say "built image $tag in $(($(date +%s) - start))s"
  changed=$((changed + 1))
}

# kubeadm, kubelet and kubectl where `minikube start` looks before downloading them.
binary_cache() {
  local dir=$mini/cache/linux/amd64/$KUBERNETES_VERSION name
  for name in kubeadm kubelet kubectl; do
    if [[ $dir/$name -ef ${bin[$name]} ]] || cmp -s "$dir/$name" "${bin[$name]}"; then
      continue
    fi
    if [[ $check_only == true ]]; then
      missing+=("$dir/$name")
      continue
    fi
    mkdir -p "$dir"
    ln -f "${bin[$name]}" "$dir/$name" 2>/dev/null || cp -f "${bin[$name]}" "$dir/$name"
    changed=$((changed + 1))
  done
}

if [[ $check_only == true ]]; then
  read_binaries <<<"$("$root/cluster/build.sh" --minikube --status)"
  docker info >/dev/null 2>&1 || { say "no Docker engine answers (scripts/docker-engine.sh ensure)"; exit 1; }
  docker image inspect "$base_image" >/dev/null 2>&1 || missing+=("image $base_image")
else
  say "binaries (cluster/build.sh --minikube; each build says when it starts and ends)"
  read_binaries <<<"$("$root/cluster/build.sh" --minikube all)"
  "$root/scripts/docker-engine.sh" ensure --privileged >/dev/null
  if [[ $("$root/scripts/build-base-image.sh") == built ]]; then changed=$((changed + 1)); fi
  check_kubeadm_images
fi

image "$MINIKUBE_NODE_IMAGE" images/minikube-node "${bin[crictl]}" "BASE_IMAGE=$base_image"
k8s=registry.k8s.io
for name in kube-apiserver kube-controller-manager kube-scheduler; do
  image "$k8s/$name:$KUBERNETES_VERSION" images/kube-component "${bin[$name]}" "COMPONENT=$name"
done
image "$k8s/etcd:${ETCD_VERSION#v}-0" images/kube-component "${bin[etcd]}" COMPONENT=etcd
image "$k8s/kube-proxy:$KUBERNETES_VERSION" images/kube-proxy "${bin[kube-proxy]}" "BASE_IMAGE=$base_image"
image "$k8s/coredns/coredns:$COREDNS_VERSION" images/minikube-coredns "${bin[coredns]}"
image "$k8s/pause:$PAUSE_VERSION" images/pause "${bin[pause]}"
image "gcr.io/k8s-minikube/storage-provisioner:$MINIKUBE_STORAGE_PROVISIONER_VERSION" \
  images/storage-provisioner "${bin[storage-provisioner]}"
metrics_server=$k8s/metrics-server/metrics-server:$METRICS_SERVER_VERSION
image "$metrics_server" images/metrics-server "${bin[metrics-server]}"
binary_cache

if [[ $check_only == true ]]; then
  if ((${#missing[@]} > 0)); then
    say "missing or out of date: ${missing[*]} (make minikube-cache builds them)"
    exit 1
  fi
elif ((changed == 0)); then
  say "everything was already in place; nothing to do"
else
  say "done: $changed item(s) built or updated"
fi

# minikube refuses the docker driver as root unless forced.
force=""
if ((EUID == 0)); then force=" --force"; fi
cat <<EOF
minikube=${bin[minikube]}
kubectl=${bin[kubectl]}
minikube_home=$minikube_home
base_image=$MINIKUBE_NODE_IMAGE
kubernetes_version=$KUBERNETES_VERSION
start_args=--driver=docker --container-runtime=containerd --kubernetes-version=$KUBERNETES_VERSION --base-image=$MINIKUBE_NODE_IMAGE --preload=false --cni=bridge --extra-config=kubeadm.ignore-preflight-errors=HTTPProxyCIDR$force
addon_metrics_server_args=--images=MetricsServer=${metrics_server#"$k8s"/} --registries=MetricsServer=$k8s
load_images=$metrics_server
EOF
