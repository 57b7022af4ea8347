#!/usr/bin/env bash
# The demo: start local engines, build the provider, apply
# examples/quickstart with the embedded scheduler and print where every
# container landed. `run.sh down` destroys it and stops the engines.
# `run.sh remote-up` does the same through berthd (remote mode): berthd
# holds the engines and places at plan time, so the saved plan shows every
# host; `run.sh remote-down` destroys it, stops berthd and the engines.
# `run.sh three-tier-up` applies examples/three-tier (web, app and a
# database joined across the engines by a macvlan network on a bridge the
# script creates) and sends one request through the three tiers;
# `run.sh three-tier-down` destroys it, removes the bridge and stops the
# engines.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
export BERTH_ENGINES_DIR="${BERTH_ENGINES_DIR:-/tmp/berth-engines}"
WORK="${BERTH_DEMO_DIR:-/tmp/berth-demo}"

provider_env() {
  mkdir -p "$WORK/bin"
  (cd "$ROOT" && go build -o "$WORK/bin/terraform-provider-berth" .)
  cat >"$WORK/terraformrc" <<RC
provider_installation {
  dev_overrides { "registry.terraform.io/berthsh/berth" = "$WORK/bin" }
  direct {}
}
RC
  export TF_CLI_CONFIG_FILE="$WORK/terraformrc" TF_IN_AUTOMATION=1
}

engine_vars() {
  # shellcheck disable=SC1091
  source "$BERTH_ENGINES_DIR/engines.env"
  VARS=(-var "node1_endpoint=$BERTH_TEST_ENDPOINT_node1" -var "node2_endpoint=$BERTH_TEST_ENDPOINT_node2"
        -var "node3_endpoint=$BERTH_TEST_ENDPOINT_node3" -var "image=$BERTH_TEST_IMAGE")
}

