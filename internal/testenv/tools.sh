#!/usr/bin/env bash
# tools.sh: makes sure the machine has what the test engines and acceptance
# tests need, installing only what is missing, so it is cheap to run every time.
#
#   - Docker engine binaries (dockerd, containerd, runc, docker-proxy, docker)
#     from Debian's docker.io package, plus iproute2 (bridges) and openssl
#     (TLS certificates), chromium (the status page's headless test) and
#     docker-registry (the image tests' local registry, started by registry.sh);
#   - a Terraform CLI: $TF_ACC_TERRAFORM_PATH when it points at one, else
#     `terraform` from PATH, else v1.5.7 (the last MPL-licensed release) built
#     from source once and cached in $BERTH_TOOLS_CACHE/bin
#     (default ${XDG_CACHE_HOME:-$HOME/.cache}/berth/bin).
#     BERTH_TERRAFORM_FROM_SOURCE=1 forces the v1.5.7 build, to check that
#     nothing depends on features newer than 1.5.
#
# Progress goes to stderr; stdout is the Terraform CLI's absolute path alone,
# so callers can capture it: TF=$(bash tools.sh).
set -euo pipefail

readonly terraform_version=1.5.7
readonly cache_dir=${BERTH_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth}

log() { echo "tools: $*" >&2; }
die() { log "error: $*"; exit 1; }

# apt_install installs Debian packages without starting their services:
# docker.io's postinst would otherwise start a system-wide dockerd, which the
# tests neither need nor want.
apt_install() {
  [[ $(id -u) == 0 ]] || die "need root to install $* (run as root, or install them yourself)"
  command -v apt-get >/dev/null || die "apt-get not found; install $* yourself"
  local policy=/usr/sbin/policy-rc.d created_policy=""
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    created_policy=1
  fi
  log "installing $* with apt-get"
  local rc=0
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
  } >&2 || rc=$?
  [[ -z $created_policy ]] || rm -f "$policy"
  ((rc == 0)) || die "apt-get install $* failed (exit $rc)"
}

ensure_packages() {
  local missing=()
  # docker.io brings containerd, runc and docker-proxy with it.
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v openssl >/dev/null || missing+=(openssl)
  # The status page's test drives it in headless Chromium.
  command -v chromium >/dev/null || missing+=(chromium)
  # The image tests pull from a local registry with auth (registry.sh).
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  ((${#missing[@]} == 0)) || apt_install "${missing[@]}"
  local tool
  for tool in dockerd containerd runc docker-proxy docker docker-registry ip ss openssl; do
    command -v "$tool" >/dev/null || die "$tool is still missing after installation"
  done
}

# terraform_reports_version succeeds when $1 is a Terraform CLI. The CLI
# config is pointed at /dev/null because the environment may name a file that
# does not exist, which makes Terraform print warnings.
# The output is captured whole before it is matched: a pipe into `head` or
# `grep -q` may close early, and under pipefail the CLI's SIGPIPE would then
# fail a check of a CLI that runs fine.
terraform_reports_version() {
  local out
  out=$(TF_CLI_CONFIG_FILE=/dev/null "$1" version 2>/dev/null) || return 1
  [[ ${out%%$'\n'*} == "Terraform v${2:-}"* ]]
}

# terraform_version_line prints the first line of the CLI's version output.
terraform_version_line() {
  local out
  out=$(TF_CLI_CONFIG_FILE=/dev/null "$1" version 2>/dev/null) || true
  echo "${out%%$'\n'*}"
}

build_terraform() {
  local bin_dir=$cache_dir/bin
  local built=$bin_dir/terraform
  if [[ -x $built ]] && terraform_reports_version "$built" "$terraform_version"; then
    echo "$built"
    return
  fi
  command -v go >/dev/null || die "no terraform in PATH and no Go toolchain to build v$terraform_version"
  log "building Terraform v$terraform_version from source into $bin_dir (a few minutes, once)"
  mkdir -p "$bin_dir"
  GOBIN=$bin_dir GOFLAGS=-buildvcs=false go install "github.com/hashicorp/terraform@v$terraform_version" >&2 ||
    die "go install github.com/hashicorp/terraform@v$terraform_version failed"
  terraform_reports_version "$built" "$terraform_version" || die "$built does not run"
  echo "$built"
}

find_terraform() {
  local candidate
  if [[ ${BERTH_TERRAFORM_FROM_SOURCE:-} == 1 ]]; then
    build_terraform
    return
  fi
  for candidate in "${TF_ACC_TERRAFORM_PATH:-}" "$(command -v terraform || true)"; do
    if [[ -n $candidate && -x $candidate ]] && terraform_reports_version "$candidate"; then
      realpath "$candidate"
      return
    fi
  done
  build_terraform
}

ensure_packages
terraform_path=$(find_terraform)
mkdir -p "$cache_dir"
echo "$terraform_path" >"$cache_dir/terraform-path"
log "terraform: $terraform_path ($(terraform_version_line "$terraform_path"))"
echo "$terraform_path"
