#!/usr/bin/env bash
# engines.sh: local Docker engines for Berth's acceptance tests and demo.
#
#   engines.sh up            start BERTH_ENGINES_COUNT (3) engines node1..nodeN
#   engines.sh down          stop them all and leave the machine as it was
#   engines.sh status        say which engines answer (exit 1 unless all do)
#   engines.sh stop nodeK    stop one engine, to simulate a lost host
#   engines.sh start nodeK   bring it back, with the same endpoint and data
#
# Each engine is a dockerd with its own containerd, socket, data and exec
# roots, cgroup parent and pre-created Linux bridge, all under
# BERTH_ENGINES_DIR (/tmp/berth-engines). Published ports are served by
# docker-proxy on 127.0.0.1, without iptables, so the engines touch neither
# the host's firewall nor its sysctls. The last engine also listens on
# tcp://127.0.0.1:PORT with verified TLS. Every engine holds the test image
# berth-test/app:1, imported from a static Go binary (no registry needed).
# `up` writes $BERTH_ENGINES_DIR/engines.env (for `source`) and engines.json
# (the same keys, read by the Go package internal/testenv).
#
# Needs root. Other dockerd instances on the machine are left alone: this
# script only touches processes, bridges, mounts and cgroups it recorded under
# its own directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
dir=$(realpath -m "${BERTH_ENGINES_DIR:-/tmp/berth-engines}")
readonly here repo dir
readonly start_timeout=${BERTH_ENGINES_START_TIMEOUT:-60}
readonly stop_timeout=${BERTH_ENGINES_STOP_TIMEOUT:-30}
readonly image=berth-test/app:1
readonly marker=$dir/.berth-engines
# Bridge berthbrS gets the S-th /20 of 10.192.0.0/12 (4,094 addresses: room
# for 1,000 containers on one engine); engine networks come from 10.214.S.0/24.
readonly bridge_prefix=berthbr cgroup_prefix=berth-engine-

# The docker CLI must talk only to the endpoint it is given.
unset DOCKER_HOST DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_CONTEXT

log() { echo "engines: $*" >&2; }
die() { log "error: $*"; exit 1; }

node_dir() { echo "$dir/$1"; }
socket_of() { echo "unix://$dir/$1/docker.sock"; }
slot_of() { cat "$dir/$1/slot"; }

# bridge_subnet prints slot $1's /20 (1 -> 10.192.16.0/20, 250 -> 10.207.160.0/20).
bridge_subnet() {
  local blocks=$(($1 * 16))
  echo "10.$((192 + blocks / 256)).$((blocks % 256)).0/20"
}

# bridge_address prints the bridge's own address in slot $1's subnet.
bridge_address() {
  local subnet
  subnet=$(bridge_subnet "$1")
  echo "${subnet%.0/20}.1/20"
}

# recorded_nodes lists the engines of the current set-up, in order.
recorded_nodes() {
  [[ -f $dir/nodes ]] && cat "$dir/nodes"
  return 0
}

# pid_from prints the pid in file $1 when that process is alive and its
# command line contains $2, guarding against pid reuse.
pid_from() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  grep -qaF -- "$2" "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

dockerd_pid() { pid_from "$dir/$1/docker.pid" "$dir/$1/docker.sock"; }
containerd_pid() { pid_from "$dir/$1/containerd.pid" "$dir/$1/containerd.toml"; }

engine_answers() { docker -H "$(socket_of "$1")" version >/dev/null 2>&1; }

tls_flags() {
  echo --tlsverify --tlscacert "$dir/tls/ca.pem" --tlscert "$dir/tls/cert.pem" --tlskey "$dir/tls/key.pem"
}

# alive succeeds while process $1 runs (a zombie awaiting its reaper is gone).
alive() {
  kill -0 "$1" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]
}

# stop_pid sends SIGTERM, waits up to stop_timeout, then sends SIGKILL.
stop_pid() {
  local pid=$1 what=$2 waited=0
  kill -TERM "$pid" 2>/dev/null || return 0
  while alive "$pid"; do
    if ((waited == stop_timeout * 10)); then
      log "$what (pid $pid) ignored SIGTERM for ${stop_timeout}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
}

# ---- set-up of one engine ----------------------------------------------------

