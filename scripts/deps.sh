#!/usr/bin/env bash
# Installs what rtsync needs to build, test and run, and nothing that is already there.
# (chromium: the browser end-to-end tests drive /usr/bin/chromium through playwright-core; postgresql and
# redis-server: the cluster tests start their own servers on private ports, see tests/cluster/.)
# Idempotent: `make run`, `make test` and CI all call it; a second run does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Boost 1.81 replaces Debian's default 1.74 -dev packages; the two must never be installed together.
debs=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libsqlite3-dev libtomlplusplus-dev libspdlog-dev libfmt-dev libcli11-dev libssl-dev zlib1g-dev
  libgtest-dev googletest
  postgresql libpq-dev redis-server libhiredis-dev
  clang libclang-rt-14-dev
  nodejs npm
  chromium
)

missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node 20 and npm may come from outside Debian's packages; accept whatever is on PATH.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# JavaScript packages (client library, app bundling, JS and browser tests), pinned by package-lock.json.
if [ -f package.json ]; then
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
fi
