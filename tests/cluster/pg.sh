#!/usr/bin/env bash
# A private PostgreSQL server for the tests: `pg.sh start DIR [PORT]` creates (initdb) and starts one whose
# data and unix socket live in DIR, creates the database `rtsync`, and prints its libpq connection string
# as the last line (and in DIR/conninfo); `pg.sh stop DIR` stops it. With a PORT it also listens on 127.0.0.1:PORT (the cluster
# tests use postgres:// URLs); without one it listens on the socket only, so it never takes a TCP port.
# PostgreSQL refuses to run as root: as root, the server runs as the `postgres` system user that Debian's
# package creates (scripts/deps.sh installs it). Durability settings are relaxed (fsync off): the tests
# kill rtsync nodes, never this server, and must stay fast on two cores.
set -euo pipefail

cmd=${1:?usage: pg.sh start|stop DIR [PORT]}
dir=${2:?usage: pg.sh start|stop DIR [PORT]}
port=${3:-}

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bindir/pg_ctl" ] || { echo "pg.sh: PostgreSQL is not installed (run scripts/deps.sh)" >&2; exit 1; }

if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || { echo "pg.sh: no postgres user (run scripts/deps.sh)" >&2; exit 1; }
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
# The socket path must fit in sun_path (107 bytes), and the server user must be able to reach DIR; when
# either fails, the data lives in a short directory under /tmp, recorded in DIR/home.
home="$dir"
if [ -f "$dir/home" ]; then
  home=$(cat "$dir/home")
elif [ ${#dir} -gt 80 ] || { [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$dir" 2>/dev/null; }; then
  home=$(mktemp -d /tmp/rtsync-pg.XXXXXX)
  echo "$home" >"$dir/home"
fi
[ "$(id -u)" -eq 0 ] && chown postgres: "$home"

case "$cmd" in
start)
  if [ ! -f "$home/data/PG_VERSION" ]; then
    as_pg "$bindir/initdb" -D "$home/data" -U postgres --auth=trust -E UTF8 --locale=C >"$home/initdb.log" 2>&1 ||
      { cat "$home/initdb.log" >&2; exit 1; }
  fi
  listen="''"
  [ -n "$port" ] && listen=127.0.0.1
  sockport=${port:-5432}
  # Already running (left by an interrupted run, or started by a run still going on in the same build
  # directory): used as it is. Two runs sharing one directory still share its `stop`.
  if ! as_pg "$bindir/pg_ctl" -D "$home/data" status >/dev/null 2>&1; then
    as_pg "$bindir/pg_ctl" -D "$home/data" -l "$home/server.log" -w -t 60 -o \
      "-p $sockport -k $home -c listen_addresses=$listen -c fsync=off -c full_page_writes=off -c max_connections=200" \
      start >/dev/null || { tail -20 "$home/server.log" >&2; exit 1; }
  fi
  as_pg "$bindir/psql" -q -h "$home" -p "$sockport" -U postgres -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'rtsync'" | grep -q 1 ||
    as_pg "$bindir/createdb" -h "$home" -p "$sockport" -U postgres rtsync
  echo "host=$home port=$sockport user=postgres dbname=rtsync" | tee "$dir/conninfo"
  ;;
stop)
  if [ -f "$home/data/postmaster.pid" ]; then
    as_pg "$bindir/pg_ctl" -D "$home/data" -m fast -w -t 60 stop >/dev/null || true
  fi
  ;;
*)
  echo "usage: pg.sh start|stop DIR [PORT]" >&2
  exit 2
  ;;
esac
