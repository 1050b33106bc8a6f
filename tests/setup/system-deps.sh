#!/usr/bin/env bash
# Installs the Debian packages the tests drive for real (nats-server for cluster tests, chromium for
# browser tests) when they are missing. Runs as part of `npm test`, so a fresh machine with only
# Node/npm gets them too. Needs root and apt; elsewhere it says what is missing and carries on (the
# tests that need a package then fail loudly, they are never skipped).
set -euo pipefail

need=()
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: missing ${need[*]}; install them (apt-get install ${need[*]}) to run every test" >&2
  exit 0
fi
echo "system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
