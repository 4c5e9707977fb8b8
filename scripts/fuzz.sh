#!/usr/bin/env bash
# Fuzzes the manifest reader, the template renderer and the spec decoding with cargo-fuzz
# (libFuzzer), each for a bounded time: no panic, no hang, bounded memory. On the nightly
# toolchain when one is installed; otherwise on stable with RUSTC_BOOTSTRAP=1 (cargo-fuzz's
# unstable flags) and without AddressSanitizer, whose runtime only nightly ships.
#   scripts/fuzz.sh            # 60 s per target
#   scripts/fuzz.sh 600        # 10 min per target
#   scripts/fuzz.sh 60 spec    # one target
# FUZZ_TOOLCHAIN=stable takes the stable path even where nightly is installed.
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

toolchain=(+nightly)
sanitizer="${FUZZ_SANITIZER:-address}"
if [ "${FUZZ_TOOLCHAIN:-}" = stable ] || ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzzing on the stable toolchain (no nightly, or FUZZ_TOOLCHAIN=stable): RUSTC_BOOTSTRAP=1, no sanitizer" >&2
    toolchain=()
    sanitizer=none
    export RUSTC_BOOTSTRAP=1
fi
if ! cargo "${toolchain[@]}" fuzz --version >/dev/null 2>&1; then
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
    cargo "${toolchain[@]}" fuzz run "${profile[@]}" --sanitizer "$sanitizer" "$target" "$corpus" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
        -print_final_stats=1 2>&1 | tee "target/fuzz-$target.log" | grep -E "^(#[0-9]+ +DONE|stat::|==|SUMMARY|Done)" || true
    if ! grep -q "Done [0-9]* runs" "target/fuzz-$target.log"; then
        echo "fuzzing $target did not finish cleanly; see target/fuzz-$target.log" >&2
        exit 1
    fi
done
