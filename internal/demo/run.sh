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
# `run.sh failover-up` runs two berthd replicas on a 3-member etcd,
# applies the quickstart through them, kills the leader with kill -9 and
# applies again through the survivor; `run.sh failover-down` destroys it
# and stops everything (a failed failover-up cleans up by itself).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
export BERTH_ENGINES_DIR="${BERTH_ENGINES_DIR:-/tmp/berth-engines}"
case "${1:-up}" in
  failover-*) WORK="${BERTH_DEMO_DIR:-/tmp/berth-demo-failover}" ;;
  *) WORK="${BERTH_DEMO_DIR:-/tmp/berth-demo}" ;;
esac

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

# engines_json writes engines.json (node3 over verified TLS, with its
# certificates: the credentials live in berthd, not in the workspace) and
# builds berthd.
engines_json() {
  (cd "$ROOT" && go build -o "$WORK/bin/berthd" ./scheduler/cmd/berthd)
  cat >"$WORK/engines.json" <<JSON
{
  "node1": {"endpoint": "$BERTH_TEST_ENDPOINT_node1"},
  "node2": {"endpoint": "$BERTH_TEST_ENDPOINT_node2"},
  "node3": {"endpoint": "$BERTH_TEST_TLS_ENDPOINT",
            "tls": {"ca_file": "$BERTH_TEST_TLS_CA", "cert_file": "$BERTH_TEST_TLS_CERT", "key_file": "$BERTH_TEST_TLS_KEY"}}
}
JSON
}

