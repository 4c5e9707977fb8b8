#!/usr/bin/env bash
# Prepares a browser for the report test (tests/report.rs): installs Debian's chromium when
# absent. Prints the browser's path on stdout when ready; otherwise says why on stderr and
# exits 1.
set -euo pipefail
say() { echo "browser: $*" >&2; }

if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        say "chromium is missing and cannot be installed here (needs root and apt-get)"
        exit 1
    fi
    say "installing chromium"
    export DEBIAN_FRONTEND=noninteractive
    packages="chromium fonts-dejavu-core"
    if ! apt-get install -y -q --no-install-recommends $packages >/dev/null 2>&1; then
        apt-get update -q >/dev/null 2>&1 || true
        if ! apt-get install -y -q --no-install-recommends $packages >/dev/null 2>&1; then
            say "apt-get could not install chromium"
            exit 1
        fi
    fi
fi
command -v chromium
