#!/usr/bin/env bash
# Build the local base image for the Flask Dockerfile, flask-k8s/python-base:bookworm:
# a minimal Debian bookworm (debootstrap) with python3 and venv (or BASE_PACKAGES), trusting the host's CA
# bundle so that pip inside `docker build` reaches PyPI. Prints "present" when the image
# already exists, "built" after building it. Needs a running Docker engine
# (scripts/docker-engine.sh ensure) and root.
#   BASE_PACKAGES (default python3,python3-venv; ca-certificates is always added), BASE_CMD
#   (default /usr/bin/python3): the packages and command of another base, such as the network
#   policy engine's (iptables,ipset)
#   BASE_IMAGE (default flask-k8s/python-base:bookworm), DEBIAN_MIRROR (default: the first
#   Debian mirror in the host's apt sources, else http://deb.debian.org/debian)
set -euo pipefail

image=${BASE_IMAGE:-flask-k8s/python-base:bookworm}
packages=${BASE_PACKAGES:-python3,python3-venv},ca-certificates
command=${BASE_CMD:-/usr/bin/python3}
ca_bundle=/etc/ssl/certs/ca-certificates.crt

if docker image inspect "$image" >/dev/null 2>&1; then
  echo present
  exit 0
fi

mirror=${DEBIAN_MIRROR:-}
if [[ -z "$mirror" ]]; then
  mirror=$(grep -hoE '(URIs:|deb) +https?://[^ ]+/debian/?( |$)' \
    /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | awk '{print $2}' | head -n 1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  echo "build-base-image.sh: installing debootstrap" >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q debootstrap >&2 ||
    { apt-get -o DPkg::Lock::Timeout=300 update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q debootstrap >&2; }
fi
[[ -r "$ca_bundle" ]] || { echo "build-base-image.sh: $ca_bundle missing" >&2; exit 1; }

work=$(mktemp -d /tmp/flask-k8s-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

echo "build-base-image.sh: debootstrap bookworm from $mirror" >&2
debootstrap --variant=minbase --include="$packages" \
  bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

# Trust what the host trusts (TLS to package registries may pass through its CA).
install -m 0644 "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
# Smaller image: no package lists, caches, documentation or locales.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
  "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
  "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' \
  -exec rm -rf {} + 2>/dev/null || true

tar --numeric-owner -C "$rootfs" -c . |
  docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "CMD [\"$command\"]" \
    - "$image" >/dev/null
echo built
