#!/usr/bin/env bash
# A private Redis server for the tests: `redis.sh start DIR` starts redis-server on a free port of
# 127.0.0.1, without persistence, with its pid, log and files in DIR, and prints its redis:// URL as the
# last line (and in DIR/url); `redis.sh stop DIR` stops it. The broker test-suites use it through the ctest
# fixture `redis` (tests/CMakeLists.txt). scripts/deps.sh installs redis-server: a missing one is an error.
set -euo pipefail

cmd=${1:?usage: redis.sh start|stop DIR}
dir=${2:?usage: redis.sh start|stop DIR}

server=$(command -v redis-server || true)
[ -n "$server" ] || { echo "redis.sh: redis-server is not installed (run scripts/deps.sh)" >&2; exit 1; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

running() { [ -f "$dir/redis.pid" ] && kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null; }
pong() {
  local reply=
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'PING\r\n' >&3
  read -r -t 2 reply <&3 || true
  exec 3>&-
  [[ $reply == +PONG* ]]
}

case "$cmd" in
start)
  # Already running (left by an interrupted run): used as it is.
  if running && [ -f "$dir/url" ]; then
    cat "$dir/url"
    exit 0
  fi
  # A random port; one that is taken makes the server exit before it writes its pid file: try another.
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + RANDOM % 30000))
    rm -f "$dir/redis.pid"
    "$server" --port "$port" --bind 127.0.0.1 --protected-mode no --save '' --appendonly no --dir "$dir" \
      --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null
    for _ in $(seq 50); do
      if running && pong "$port" 2>/dev/null; then
        echo "redis://127.0.0.1:$port" | tee "$dir/url"
        exit 0
      fi
      sleep 0.1
    done
    running && kill "$(cat "$dir/redis.pid")"
  done
  tail -20 "$dir/redis.log" >&2
  exit 1
  ;;
stop)
  if running; then
    pid=$(cat "$dir/redis.pid")
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  fi
  rm -f "$dir/url"
  ;;
*)
  echo "usage: redis.sh start|stop DIR" >&2
  exit 2
  ;;
esac
