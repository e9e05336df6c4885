#!/usr/bin/env bash
# bench/cluster.sh: fan-out throughput of a cluster (docs/scaling.md), two nodes against one. Every case
# runs the same open-loop sweep (rtsync-bench fanout: one channel, subscribers spread over the nodes,
# publications sent to the first node) on a durable namespace without presence:
#   standalone  one node, SQLite and the local broker, 2 I/O threads (the single-server reference);
#   one-node    one node on Redis + PostgreSQL, 2 I/O threads;
#   two-nodes   two nodes on Redis + PostgreSQL, 1 I/O thread each, subscribers split between them.
# Server CPU is that of the rtsync processes (not Redis or PostgreSQL). JSON lines go to
# bench/results/cluster-<UTC time>.json, one summary line per step to stdout; docs/benchmarks.md records
# them by hand.
#   SUBS=4000 RATES=20,50,100,200,400,800 STEP=3 BIN=build/release bash bench/cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/release}
SUBS=${SUBS:-4000}
RATES=${RATES:-20,50,100,200,400,800}
STEP=${STEP:-3}
CASES=${CASES:-"standalone one-node two-nodes"}

[ -x "$BIN/rtsync" ] && [ -x "$BIN/rtsync-bench" ] || { echo "cluster: build $BIN first (make build)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "cluster: redis-server missing (scripts/deps.sh)" >&2; exit 1; }

work=$(mktemp -d)
chmod 755 "$work"
mkdir -p bench/results
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=$PWD/bench/results/cluster-$stamp.json
group=""
redis_pid=""
cleanup() {
  [ -n "$group" ] && { kill -TERM -- "-$group" 2>/dev/null || true; wait "$group" 2>/dev/null || true; }
  [ -n "$redis_pid" ] && { kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; }
  bash tests/cluster/pg.sh stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$((20000 + RANDOM % 9000))
redis_port=$((port + 100))
pg_port=$((port + 101))

wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "cluster: nothing listens on $1" >&2
  return 1
}

redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
redis_pid=$!
wait_port "$redis_port"
mkdir -p "$work/pg" && chmod 755 "$work/pg"
bash tests/cluster/pg.sh start "$work/pg" "$pg_port" >/dev/null

common='[namespaces.b]
durable = true
presence = false
history_size = 100

[limits]
rate = 0
'
printf '%s' "$common" > "$work/standalone.toml"
for n in 1 2; do
  printf '%s\n[cluster]\nbroker = "redis://127.0.0.1:%s"\nstore = "postgres://postgres@127.0.0.1:%s/rtsync"\nnode = "n%s"\n' \
    "$common" "$redis_port" "$pg_port" "$n" > "$work/n$n.toml"
  mkdir -p "$work/d$n" && printf '%064d' 0 > "$work/d$n/secret" && chmod 600 "$work/d$n/secret"
done

# start NODES THREADS CONFIG-STEM: the nodes in one process group (its leader's pid: the CPU of them all).
start() {
  local nodes=$1 threads=$2 stem=$3
  setsid bash -c '
    for i in $(seq "$1"); do
      cfg=$4/$3$i.toml; [ "$3" = standalone ] && cfg=$4/standalone.toml
      "$5/rtsync" serve --config "$cfg" --listen "127.0.0.1:$(($6 + i))" --data "$4/d$i" --io-threads "$2" \
        --log-level warn >"$4/node$i.out" 2>"$4/node$i.err" &
    done
    wait' _ "$nodes" "$threads" "$stem" "$work" "$BIN" "$port" &
  group=$!
  for i in $(seq "$nodes"); do wait_port $((port + i)); done
}

stop() {
  kill -TERM -- "-$group" 2>/dev/null || true
  wait "$group" 2>/dev/null || true
  group=""
  # The group's shell exits at once; the nodes take a moment to say bye and close. The next case reuses
  # their ports, so wait until nothing listens there.
  for i in 1 2; do
    for _ in $(seq 200); do
      (exec 3<>"/dev/tcp/127.0.0.1/$((port + i))") 2>/dev/null || break
      sleep 0.05
    done
  done
}

for case in $CASES; do
  echo "== $case ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  also=()
  case $case in
    standalone) rm -rf "$work/d1/rtsync.db"*; start 1 2 standalone ;;
    one-node) start 1 2 n ;;
    two-nodes) start 2 1 n; also=(--also "127.0.0.1:$((port + 2))") ;;
  esac
  "$BIN/rtsync-bench" fanout --server "127.0.0.1:$((port + 1))" "${also[@]}" --server-pid "$group" \
    --subscribers "$SUBS" --rates "$RATES" --size 64 --prefix "b:$case-" --warmup 1 --seconds "$STEP" --drain 3 \
    --label "$case" --scenario cluster --tag "\"run\":\"$stamp\"" --json "$out" >/dev/null
  stop
done

node -e '
  const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
  for (const r of lines) console.log(`${r.server ?? r.label}\t${r.rate} pub/s\t${r.deliveries_per_s} deliveries/s\t` +
    `cpu ${r.server_cpu_util}\tp50 ${r.p50_ms} ms\tp99 ${r.p99_ms} ms\tlost ${r.lost}\t${r.saturated ? "saturated" : ""}`);
' "$out"
echo "cluster: results in $out" >&2
