#!/usr/bin/env bash
# `make bench`: installs the peers (scripts/bench-deps.sh), runs the fan-out comparison of rtsync against
# them (bench/compare.sh: results in bench/results/, tables and chart regenerated into docs/benchmarks.md),
# then the durable tally writes and the collection queries (numbers on stdout; docs/benchmarks.md records
# them by hand).
#   BENCH_QUICK=1   a few minutes instead of about half an hour (smaller runs, one repetition, no tally,
#                   queries over 100,000 documents)
#   BENCH_TALLY_ONLY=1   only the tally writes
#   BENCH_QUERIES_ONLY=1   only the collection queries; BENCH_QUERIES_DOCS sets their size (1,000,000)
#   see bench/compare.sh for BENCH_REPS, BENCH_SERVERS, BENCH_SCENARIOS
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/release}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}

quick=${BENCH_QUICK:-0}
if [ "${BENCH_TALLY_ONLY:-0}" != 1 ] && [ "${BENCH_QUERIES_ONLY:-0}" != 1 ]; then
bash scripts/bench-deps.sh
# The same server on Asio's io_uring backend, which compare.sh measures against the default (epoll).
URING=${BIN_URING:-build/release-uring}
[ -f "$URING/build.ninja" ] || cmake -S . -B "$URING" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DRTSYNC_IO_URING=ON
cmake --build "$URING" --target rtsync
BIN=$BIN BIN_URING=$URING bash bench/compare.sh
fi

work=$(mktemp -d)
server=
trap '[ -z "$server" ] || kill $server 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

# Starts `rtsync serve` with config $1 on a fresh data dir $2 (under $work); sets $server and $addr.
start_server() {
  "$BIN/rtsync" serve --config "$1" --listen 127.0.0.1:0 --data "$work/$2" --log-level warn \
    > "$work/$2.out" 2> "$work/$2.err" &
  server=$!
  for _ in $(seq 100); do grep -q listening "$work/$2.out" 2>/dev/null && break; sleep 0.1; done
  addr=$(sed -n 's|^rtsync listening on http://||p' "$work/$2.out")
}
stop_server() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=
}

if [ "$quick" != 1 ] && [ "${BENCH_QUERIES_ONLY:-0}" != 1 ]; then

fields=20
values=$(printf 'f%d = [0, 1, 2, 3], ' $(seq 0 $((fields - 1))))
cat > "$work/bench.toml" <<TOML
[collections.bench]
per_user = true
read = "owner"
write = "owner"
tally = { ${values%, } }

# Throughput, not the per-connection rate limit (2,000 commands/s by default), is measured here.
[limits]
rate = 0
TOML

start_server "$work/bench.toml" data
echo "tally: server $addr ($(nproc) cores), $(date -u +%Y-%m-%d)"

for writers in 1 16 256; do
  "$BIN/rtsync-bench" tally --server "$addr" --coll bench --fields $fields --writers $writers --seconds "$SECONDS_PER_RUN"
done
stop_server
fi
[ "${BENCH_TALLY_ONLY:-0}" = 1 ] && exit 0

# Collection queries (issue 13): its own server on a fresh data dir (SQLite), with the index the measured
# query needs: 1,000,000 documents (100,000 with BENCH_QUICK=1; BENCH_QUERIES_DOCS sets it).
cat > "$work/queries.toml" <<TOML
[collections.q]
indexes = [["status", "-n"]]

[limits]
rate = 0
TOML
start_server "$work/queries.toml" qdata
[ "$quick" = 1 ] && docs=100000 || docs=1000000
echo "queries: server $addr ($(nproc) cores), $(date -u +%Y-%m-%d), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN/rtsync-bench" queries --server "$addr" --server-pid "$server" --coll q --docs "${BENCH_QUERIES_DOCS:-$docs}" \
  --seconds "$SECONDS_PER_RUN"
echo "queries: load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
stop_server