# start_berthd LISTEN ARGS... starts berthd in the background (pid in
# $WORK/berthd-PORT.pid, log in $WORK/berthd-PORT.log) and waits until its
# /healthz answers 200.
start_berthd() {
  local listen=$1 port=${1##*:}
  shift
  BERTHD_ADMIN_TOKEN="$BERTH_SCHEDULER_TOKEN" nohup "$WORK/bin/berthd" serve --listen "$listen" \
    --engines "$WORK/engines.json" "$@" >"$WORK/berthd-$port.log" 2>&1 &
  echo $! >"$WORK/berthd-$port.pid"
  for _ in $(seq 1 300); do
    if curl -fsS "http://$listen/healthz" >/dev/null 2>&1; then
      echo "berthd is ready at http://$listen (log: $WORK/berthd-$port.log)"
      return
    fi
    sleep 0.2
  done
  cat "$WORK/berthd-$port.log" >&2
  echo "berthd at $listen did not become ready" >&2
  exit 1
}

berthd_up() {
  engines_json
  start_berthd "$BERTHD_LISTEN" --data-dir "$WORK/berthd-data"
}

berthd_down() {
  local pid
  for pid in "$WORK"/berthd-*.pid; do
    [ -f "$pid" ] || continue
    kill "$(cat "$pid")" 2>/dev/null || true
    rm -f "$pid"
  done
}

# remote_workspace URLS is the quickstart, its provider block switched to
# remote mode by an override file (the engines are berthd's now).
remote_workspace() {
  mkdir -p "$WORK/remote"
  cp "$ROOT"/examples/quickstart/*.tf "$WORK/remote/"
  cat >"$WORK/remote/remote_override.tf" <<TF
provider "berth" {
  engines       = null
  scheduler_url = "$1"
}
TF
}

# apply_remote applies the quickstart in $WORK/remote: the pool first (in
# practice by an admin workspace: a plan can only take leases in a pool
# berthd already holds), then the rest.
apply_remote() {
  cd "$WORK/remote"
  "$TF_ACC_TERRAFORM_PATH" apply -auto-approve -input=false -target=berth_pool.demo "${VARS[@]}"
  "$TF_ACC_TERRAFORM_PATH" apply -auto-approve -input=false "${VARS[@]}"
}

remote_up() {
  bash "$ROOT/internal/testenv/tools.sh"
  bash "$ROOT/internal/testenv/engines.sh" up
  provider_env
  engine_vars
  berthd_up
  remote_workspace "http://$BERTHD_LISTEN"
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

# The failover demo: etcd members on 127.0.0.1 (client port, peer port
# +1), berthd replicas on 8701 and 8702.
ETCD_CLIENT_PORTS=(2379 2479 2579)
REPLICAS=(127.0.0.1:8701 127.0.0.1:8702)

etcd_up() {
  local etcd cluster="" i port
  etcd=$(bash "$ROOT/internal/testenv/etcd.sh")
  for i in 0 1 2; do
    cluster+="${cluster:+,}m$i=http://127.0.0.1:$((ETCD_CLIENT_PORTS[i] + 1))"
  done
  mkdir -p "$WORK/etcd"
  for i in 0 1 2; do
    port=${ETCD_CLIENT_PORTS[i]}
    nohup "$etcd" --name "m$i" --data-dir "$WORK/etcd/m$i" \
      --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
      --listen-peer-urls "http://127.0.0.1:$((port + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((port + 1))" \
      --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token berth-demo \
      --log-level warn >"$WORK/etcd/m$i.log" 2>&1 &
    echo $! >"$WORK/etcd/m$i.pid"
  done
  for port in "${ETCD_CLIENT_PORTS[@]}"; do
    for _ in $(seq 1 150); do
      curl -fsS "http://127.0.0.1:$port/health" 2>/dev/null | grep -q '"health":"true"' && continue 2
      sleep 0.2
    done
    cat "$WORK"/etcd/*.log >&2
    echo "etcd member on port $port did not become healthy" >&2
    exit 1
  done
  echo "etcd: 3 members on 127.0.0.1:${ETCD_CLIENT_PORTS[*]} (logs: $WORK/etcd)"
}

etcd_down() {
  local pid
  for pid in "$WORK"/etcd/*.pid; do
    [ -f "$pid" ] || continue
    kill "$(cat "$pid")" 2>/dev/null || true
    rm -f "$pid"
  done
}

# leader_among LISTEN... prints the one whose /healthz says it leads and
# is ready, waiting for the election.
leader_among() {
  local listen
  for _ in $(seq 1 300); do
    for listen in "$@"; do
      if curl -fsS "http://$listen/healthz" 2>/dev/null | grep -q '"role":"leader"'; then
        echo "$listen"
        return
      fi
    done
    sleep 0.1
  done
  echo "no replica became leader" >&2
  exit 1
}

failover_up() {
  trap 'echo "failover demo failed; cleaning up" >&2; failover_down' ERR
  bash "$ROOT/internal/testenv/tools.sh"
  bash "$ROOT/internal/testenv/engines.sh" up
  provider_env
  engine_vars
  etcd_up
  engines_json
  local endpoints listen leader standby
  endpoints=$(printf 'http://127.0.0.1:%s,' "${ETCD_CLIENT_PORTS[@]}")
  for listen in "${REPLICAS[@]}"; do
    start_berthd "$listen" --store etcd --etcd-endpoints "${endpoints%,}" --leader-ttl 2s
  done
  leader=$(leader_among "${REPLICAS[@]}")
  standby=${REPLICAS[0]}
  [ "$standby" != "$leader" ] || standby=${REPLICAS[1]}
  echo "leader: http://$leader; standby: http://$standby (it proxies to the leader)"
  remote_workspace "http://$leader,http://$standby"
  apply_remote
  echo
  "$TF_ACC_TERRAFORM_PATH" output -raw placement
  echo
  echo "kill -9 of the leader, http://$leader"
  local killed=$SECONDS
  kill -9 "$(cat "$WORK/berthd-${leader##*:}.pid")"
  rm -f "$WORK/berthd-${leader##*:}.pid"
  leader_among "$standby" >/dev/null
  echo "http://$standby leads now ($((SECONDS - killed))s after the kill): $(curl -fsS "http://$standby/healthz")"
  echo
  echo "terraform apply again, with scheduler_url still listing the dead leader first:"
  "$TF_ACC_TERRAFORM_PATH" apply -auto-approve -input=false "${VARS[@]}"
  "$TF_ACC_TERRAFORM_PATH" plan -detailed-exitcode -input=false "${VARS[@]}" >/dev/null
  echo "converged: the replan through the new leader is empty"
  echo
  "$TF_ACC_TERRAFORM_PATH" output -raw placement
  echo
  echo "status page: http://$standby/#token=$BERTH_SCHEDULER_TOKEN; clean up with make demo-failover-down"
  trap - ERR
}

failover_down() {
  trap - ERR
  set +e
  if [ -f "$BERTH_ENGINES_DIR/engines.env" ] && [ -d "$WORK/remote" ] && compgen -G "$WORK/berthd-*.pid" >/dev/null; then
    provider_env
    engine_vars
    (cd "$WORK/remote" && "$TF_ACC_TERRAFORM_PATH" destroy -auto-approve -input=false "${VARS[@]}")
  fi
  berthd_down
  etcd_down
  bash "$ROOT/internal/testenv/engines.sh" down
  rm -rf "$WORK"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  remote-up) remote_up ;;
  remote-down) remote_down ;;
  three-tier-up) three_tier_up ;;
  three-tier-down) three_tier_down ;;
  failover-up) failover_up ;;
  failover-down) failover_down ;;
  *) echo "usage: $0 [up|down|remote-up|remote-down|three-tier-up|three-tier-down|failover-up|failover-down]" >&2; exit 2 ;;
esac