up() {
  bash "$ROOT/internal/testenv/tools.sh"
  bash "$ROOT/internal/testenv/engines.sh" up
  provider_env
  engine_vars
  mkdir -p "$WORK/quickstart"
  cp "$ROOT"/examples/quickstart/*.tf "$WORK/quickstart/"
  cd "$WORK/quickstart"
  "$TF_ACC_TERRAFORM_PATH" apply -auto-approve -input=false "${VARS[@]}"
  echo
  "$TF_ACC_TERRAFORM_PATH" output -raw placement
}

BERTHD_LISTEN="${BERTHD_LISTEN:-127.0.0.1:8700}"
export BERTH_SCHEDULER_TOKEN="${BERTH_SCHEDULER_TOKEN:-berth-demo-admin-token}"

# berthd_up writes engines.json (node3 over verified TLS, with its
# certificates: the credentials live in berthd, not in the workspace) and
# starts berthd, waiting until it is ready.
berthd_up() {
  (cd "$ROOT" && go build -o "$WORK/bin/berthd" ./scheduler/cmd/berthd)
  cat >"$WORK/engines.json" <<JSON
{
  "node1": {"endpoint": "$BERTH_TEST_ENDPOINT_node1"},
  "node2": {"endpoint": "$BERTH_TEST_ENDPOINT_node2"},
  "node3": {"endpoint": "$BERTH_TEST_TLS_ENDPOINT",
            "tls": {"ca_file": "$BERTH_TEST_TLS_CA", "cert_file": "$BERTH_TEST_TLS_CERT", "key_file": "$BERTH_TEST_TLS_KEY"}}
}
JSON
  BERTHD_ADMIN_TOKEN="$BERTH_SCHEDULER_TOKEN" nohup "$WORK/bin/berthd" serve --listen "$BERTHD_LISTEN" \
    --data-dir "$WORK/berthd-data" --engines "$WORK/engines.json" >"$WORK/berthd.log" 2>&1 &
  echo $! >"$WORK/berthd.pid"
  for _ in $(seq 1 300); do
    if curl -fsS "http://$BERTHD_LISTEN/healthz" >/dev/null 2>&1; then
      echo "berthd is ready at http://$BERTHD_LISTEN (log: $WORK/berthd.log)"
      return
    fi
    sleep 0.2
  done
  cat "$WORK/berthd.log" >&2
  echo "berthd did not become ready" >&2
  exit 1
}

berthd_down() {
  if [ -f "$WORK/berthd.pid" ]; then
    kill "$(cat "$WORK/berthd.pid")" 2>/dev/null || true
    rm -f "$WORK/berthd.pid"
  fi
}

# remote_workspace is the quickstart, its provider block switched to
# remote mode by an override file (the engines are berthd's now).
remote_workspace() {
  mkdir -p "$WORK/remote"
  cp "$ROOT"/examples/quickstart/*.tf "$WORK/remote/"
  cat >"$WORK/remote/remote_override.tf" <<TF
provider "berth" {
  engines       = null
  scheduler_url = "http://$BERTHD_LISTEN"
}
TF
}

remote_up() {
  bash "$ROOT/internal/testenv/tools.sh"
  bash "$ROOT/internal/testenv/engines.sh" up
  provider_env
  engine_vars
  berthd_up
  remote_workspace
  cd "$WORK/remote"
  local tf="$TF_ACC_TERRAFORM_PATH"
  # Pools are set up first (in practice by an admin workspace): a plan can
  # only take leases in a pool berthd already holds.
  "$tf" apply -auto-approve -input=false -target=berth_pool.demo "${VARS[@]}"
  "$tf" plan -input=false -out=tfplan "${VARS[@]}"
  echo
  echo "Hosts known at plan (berthd holds each placement with a lease):"
  "$tf" show -no-color tfplan | awk '/# berth_container\./ { c = $2 } c && /[+] host +=/ { print "  " c " -> " $NF; c = "" }'
  "$tf" apply -input=false tfplan
  echo
  "$tf" output -raw placement
}

remote_down() {
  if [ -f "$BERTH_ENGINES_DIR/engines.env" ] && [ -d "$WORK/remote" ] && [ -f "$WORK/berthd.pid" ]; then
    provider_env
    engine_vars
    (cd "$WORK/remote" && "$TF_ACC_TERRAFORM_PATH" destroy -auto-approve -input=false "${VARS[@]}") || true
  fi
  berthd_down
  bash "$ROOT/internal/testenv/engines.sh" down
  rm -rf "$WORK"
}

down() {
  if [ -f "$BERTH_ENGINES_DIR/engines.env" ] && [ -d "$WORK/quickstart" ]; then
    provider_env
    engine_vars
    (cd "$WORK/quickstart" && "$TF_ACC_TERRAFORM_PATH" destroy -auto-approve -input=false "${VARS[@]}") || true
  fi
  bash "$ROOT/internal/testenv/engines.sh" down
  rm -rf "$WORK"
}

# The three-tier stack's macvlan network needs an interface every engine
# has: the engines share this machine's kernel, so one bridge serves them
# all, as a switch would serve separate hosts.
THREE_TIER_PARENT="${BERTH_THREE_TIER_PARENT:-berth3tier0}"

three_tier_up() {
  bash "$ROOT/internal/testenv/tools.sh"
  bash "$ROOT/internal/testenv/engines.sh" up
  if ! ip link show "$THREE_TIER_PARENT" >/dev/null 2>&1; then
    ip link add "$THREE_TIER_PARENT" type bridge
  fi
  ip link set "$THREE_TIER_PARENT" up
  provider_env
  engine_vars
  mkdir -p "$WORK/three-tier"
  cp "$ROOT"/examples/three-tier/*.tf "$WORK/three-tier/"
  cd "$WORK/three-tier"
  local tf="$TF_ACC_TERRAFORM_PATH"
  "$tf" apply -auto-approve -input=false "${VARS[@]}" -var "parent=$THREE_TIER_PARENT"
  echo
  "$tf" output hosts
  echo
  echo "web-0 -> app-0 -> db (each on the host Berth chose):"
  curl -fsS --max-time 20 "$("$tf" output -raw through_the_tiers)"
}

three_tier_down() {
  if [ -f "$BERTH_ENGINES_DIR/engines.env" ] && [ -d "$WORK/three-tier" ]; then
    provider_env
    engine_vars
    (cd "$WORK/three-tier" && "$TF_ACC_TERRAFORM_PATH" destroy -auto-approve -input=false "${VARS[@]}" -var "parent=$THREE_TIER_PARENT") || true
  fi
  bash "$ROOT/internal/testenv/engines.sh" down
  ip link del "$THREE_TIER_PARENT" 2>/dev/null || true
  rm -rf "$WORK"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  remote-up) remote_up ;;
  remote-down) remote_down ;;
  three-tier-up) three_tier_up ;;
  three-tier-down) three_tier_down ;;
  *) echo "usage: $0 [up|down|remote-up|remote-down|three-tier-up|three-tier-down]" >&2; exit 2 ;;
esac
