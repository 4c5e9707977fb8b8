#!/usr/bin/env bash
# Side by side with the original workflow: installs its packages from PyPI (container-collection
# 1.1.0, io-collection 1.1.0, arcade-collection 0.16.0) into a virtual environment of their own,
# builds simseries in release mode, generates synthetic ARCADE-style series and runs both on
# the same files (see benches/compare/run.py), checking that they write the same inputs.
#
#   benches/compare.sh                 # 10,000, 100,000 and 1,000,000 runs, then the upload
#                                      # and controller benches (BENCHMARKS.md's every table)
#   benches/compare.sh 10000           # one size (CI runs this one as a correctness check)
#
# Results: Markdown tables on stdout, target/compare/results.json and the plot
# target/compare/planning.png (BENCHMARKS.md shows them).
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
# The file system's limit for the same writes (benches/compare/minimal_writer.rs, std only).
rustc --edition 2024 -O -o "$work/minimal-writer" benches/compare/minimal_writer.rs
"$venv/bin/python" benches/compare/run.py "$binary" "$work" "$@"
"$venv/bin/python" benches/compare/plot.py "$work/results.json" "$work/planning.png"

# The full run goes on with the other tables of BENCHMARKS.md: the S3 upload (on moto, the one
# scripts/test.sh installs into .venv) and the controller at 10,000 series.
if [ "$#" -eq 0 ]; then
    if ! .venv/bin/moto_server --help >/dev/null 2>&1; then
        python3 -m venv .venv
        .venv/bin/pip install --quiet --disable-pip-version-check "moto[server]==5.2.1"
    fi
    SIMSERIES_MOTO_SERVER="$PWD/.venv/bin/moto_server" cargo bench --locked --bench upload
    cargo bench --locked --bench controller
fi
