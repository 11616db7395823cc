#!/usr/bin/env bash
# FerretDB, the MongoDB-wire server the tests and the benchmark run against.
#   scripts/ferretdb.sh build   build FerretDB (static, CGO_ENABLED=0) from the Go module proxy
#                               into the binary cache unless it is already there; prints the path
#   scripts/ferretdb.sh path    prints the cached binary's path (exit 1 when not built yet)
# FERRETDB_VERSION (default 1.24.2) and FLASK_K8S_CACHE choose version and cache directory.
set -euo pipefail

version=${FERRETDB_VERSION:-1.24.2}
cache=${FLASK_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flask-k8s}
dir="$cache/bin/ferretdb-$version"
bin="$dir/ferretdb"

find_go() {
  if command -v go >/dev/null 2>&1; then
    command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then
    echo /usr/local/go/bin/go
  else
    echo "ferretdb.sh: no Go toolchain found (need go >= 1.22 on PATH or /usr/local/go)" >&2
    exit 1
  fi
}

build() {
  if [[ -x "$bin" ]]; then
    echo "$bin"
    return
  fi
  local go src
  go=$(find_go)
  mkdir -p "$dir"
  work=$(mktemp -d "$dir/.build.XXXXXX")
  trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
  echo "ferretdb.sh: building FerretDB v$version (CGO_ENABLED=0), this takes a few minutes" >&2
  # `go install ...@v` builds a binary that panics at start: FerretDB reads its version from
  # build/version/version.txt, which the module does not ship. Build from a copy of the
  # module with that file written instead.
  src=$(GOFLAGS=-mod=mod "$go" mod download -json "github.com/FerretDB/FerretDB@v$version" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -d "$src" ]] || { echo "ferretdb.sh: module download failed" >&2; exit 1; }
  cp -r "$src" "$work/src"
  chmod -R u+w "$work/src"
  echo "v$version" >"$work/src/build/version/version.txt"
  (cd "$work/src" && CGO_ENABLED=0 "$go" build -trimpath -o "$work/ferretdb" ./cmd/ferretdb) >&2
  "$work/ferretdb" --version >/dev/null
  mv "$work/ferretdb" "$bin"
  echo "$bin"
}

case ${1:-} in
  build) build ;;
  path)
    [[ -x "$bin" ]] || { echo "ferretdb.sh: $bin not built; run: $0 build" >&2; exit 1; }
    echo "$bin"
    ;;
  *)
    echo "usage: $0 build|path" >&2
    exit 2
    ;;
esac
