#!/usr/bin/env bash
# bench/compare.sh: the fan-out comparison of issue 7. Runs the same scenarios, in the same run, against
# rtsync and minimal fan-out servers on its peers (uWebSockets.js, Redis pub/sub, ws, Socket.IO, Nchan),
# with the server pinned to CPU 0 and the generator (rtsync-bench) to CPU 1, a fresh server per scenario,
# and BENCH_REPS repetitions, each in a new random order. One JSON line per run (per sweep step) goes to
# bench/results/<UTC time>.json; bench/report.mjs turns the newest file into docs/benchmarks.md.
#
#   BENCH_QUICK=1       smaller runs, one repetition (a few minutes; for development)
#   BENCH_REPS=N        repetitions (default 3, quick 1)
#   BENCH_SERVERS="rtsync redis"   only these servers (default: all)
#   BENCH_SCENARIOS="sweep64 light"  only these scenarios (default: all)
#   BIN=build/release   where rtsync and rtsync-bench are
#   BIN_URING=build/release-uring   rtsync built with RTSYNC_IO_URING=ON: when it is there, idle and sweep64
#                       also run against it ("rtsync-uring"), to compare Asio's io_uring backend with epoll
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
BIN=${BIN:-build/release}
BIN_URING=${BIN_URING:-build/release-uring}
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then REPS=${BENCH_REPS:-1}; else REPS=${BENCH_REPS:-3}; fi
SERVERS=${BENCH_SERVERS:-"rtsync uws redis ws socketio nchan"}
ALL_SCENARIOS="idle sweep64 sweep1k channels1000 slow churn light durable pubnub twocores"
SCENARIOS=${BENCH_SCENARIOS:-$ALL_SCENARIOS}

for tool in taskset nginx redis-server node; do
  command -v "$tool" >/dev/null || { echo "compare: $tool missing (scripts/bench-deps.sh installs it)" >&2; exit 1; }
done
[ -x "$BIN/rtsync" ] && [ -x "$BIN/rtsync-bench" ] || { echo "compare: build $BIN first (make build)" >&2; exit 1; }
[ -d bench/peers/node_modules ] || { echo "compare: run scripts/bench-deps.sh first" >&2; exit 1; }

# Sizes. Full: what the issue asks. Quick: the same shapes, smaller.
if [ "$QUICK" = 1 ]; then
  SUBS=2000; IDLE=1000,5000; STEP=1; WARM=0.5
  RATES64=10,50,100,250,500; RATES1K=10,50,100,250; RATES_CH=1000,5000,20000
  SLOW_SUBS=500; CHURN_S=2; LIGHT_S=2; EQUAL_RATE=100
else
  SUBS=10000; IDLE=1000,10000,19000,19500; STEP=2; WARM=0.5
  RATES64=2,5,20,50,100,200,300,400,600; RATES1K=2,5,20,50,100,200; RATES_CH=2000,5000,20000,50000,100000
  SLOW_SUBS=1000; CHURN_S=4; LIGHT_S=4; EQUAL_RATE=20
fi

mkdir -p bench/results
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=bench/results/$stamp.json
work=$(mktemp -d)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# A private port below the ephemeral range, so no client socket ever holds it.
port=$((20000 + RANDOM % 10000))

cat > "$work/rtsync.toml" <<'TOML'
# Peers have neither history nor presence nor durability; the compared namespace is in memory without
# presence. "dur" is the same with SQLite durability (the durable scenario).
[namespaces.mem]
durable = false
presence = false

[namespaces.dur]
durable = true
presence = false

[limits]
rate = 0
TOML

wait_port() {  # wait_port PORT: until something accepts on 127.0.0.1:PORT
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "compare: nothing listens on $1" >&2
  return 1
}

# start_server NAME: starts it on CPU 0 (rtsync2: both cores, two I/O threads); sets server_pid and addr.
start_server() {
  local name=$1 pin="taskset -c 0"
  port=$((port + 1))
  [ "$port" -ge 30000 ] && port=20001
  addr=127.0.0.1:$port
  case $name in
    rtsync | rtsync2 | rtsync-uring)
      local threads=1 bin=$BIN
      [ "$name" = rtsync2 ] && { pin=""; threads=2; }
      [ "$name" = rtsync-uring ] && bin=$BIN_URING
      rm -rf "$work/data"
      $pin "$bin/rtsync" serve --config "$work/rtsync.toml" --listen "$addr" --data "$work/data" --io-threads $threads \
        --log-level warn > "$work/server.out" 2> "$work/server.err" &
      ;;
    uws | ws | socketio)
      $pin node "bench/peers/$name-server.js" "$port" > "$work/server.out" 2> "$work/server.err" &
      ;;
    nchan)
      rm -rf "$work/nginx" && mkdir -p "$work/nginx"
      sed -e "s|@PORT@|$port|g" -e "s|@DIR@|$work/nginx|g" bench/peers/nchan.conf > "$work/nginx/nginx.conf"
      $pin nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" > "$work/server.out" 2> "$work/server.err" &
      ;;
    redis)
      { cat bench/peers/redis.conf; echo "port $port"; echo "dir $work"; } > "$work/redis.conf"
      $pin redis-server "$work/redis.conf" > "$work/server.out" 2> "$work/server.err" &
      ;;
  esac
  server_pid=$!
  wait_port "$port" || { cat "$work/server.err" >&2; return 1; }
  if [ "$name" = uws ] && ! grep -q "native uws_" "$work/server.out"; then
    echo "compare: uWebSockets.js did not load its native build" >&2
    return 1
  fi
}

