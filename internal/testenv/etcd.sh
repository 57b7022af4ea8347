#!/usr/bin/env bash
# etcd.sh: prints the path of an etcd server binary (v3.7.3) for the
# replicated-berthd tests and demo, building it once from the Go module
# proxy (internal/tools/etcd pins the version) into
# $BERTH_TOOLS_CACHE/bin (default ${XDG_CACHE_HOME:-$HOME/.cache}/berth/bin).
# $BERTH_ETCD, when set, is used as it is. Progress goes to stderr; stdout
# is the binary's absolute path alone: ETCD=$(bash etcd.sh).
set -euo pipefail

readonly etcd_version=3.7.3
readonly cache_dir=${BERTH_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth}
readonly src_dir="$(cd "$(dirname "$0")/../tools/etcd" && pwd)"

log() { echo "etcd.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# reports_version succeeds when $1 runs and is etcd v$etcd_version. The
# output is captured whole (no pipe into grep -q under pipefail).
reports_version() {
  local out
  out=$("$1" --version 2>/dev/null) || return 1
  [[ ${out%%$'\n'*} == "etcd Version: $etcd_version" ]]
}

if [[ -n ${BERTH_ETCD:-} ]]; then
  [[ -x $BERTH_ETCD ]] || die "BERTH_ETCD=$BERTH_ETCD is not executable"
  echo "$BERTH_ETCD"
  exit 0
fi
built=$cache_dir/bin/etcd-v$etcd_version
if [[ -x $built ]] && reports_version "$built"; then
  echo "$built"
  exit 0
fi
command -v go >/dev/null || die "no Go toolchain to build etcd v$etcd_version"
log "building etcd v$etcd_version from the Go module proxy into $built (a few minutes, once)"
mkdir -p "$cache_dir/bin"
(cd "$src_dir" && GOFLAGS=-buildvcs=false go build -trimpath -o "$built.tmp" .) >&2 || die "building etcd failed"
mv "$built.tmp" "$built"
reports_version "$built" || die "$built does not run"
echo "$built"
