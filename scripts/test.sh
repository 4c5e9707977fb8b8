#!/usr/bin/env bash
# Runs the whole test suite: installs moto into .venv (once), starts a moto server on
# 127.0.0.1 for the tests that talk to AWS, builds the real Kubernetes control plane
# (scripts/k8s-tools.sh: kube-apiserver, etcd, kubectl, kstatus, helm; cached after the first build)
# that the Kubernetes tests start for themselves, prepares a container engine and the toy model
# image (scripts/container-engine.sh) and a headless browser for the report test
# (scripts/browser.sh), runs `cargo test --workspace`, and stops the server.
# Extra arguments go to `cargo test`, e.g. `scripts/test.sh --test s3`.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${SIMSERIES_VENV:-.venv}"
moto_version="5.2.1"
if ! "$venv/bin/moto_server" --help >/dev/null 2>&1; then
    echo "installing moto $moto_version into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$moto_version"
fi
export PATH="$PWD/$venv/bin:$PATH"
export SIMSERIES_MOTO_SERVER="$PWD/$venv/bin/moto_server"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p target
# Requests recorded for the least-privilege check go to target/, not the working folder.
MOTO_RECORDER_FILEPATH="$PWD/target/moto_recording" moto_server -H 127.0.0.1 -p "$port" >target/moto.log 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    if curl -sf "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$moto_pid" 2>/dev/null; then
        echo "moto_server failed to start; see target/moto.log" >&2
        exit 1
    fi
    sleep 0.2
done
export SIMSERIES_MOTO_URL="http://127.0.0.1:$port"
echo "moto server on $SIMSERIES_MOTO_URL" >&2

# kube-apiserver, kube-controller-manager, etcd, kubectl, kstatus and helm at pinned versions:
# each Kubernetes test starts its own control plane from them (crates/test-cluster).
SIMSERIES_K8S_TOOLS=$(scripts/k8s-tools.sh)
export SIMSERIES_K8S_TOOLS
echo "Kubernetes tools in $SIMSERIES_K8S_TOOLS" >&2
# Each test stops its own control plane; one killed before it could (a test binary killed by a
# signal) leaves its servers behind, so the run ends by stopping any that remain.
trap 'kill "$moto_pid" 2>/dev/null || true; pkill -f "^$SIMSERIES_K8S_TOOLS/" 2>/dev/null || true' EXIT

# A container engine and the toy model image for tests/containers.rs; without one, those tests
# say why and run nothing (and this line says so in the log).
if engine_line=$(scripts/container-engine.sh); then
    read -r engine image <<<"$engine_line"
    export SIMSERIES_TEST_ENGINE="${engine#engine=}" SIMSERIES_TEST_IMAGE="${image#image=}"
    echo "container engine $SIMSERIES_TEST_ENGINE with $SIMSERIES_TEST_IMAGE" >&2
else
    export SIMSERIES_TEST_ENGINE_SKIPPED="scripts/container-engine.sh found no usable engine (see its lines above)"
    echo "container tests SKIPPED: no usable container engine (see above)" >&2
fi

# A browser for tests/report.rs, which loads a report headless; without one, it says why and
# checks the files alone.
if browser=$(scripts/browser.sh); then
    export SIMSERIES_TEST_BROWSER="$browser"
    echo "browser $SIMSERIES_TEST_BROWSER" >&2
else
    export SIMSERIES_TEST_BROWSER_SKIPPED="scripts/browser.sh found no usable browser (see its lines above)"
    echo "browser test SKIPPED: no usable browser (see above)" >&2
fi

# Every test removes the folders and files it made under the temporary folder, also when it
# fails; the run checks that nothing of the project's is left there.
tmp="${TMPDIR:-/tmp}"
leftovers() { find "$tmp" -maxdepth 1 -name 'simseries-*' 2>/dev/null | sort; }
before=$(leftovers)
cargo test --workspace "$@"
# moto's recordings are removed by the watchdog of the test binary that started it, within a
# second of its end.
sleep 2
left=$(comm -13 <(printf '%s\n' "$before") <(leftovers) | sed '/^$/d')
if [ -n "$left" ]; then
    echo "the tests left these in $tmp:" >&2
    printf '  %s\n' $left >&2
    exit 1
fi
