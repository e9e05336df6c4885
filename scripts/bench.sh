#!/usr/bin/env bash
# `make bench`: installs the peers (scripts/bench-deps.sh), runs the fan-out comparison of rtsync against
# them (bench/compare.sh: results in bench/results/, tables and chart regenerated into docs/benchmarks.md),
# then the durable tally writes (numbers on stdout; docs/benchmarks.md records them by hand).
#   BENCH_QUICK=1   a few minutes instead of about half an hour (smaller runs, one repetition, no tally)
#   BENCH_TALLY_ONLY=1   only the tally writes
#   see bench/compare.sh for BENCH_REPS, BENCH_SERVERS, BENCH_SCENARIOS
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/release}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}

if [ "${BENCH_TALLY_ONLY:-0}" != 1 ]; then
bash scripts/bench-deps.sh
# The same server on Asio's io_uring backend, which compare.sh measures against the default (epoll).
URING=${BIN_URING:-build/release-uring}
[ -f "$URING/build.ninja" ] || cmake -S . -B "$URING" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DRTSYNC_IO_URING=ON
cmake --build "$URING" --target rtsync
BIN=$BIN BIN_URING=$URING bash bench/compare.sh
fi

[ "${BENCH_QUICK:-0}" = 1 ] && exit 0

work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

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

"$BIN/rtsync" serve --config "$work/bench.toml" --listen 127.0.0.1:0 --data "$work/data" --log-level warn \
  > "$work/out" 2> "$work/err" &
server=$!
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's|^rtsync listening on http://||p' "$work/out")
echo "tally: server $addr ($(nproc) cores), $(date -u +%Y-%m-%d)"

for writers in 1 16 256; do
  "$BIN/rtsync-bench" tally --server "$addr" --coll bench --fields $fields --writers $writers --seconds "$SECONDS_PER_RUN"
done