stop_server() {
  [ -n "$server_pid" ] || return 0
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

# gen SERVER SCENARIO SUBCOMMAND ARGS...: the generator on CPU 1 against the running server.
gen() {
  local name=$1 scenario=$2 sub=$3
  shift 3
  local proto=$name
  case $name in rtsync2 | rtsync-uring) proto=rtsync ;; esac
  taskset -c 1 "$BIN/rtsync-bench" "$sub" --proto "$proto" --server "$addr" --server-pid "$server_pid" \
    --label "$name" --scenario "$scenario" --tag "\"rep\":$rep,\"run\":\"$stamp\"" --json "$out" "$@" \
    > /dev/null || echo "compare: $name $scenario failed" >&2
}

# run_job SERVER SCENARIO
run_job() {
  local name=$1 scenario=$2 prefix=bench
  case $name in rtsync | rtsync2 | rtsync-uring | pubnub) prefix=mem:b ;; esac
  echo "== rep $rep/$REPS: $name $scenario ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  start_server "$([ "$name" = pubnub ] && echo rtsync || echo "$name")" || return 0
  case $scenario in
    idle) gen "$name" idle idle --connections "$IDLE" --warmup 2 ;;
    sweep64) gen "$name" sweep64 fanout --subscribers "$SUBS" --rates "$RATES64" --size 64 --prefix $prefix \
      --warmup $WARM --seconds $STEP --drain 3 ;;
    sweep1k) gen "$name" sweep1k fanout --subscribers "$SUBS" --rates "$RATES1K" --size 1024 --prefix $prefix \
      --warmup $WARM --seconds $STEP --drain 3 ;;
    channels1000) gen "$name" channels1000 fanout --subscribers "$SUBS" --channels $((SUBS / 10)) --publishers 4 \
      --rates "$RATES_CH" --size 64 --prefix $prefix --warmup $WARM --seconds $STEP --drain 3 ;;
    slow) gen "$name" slow fanout --subscribers "$SLOW_SUBS" --slow 0.01 --rates 50 --size 4096 --prefix $prefix \
      --warmup 1 --seconds 8 --drain 3 ;;
    churn) gen "$name" churn churn --concurrency 64 --prefix $prefix --warmup 1 --seconds $CHURN_S ;;
    light) gen "$name" light fanout --subscribers 100 --rates 10 --size 64 --prefix $prefix --warmup 1 --seconds $LIGHT_S ;;
    durable)
      gen rtsync durable-mem fanout --subscribers "$SUBS" --rates 100 --size 64 --prefix mem:d --warmup 1 --seconds $STEP --no-stop
      stop_server && start_server rtsync
      gen rtsync durable-dur fanout --subscribers "$SUBS" --rates 100 --size 64 --prefix dur:d --warmup 1 --seconds $STEP --no-stop ;;
    pubnub) gen pubnub pubnub fanout --subscribers $((SUBS / 10)) --rates 10,50,100,200 --size 64 --prefix mem:pn \
      --warmup 1 --seconds $STEP --drain 3 ;;
    # At the equal load, and at a quarter of it, where the generator leaves room on CPU 1 for a second
    # I/O thread.
    twocores) gen "$name" equal-load fanout --subscribers "$SUBS" --rates $((EQUAL_RATE / 4)),$EQUAL_RATE --size 64 --prefix $prefix \
      --warmup 1 --seconds $((STEP * 2)) --no-stop ;;
  esac
  stop_server
}

# The jobs: every scenario against every server, except those that only rtsync has.
jobs=()
for scenario in $SCENARIOS; do
  case $scenario in
    durable) [[ " $SERVERS " == *" rtsync "* ]] && jobs+=("rtsync durable") ;;
    pubnub) [[ " $SERVERS " == *" rtsync "* ]] && jobs+=("pubnub pubnub") ;;
    twocores) [[ " $SERVERS " == *" rtsync "* ]] && jobs+=("rtsync twocores" "rtsync2 twocores") ;;
    *) for s in $SERVERS; do jobs+=("$s $scenario"); done ;;
  esac
  case $scenario in
    idle | sweep64) [[ " $SERVERS " == *" rtsync "* ]] && [ -x "$BIN_URING/rtsync" ] && jobs+=("rtsync-uring $scenario") ;;
  esac
done

{
  printf '{"scenario":"meta","run":"%s","date":"%s","quick":%s,"reps":%d,"cores":%d,"loadavg":"%s",' \
    "$stamp" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$([ "$QUICK" = 1 ] && echo true || echo false)" "$REPS" "$(nproc)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf '"commit":"%s","kernel":"%s","cpu":"%s","node":"%s","nginx":"%s","redis":"%s","socketio":"%s","ws":"%s","uws":"%s"}\n' \
    "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$(uname -r)" \
    "$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)" "$(node --version)" \
    "$(nginx -v 2>&1 | sed 's|.*/||')" "$(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')" \
    "$(node -p 'require("./bench/peers/node_modules/socket.io/package.json").version')" \
    "$(node -p 'require("./bench/peers/node_modules/ws/package.json").version')" \
    "$(node -p 'require("./bench/peers/node_modules/@trufflesuite/uws-js-unofficial/package.json").version')"
} > "$out"

started=$(date +%s)
echo "compare: ${#jobs[@]} jobs x $REPS repetitions -> $out" >&2
for rep in $(seq "$REPS"); do
  while read -r job; do
    # shellcheck disable=SC2086
    run_job $job
  done < <(printf '%s\n' "${jobs[@]}" | shuf)
done
echo "compare: done in $(( $(date +%s) - started )) s -> $out" >&2
node bench/report.mjs "$out"
