#!/usr/bin/env bash
# Peak memory of `simseries run` saving the log of a child that prints SIZE bytes (default
# 1 GiB): a copy of the quickstart whose one run prints SIZE bytes of 100-character lines,
# with no log filter (every byte is kept) and then with one (every line is judged), run
# under GNU time. The saved log must hold all of it; simseries' peak RSS should not grow with
# SIZE.
#   benches/logs/big_log.sh [SIZE_BYTES]
set -euo pipefail
cd "$(dirname "$0")/../.."
size=${1:-1073741824}
# SIMSERIES_BIN measures another build (e.g. an earlier commit's) with the same series.
if [ -n "${SIMSERIES_BIN:-}" ]; then
    binary=$SIMSERIES_BIN
else
    cargo build --release --quiet
    binary=target/release/simseries
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/simseries-bench-log-XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r examples/quickstart/. "$work/"
rm -rf "$work/working"
cat > "$work/model/loud-model.sh" <<MODEL
#!/bin/sh
# Prints $size bytes (lines of 99 characters and a newline), then writes the outputs.
set -eu
head -c $size /dev/zero | tr '\\0' 'x' | fold -w 99
key=\$(sed -n 's/.* key="\\([^"]*\\)".*/\\1/p' "\$SIMSERIES_INPUT")
seed=\$(sed -n 's/.* seed="\\([^"]*\\)".*/\\1/p' "\$SIMSERIES_INPUT")
run=\$(printf 'QUICKSTART_%s_%04d' "\$key" "\$seed")
for ext in CELLS.csv STATS.json; do echo output > "\$SIMSERIES_OUTPUTS_DIR\$run.\$ext"; done
MODEL
python3 - "$work/series.yaml" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
text = text.replace("seeds: [0, 1, 2, 3]", "seeds: [0]")
text = re.sub(r"(?s)    conditions:.*?    extensions:", "    conditions:\n    - {key: LOUD, steps: 1, rate: 0.0, sleep: 0, fail_seeds: [], flaky_seeds: []}\n    extensions:", text)
text = text.replace("command: [sh, model/toy-model.sh]", "command: [sh, model/loud-model.sh]")
text = text.replace("retryDelay: 5", "retryDelay: 1")
open(path, "w").write(text)
PY
measure() {
    local label=$1 filter=$2
    sed -i "s/^    logFilter: .*/    logFilter: '$filter'/" "$work/series.yaml"
    rm -rf "$work/working"
    /usr/bin/time -v -o "$work/time.txt" "$binary" run -f "$work/series.yaml" >/dev/null 2>&1
    local report
    report=$(cat "$work/time.txt")
    local rss seconds saved
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' <<<"$report")
    seconds=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' <<<"$report")
    saved=$(find "$work/working" -path '*/logs/*' -name '*.log' -printf '%s\n' | awk '{s+=$1} END {print s+0}')
    printf '| %s | %d | %d MiB | %s | %d |\n' "$label" "$size" "$((rss / 1024))" "$seconds" "$saved"
}
echo "| saved log | printed bytes | simseries peak RSS | wall time | saved bytes |"
echo "|---|---|---|---|---|"
measure "all of it (no logFilter)" ""
measure "filtered (logFilter: x)" "x"
