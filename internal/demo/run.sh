#!/usr/bin/env bash
# The demo: start local engines, build the provider, apply
# examples/quickstart with the embedded scheduler and print where every
# container landed. `run.sh down` destroys it and stops the engines.
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

down() {
  if [ -f "$BERTH_ENGINES_DIR/engines.env" ] && [ -d "$WORK/quickstart" ]; then
    provider_env
    engine_vars
    (cd "$WORK/quickstart" && "$TF_ACC_TERRAFORM_PATH" destroy -auto-approve -input=false "${VARS[@]}") || true
  fi
  bash "$ROOT/internal/testenv/engines.sh" down
  rm -rf "$WORK"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 [up|down]" >&2; exit 2 ;;
esac
