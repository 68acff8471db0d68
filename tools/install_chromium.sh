#!/usr/bin/env bash
# Installs Debian's Chromium for the browser runner (rvm-verify --tfjs-backend webgl|webgl-f16|wasm|cpu)
# and the web demo's test. Playwright drives this system browser: no browser is downloaded at run time.
# Does nothing when Chromium is already there (set RVM_CHROMIUM to use another binary).
set -euo pipefail
chromium="${RVM_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$chromium" ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "install_chromium.sh: $chromium is missing; install Debian's chromium package (as root: apt-get install chromium)" >&2
    echo "install_chromium.sh: the browser TF.js runner and the demo test stay unavailable until then" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
"$chromium" --version
