#!/usr/bin/env bash
# Runs every fuzz target for N seconds (default 30), starting from the committed seeds.
# Usage: fuzz/run-all.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-30}"

# cargo-fuzz needs nightly for its sanitizer flags; where only stable is installed,
# RUSTC_BOOTSTRAP lets stable accept them.
if rustup run nightly rustc --version >/dev/null 2>&1; then
  fuzz=(cargo +nightly fuzz)
else
  echo "nightly not found: using RUSTC_BOOTSTRAP=1 with the stable toolchain" >&2
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi

targets=$("${fuzz[@]}" list)
"${fuzz[@]}" build
for target in $targets; do
  echo "== fuzz $target for ${seconds}s"
  # Work on a scratch copy so the run never adds files to the committed corpus.
  scratch=$(mktemp -d)
  cp -r "corpus/$target/." "$scratch/"
  "${fuzz[@]}" run "$target" "$scratch" -- -max_total_time="$seconds" -max_len=4096 -print_final_stats=1
  rm -rf "$scratch"
done
echo "== all fuzz targets ran ${seconds}s without a crash"
