#!/usr/bin/env bash
# Installs what `make bench` (bench/compare.sh) needs beyond `make test`: the peers rtsync is compared with.
#   Debian: nginx + libnginx-mod-nchan (Nchan), redis-server (Redis 7 pub/sub), liburing-dev (rtsync on
#   Asio's io_uring backend, compared with its default epoll).
#   npm (bench/peers/package-lock.json, `npm ci` into bench/peers/node_modules): ws, socket.io,
#   @trufflesuite/uws-js-unofficial (uWebSockets.js prebuilt for Node 20).
# Idempotent: a second run does nothing. The Debian nginx service is not started (the bench runs its own).
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(nginx libnginx-mod-nchan redis-server liburing-dev)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "bench-deps: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # Keep the packages' own services from starting (and taking port 80 / 6379) on install.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cd bench/peers
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
