#!/usr/bin/env bash
# Side by side with the original workflow: installs its packages from PyPI (container-collection
# 1.1.0, io-collection 1.1.0, arcade-collection 0.16.0) into a virtual environment of their own,
# builds simseries in release mode, generates synthetic ARCADE-style series and runs both on
# the same files (see benches/compare/run.py), checking that they write the same inputs.
#
#   benches/compare.sh                 # 10,000, 100,000 and 1,000,000 runs
#   benches/compare.sh 10000           # one size (CI runs this one as a correctness check)
#
# Results: a Markdown table on stdout, target/compare/results.json and the plot
# target/compare/planning.png (BENCHMARKS.md shows both).
set -euo pipefail
cd "$(dirname "$0")/.."

work=target/compare
venv="$work/venv"
mkdir -p "$work"
if ! "$venv/bin/python" -c 'import pandas, jinja2, boto3, matplotlib, container_collection' 2>/dev/null; then
    echo "installing the original packages into $venv" >&2
    python3 -m venv "$venv"
    # The packages themselves without their orchestration dependencies (Prefect, Docker,
    # plotting, imaging): only what the planning functions import, pinned to versions the
    # packages accept.
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
        container-collection==1.1.0 io-collection==1.1.0 arcade-collection==0.16.0
    # pip then warns that Prefect and the rest are missing: expected, and not needed here.
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        pandas==1.5.3 numpy==1.26.4 jinja2==3.1.4 boto3==1.35.99 matplotlib==3.8.4 2>/dev/null
fi
# SIMSERIES_COMPARE_BUILD=debug reuses the test build (CI's correctness check; no timing).
if [ "${SIMSERIES_COMPARE_BUILD:-release}" = debug ]; then
    cargo build --quiet --locked
    binary=target/debug/simseries
else
    cargo build --release --quiet --locked
    binary=target/release/simseries
fi
"$venv/bin/python" benches/compare/run.py "$binary" "$work" "$@"
"$venv/bin/python" benches/compare/plot.py "$work/results.json" "$work/planning.png"
