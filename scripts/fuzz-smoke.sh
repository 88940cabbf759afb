#!/usr/bin/env bash
# Fuzz smoke test: run every cargo-fuzz target in fuzz/ for FUZZ_SECONDS (default 15) seconds,
# starting from the committed seeds in fuzz/seeds/<target>/. Fails on the first crash; the
# crashing input is left in fuzz/artifacts/<target>/.
#
#   scripts/fuzz-smoke.sh              # all targets, 15 s each
#   FUZZ_SECONDS=60 scripts/fuzz-smoke.sh sps_rewrite
#   FUZZ_PROFILE=dev scripts/fuzz-smoke.sh   # unoptimised build: compiles faster, fuzzes slower
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-15}"
profile=()
case "${FUZZ_PROFILE:-release}" in
  release) ;;
  dev) profile=(--dev) ;;
  *) echo "FUZZ_PROFILE must be release or dev, not ${FUZZ_PROFILE}" >&2; exit 2 ;;
esac
# cargo-fuzz needs nightly flags. Use a nightly toolchain when rustup has one; otherwise let the
# stable compiler accept them (RUSTC_BOOTSTRAP) and skip the sanitizer runtime.
extra=()
if [ -n "${FUZZ_TOOLCHAIN:-}" ]; then
  toolchain="+$FUZZ_TOOLCHAIN"
elif rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain="+nightly"
else
  toolchain=""
  export RUSTC_BOOTSTRAP=1
  extra=(--sanitizer none)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd fuzz && cargo $toolchain fuzz list)
fi

for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  seeds="fuzz/seeds/$target"
  mkdir -p "$corpus"
  echo "== fuzzing $target for ${seconds}s (seeds: $seeds)"
  # -fuzz-dir keeps the invocation independent of the current directory.
  cargo $toolchain fuzz run "${profile[@]}" "${extra[@]}" --fuzz-dir fuzz "$target" "$corpus" "$seeds" -- \
    -max_total_time="$seconds" -print_final_stats=1
done
echo "fuzz smoke: ${#targets[@]} target(s) ran ${seconds}s each without a crash"