# claim_slot creates the first free bridge berthbrS whose subnet nobody uses.
# `ip link add` fails when the name exists, so concurrent harnesses never
# share a bridge.
claim_slot() {
  local node=$1 slot
  for slot in $(seq 1 250); do
    ip link add "$bridge_prefix$slot" type bridge 2>/dev/null || continue
    # Any route or local address inside the /20 means someone uses it.
    if [[ -n $(ip -4 route show table all root "$(bridge_subnet "$slot")") ]]; then
      ip link del "$bridge_prefix$slot"
      continue
    fi
    echo "$slot" >"$dir/$node/slot"
    bring_up_bridge "$slot"
    return
  done
  die "no free bridge name $bridge_prefix<1-250> with a free /20 in 10.192.0.0/12"
}

# bring_up_bridge gives the bridge its address unless it has one: an engine
# set made by an older engines.sh (a /24 of 10.213.0.0/16) keeps its own.
bring_up_bridge() {
  local bridge=$bridge_prefix$1
  ip link show "$bridge" >/dev/null 2>&1 || ip link add "$bridge" type bridge
  [[ -n $(ip -4 -o addr show dev "$bridge") ]] || ip addr add "$(bridge_address "$1")" dev "$bridge"
  ip link set "$bridge" up
}

# configure_node writes the engine's containerd config and dockerd arguments,
# so that `start` brings it back exactly as `up` made it.
configure_node() {
  local node=$1 tls_port=${2:-} n
  n=$(node_dir "$node")
  mkdir -p "$n"
  # Unix sockets paths are limited to 108 bytes (containerd adds ".ttrpc").
  ((${#n} < 80)) || die "BERTH_ENGINES_DIR is too long for unix socket paths: $dir"
  claim_slot "$node"
  local slot
  slot=$(slot_of "$node")
  # Our own containerd: dockerd would otherwise share /run/containerd's when
  # one runs, mixing this engine's containers with another daemon's.
  cat >"$n/containerd.toml" <<EOF
version = 2
root = "$n/containerd/root"
state = "$n/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$n/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$n/containerd/opt"
EOF
  # An empty config file, so /etc/docker/daemon.json cannot change engines.
  echo '{}' >"$n/daemon.json"
  {
    printf '%s\n' --config-file "$n/daemon.json" \
      --host "unix://$n/docker.sock" \
      --data-root "$n/data" --exec-root "$n/exec" --pidfile "$n/docker.pid" \
      --containerd "$n/containerd.sock" \
      --bridge "$bridge_prefix$slot" --default-address-pool "base=10.214.$slot.0/24,size=28" \
      --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
      --userland-proxy=true --ip 127.0.0.1 \
      --cgroup-parent "/$cgroup_prefix$slot" --shutdown-timeout 5
    if [[ -n $tls_port ]]; then
      printf '%s\n' --host "tcp://127.0.0.1:$tls_port" --tlsverify \
        --tlscacert "$dir/tls/ca.pem" --tlscert "$dir/tls/server-cert.pem" --tlskey "$dir/tls/server-key.pem"
      echo "$tls_port" >"$n/tls-port"
    fi
  } >"$n/dockerd.args"
}

# start_node starts the engine's containerd and dockerd (each only when not
# running already) and waits until the engine answers.
start_node() {
  local node=$1 n pid
  n=$(node_dir "$node")
  [[ -f $n/dockerd.args ]] || die "$node is not an engine of $dir (run: engines.sh up)"
  bring_up_bridge "$(slot_of "$node")"
  if ! containerd_pid "$node" >/dev/null; then
    rm -f "$n/containerd.sock"
    # setsid: the daemons must outlive this script and ignore the caller's
    # Ctrl-C; no inherited stdout, or callers reading it would never see EOF;
    # no inherited lock (fd 9), or it would be held as long as they run.
    setsid containerd --config "$n/containerd.toml" </dev/null >>"$n/containerd.log" 2>&1 9>&- &
    echo $! >"$n/containerd.pid"
  fi
  if ! pid=$(dockerd_pid "$node"); then
    local args
    mapfile -t args <"$n/dockerd.args"
    setsid dockerd "${args[@]}" </dev/null >>"$n/dockerd.log" 2>&1 9>&- &
    pid=$!
  fi
  wait_node "$node" "$pid"
}

# wait_node waits, at most start_timeout seconds, for the engine to answer on
# its socket (and on TLS, when it has it), failing early if dockerd dies.
wait_node() {
  local node=$1 pid=$2 n deadline
  n=$(node_dir "$node")
  deadline=$((SECONDS + start_timeout))
  until engine_answers "$node" && { [[ ! -f $n/tls-port ]] || tls_answers "$node"; }; do
    if ! alive "$pid" || ((SECONDS >= deadline)); then
      local why="did not answer within ${start_timeout}s"
      alive "$pid" || why="exited"
      # One write, so that engines failing in parallel do not interleave.
      printf '%s\n' "engines: $node: dockerd $why; last lines of $n/dockerd.log:" \
        "$(tail -n 25 "$n/dockerd.log" 2>&1)" \
        "engines: $node: last lines of $n/containerd.log:" \
        "$(tail -n 5 "$n/containerd.log" 2>&1)" >&2
      die "$node: engine at $(socket_of "$node") $why"
    fi
    sleep 0.1
  done
}

tls_answers() {
  # shellcheck disable=SC2046
  docker $(tls_flags) -H "tcp://127.0.0.1:$(cat "$dir/$1/tls-port")" version >/dev/null 2>&1
}

# ---- tear-down ---------------------------------------------------------------

# stop_node stops the engine and everything it left running: dockerd stops
# its containers itself; what survives a killed dockerd (shims, container
# processes) is found through the engine's own containerd socket and cgroup.
stop_node() {
  local node=$1 n pid slot
  n=$(node_dir "$node")
  if pid=$(dockerd_pid "$node"); then stop_pid "$pid" "$node dockerd"; fi
  if pid=$(containerd_pid "$node"); then stop_pid "$pid" "$node containerd"; fi
  local cmdline
  for cmdline in $(grep -laF -- "$n/containerd.sock" /proc/[0-9]*/cmdline 2>/dev/null); do
    if grep -qaF containerd-shim "$cmdline" 2>/dev/null; then
      pid=${cmdline#/proc/}
      kill -KILL "${pid%/cmdline}" 2>/dev/null || true
    fi
  done
  slot=$(slot_of "$node" 2>/dev/null) || return 0
  local procs
  for procs in /sys/fs/cgroup/*/"$cgroup_prefix$slot"/*/cgroup.procs; do
    [[ -f $procs ]] || continue
    xargs -r kill -KILL <"$procs" 2>/dev/null || true
  done
  unmount_under "$n"
}

# unmount_under unmounts every mount point below $1, deepest first.
unmount_under() {
  local mount_point
  awk -v prefix="$1/" 'index($5, prefix) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r mount_point; do
      umount "$mount_point" 2>/dev/null || umount -l "$mount_point" 2>/dev/null || log "cannot unmount $mount_point"
    done
}

remove_cgroups() {
  local slot=$1 group
  for group in /sys/fs/cgroup/*/"$cgroup_prefix$slot"; do
    [[ -d $group ]] || continue
    find "$group" -depth -type d -exec rmdir {} \; 2>/dev/null || log "cannot remove cgroup $group"
  done
}

cmd_down() {
  [[ -e $dir ]] || { log "nothing to stop in $dir"; return 0; }
  [[ -f $marker ]] || die "$dir was not made by engines.sh; not touching it"
  local node_path node slot
  for node_path in "$dir"/node*/; do
    [[ -d $node_path ]] || continue
    node=$(basename "$node_path")
    stop_node "$node" &
  done
  wait
  for node_path in "$dir"/node*/; do
    [[ -d $node_path ]] || continue
    slot=$(slot_of "$(basename "$node_path")" 2>/dev/null) || continue
    ip link del "$bridge_prefix$slot" 2>/dev/null || true
    remove_cgroups "$slot"
  done
  unmount_under "$dir"
  # Captured, not piped into grep -q: an early exit of grep would fail awk
  # with SIGPIPE under pipefail.
  if [[ -n $(awk -v prefix="$dir/" 'index($5, prefix) == 1' /proc/self/mountinfo) ]]; then
    die "mounts remain under $dir; not deleting it"
  fi
  rm -rf --one-file-system "$dir"
  log "engines stopped; $dir removed"
}

# ---- up ------------------------------------------------------------------------

make_tls() {
  local t=$dir/tls
  mkdir -p "$t"
  key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
  key "$t/ca-key.pem"
  openssl req -x509 -new -key "$t/ca-key.pem" -subj "/CN=berth test CA" -days 365 -out "$t/ca.pem"
  issue() { # issue NAME SUBJECT EXTENSIONS
    key "$t/$1-key.pem"
    openssl req -new -key "$t/$1-key.pem" -subj "/CN=$2" |
      openssl x509 -req -CA "$t/ca.pem" -CAkey "$t/ca-key.pem" -CAcreateserial -days 365 \
        -extfile <(printf '%s\n' "$3") -out "$t/$1-cert.pem" 2>/dev/null
  }
  issue server 127.0.0.1 "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth"
  issue client "berth test client" "extendedKeyUsage=clientAuth"
  # Docker's conventional names for the client side.
  mv "$t/client-cert.pem" "$t/cert.pem"
  mv "$t/client-key.pem" "$t/key.pem"
}

# free_port picks a free TCP port below the ephemeral range, where
# docker-proxy's dynamic ports will not land on it later.
free_port() {
  local port
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 10000))
    [[ -z $(ss -Htln "sport = :$port") ]] && { echo "$port"; return; }
  done
  die "no free TCP port found in 20000-29999"
}

build_image() {
  local out=$dir/image
  mkdir -p "$out/rootfs"
  (cd "$repo" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$out/rootfs/app" ./internal/testenv/testapp)
  tar -C "$out/rootfs" --owner=0 --group=0 --numeric-owner -cf "$out/app.tar" app
}

import_image() {
  local endpoint
  endpoint=$(socket_of "$1")
  docker -H "$endpoint" import -c 'ENTRYPOINT ["/app"]' -c 'EXPOSE 8080' "$dir/image/app.tar" "$image" >/dev/null
  docker -H "$endpoint" tag "$image" "${image%:*}:latest"
}

# wait_all waits for the given background jobs, failing when any did.
wait_all() {
  local what=$1 pid failed=0
  shift
  for pid in "$@"; do wait "$pid" || failed=1; done
  ((failed == 0)) || die "$what failed (see above)"
}

json_string() {
  local s=${1//\\/\\\\}
  printf '"%s"' "${s//\"/\\\"}"
}

# write_env writes engines.env and engines.json with the same keys; the env
# file is written last and atomically, as `up` takes it to mean "all done".
write_env() {
  local terraform_path=$1 nodes=() keys=() values=() node
  mapfile -t nodes < <(recorded_nodes)
  local last=${nodes[${#nodes[@]} - 1]}
  add() { keys+=("$1"); values+=("$2"); }
  add BERTH_ENGINES_DIR "$dir"
  add BERTH_ENGINES_SCRIPT "$here/engines.sh"
  add BERTH_TEST_ENGINES "$(IFS=,; echo "${nodes[*]}")"
  for node in "${nodes[@]}"; do add "BERTH_TEST_ENDPOINT_$node" "$(socket_of "$node")"; done
  add BERTH_TEST_TLS_ENGINE "$last"
  add BERTH_TEST_TLS_ENDPOINT "tcp://127.0.0.1:$(cat "$dir/$last/tls-port")"
  add BERTH_TEST_TLS_CA "$dir/tls/ca.pem"
  add BERTH_TEST_TLS_CERT "$dir/tls/cert.pem"
  add BERTH_TEST_TLS_KEY "$dir/tls/key.pem"
  add BERTH_TEST_IMAGE "$image"
  add TF_ACC_TERRAFORM_PATH "$terraform_path"
  local i
  {
    echo "{"
    for i in "${!keys[@]}"; do
      printf '  %s: %s%s\n' "$(json_string "${keys[$i]}")" "$(json_string "${values[$i]}")" "$([[ $i -lt $((${#keys[@]} - 1)) ]] && echo ,)"
    done
    echo "}"
  } >"$dir/engines.json"
  {
    echo "# Written by engines.sh up; source it to reach the test engines."
    for i in "${!keys[@]}"; do printf "export %s='%s'\n" "${keys[$i]}" "${values[$i]//\'/\'\\\'\'}"; done
  } >"$dir/engines.env.tmp"
  mv "$dir/engines.env.tmp" "$dir/engines.env"
}

# resume_up starts whichever engines of an existing set-up are not running.
resume_up() {
  local nodes node pids=()
  mapfile -t nodes < <(recorded_nodes)
  if [[ -n ${BERTH_ENGINES_COUNT:-} && $BERTH_ENGINES_COUNT != "${#nodes[@]}" ]]; then
    die "$dir already has ${#nodes[@]} engines, not $BERTH_ENGINES_COUNT; run engines.sh down first"
  fi
  for node in "${nodes[@]}"; do
    if ! engine_answers "$node"; then
      log "$node was not running; starting it"
      start_node "$node" &
      pids+=($!)
    fi
  done
  wait_all "starting engines" "${pids[@]}"
  log "engines up (${nodes[*]}); source $dir/engines.env"
}

fresh_up() {
  local count=${BERTH_ENGINES_COUNT:-3}
  [[ $count =~ ^[1-9][0-9]*$ ]] || die "BERTH_ENGINES_COUNT must be a positive number, not '$count'"
  local terraform_path
  terraform_path=$(bash "$here/tools.sh")
  if [[ -f $marker ]]; then
    log "removing the remains of an unfinished set-up in $dir"
    cmd_down
  elif [[ -e $dir ]]; then
    rmdir "$dir" 2>/dev/null || die "$dir exists and was not made by engines.sh"
  fi
  mkdir -p "$dir"
  touch "$marker"
  # Undo everything when any step fails, so a failed `up` leaves no engines.
  trap 'if (($? != 0)); then log "up failed; cleaning up"; cmd_down || true; fi' EXIT

  build_image &
  local build_pid=$! k node tls_port pids=()
  make_tls
  for k in $(seq 1 "$count"); do
    node=node$k
    echo "$node" >>"$dir/nodes"
    if ((k == count)); then
      tls_port=$(free_port)
      configure_node "$node" "$tls_port"
    else
      configure_node "$node"
    fi
  done
  for node in $(recorded_nodes); do
    start_node "$node" &
    pids+=($!)
  done
  wait_all "starting engines" "${pids[@]}"
  wait_all "building the test image" "$build_pid"
  pids=()
  for node in $(recorded_nodes); do
    import_image "$node" &
    pids+=($!)
  done
  wait_all "importing $image" "${pids[@]}"
  write_env "$terraform_path"
  trap - EXIT
  log "$count engines up in ${SECONDS}s; source $dir/engines.env"
}

cmd_up() {
  [[ $(id -u) == 0 ]] || die "needs root (dockerd, bridges, mounts)"
  if [[ -f $dir/engines.env ]]; then resume_up; else fresh_up; fi
}

cmd_status() {
  [[ -f $dir/engines.env ]] || { echo "no engines in $dir"; return 1; }
  local node all_up=0 pid
  for node in $(recorded_nodes); do
    if engine_answers "$node"; then
      pid=$(dockerd_pid "$node" || echo "?")
      echo "$node up   $(socket_of "$node") (dockerd pid $pid, bridge $bridge_prefix$(slot_of "$node"))"
      if [[ -f $dir/$node/tls-port ]]; then
        local state=down
        tls_answers "$node" && state=up
        echo "$node tls $state tcp://127.0.0.1:$(cat "$dir/$node/tls-port")"
      fi
    else
      echo "$node down $(socket_of "$node")"
      all_up=1
    fi
  done
  return "$all_up"
}

known_node() {
  [[ -n ${1:-} ]] || die "usage: engines.sh stop|start nodeK"
  grep -qxF -- "$1" "$dir/nodes" 2>/dev/null || die "no engine named '$1' in $dir (engines: $(recorded_nodes | paste -sd, -))"
}

# Commands that change engines take turns: two `up`s at once would otherwise
# both set up the same directory. The lock is on this script, so it leaves
# nothing behind.
lock() {
  exec 9<"$here/engines.sh"
  flock 9
}

case ${1:-} in
up) lock && cmd_up ;;
down) lock && cmd_down ;;
status) cmd_status ;;
stop)
  lock
  known_node "${2:-}"
  stop_node "$2"
  log "$2 stopped"
  ;;
start)
  [[ $(id -u) == 0 ]] || die "needs root"
  lock
  known_node "${2:-}"
  start_node "$2"
  log "$2 started"
  ;;
*)
  echo "usage: engines.sh up|down|status|stop NODE|start NODE" >&2
  exit 2
  ;;
esac
