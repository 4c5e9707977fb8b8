#!/usr/bin/env bash
# Fuzzes the manifest reader, the template renderer and the spec decoding with cargo-fuzz
# (libFuzzer, nightly toolchain), each for a bounded time: no panic, no hang, bounded memory.
#   scripts/fuzz.sh            # 60 s per target
#   scripts/fuzz.sh 600        # 10 min per target
#   scripts/fuzz.sh 60 spec    # one target
# FUZZ_SANITIZER=none skips AddressSanitizer (the code is safe Rust), FUZZ_DEV=1 builds without
# optimisations: both build faster (CI uses them for its short run) and fuzz slower.
# Findings land in fuzz/artifacts/<target>/; replay one with
#   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(manifest template spec)
fi

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "the nightly toolchain is missing (cargo +nightly); cargo-fuzz needs it" >&2
    exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked --quiet
fi

for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    echo "fuzzing $target for ${seconds}s" >&2
    # -rss_limit_mb: a render or a plan that needs more memory is a finding, not a slow pass.
    # -timeout: one input taking longer than 10 s is a finding (a hang).
    profile=()
    if [ "${FUZZ_DEV:-0}" = 1 ]; then profile=(--dev); fi
    cargo +nightly fuzz run "${profile[@]}" --sanitizer "${FUZZ_SANITIZER:-address}" "$target" "$corpus" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
        -print_final_stats=1 2>&1 | tee "target/fuzz-$target.log" | grep -E "^(#[0-9]+ +DONE|stat::|==|SUMMARY|Done)" || true
    if ! grep -q "Done [0-9]* runs" "target/fuzz-$target.log"; then
        echo "fuzzing $target did not finish cleanly; see target/fuzz-$target.log" >&2
        exit 1
    fi
done
