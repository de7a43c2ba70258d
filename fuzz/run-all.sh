#!/usr/bin/env bash
# Runs every fuzz target from the committed seeds, sharing one total time budget between them
# (default 600 s), so CI time stays bounded as targets are added.
# Usage: fuzz/run-all.sh [TOTAL_SECONDS]
set -euo pipefail
cd "$(dirname "$0")"
total="${1:-600}"

# cargo-fuzz needs nightly for its sanitizer flags; where only stable is installed,
# RUSTC_BOOTSTRAP lets stable accept them.
if rustup run nightly rustc --version >/dev/null 2>&1; then
  fuzz=(cargo +nightly fuzz)
else
  echo "nightly not found: using RUSTC_BOOTSTRAP=1 with the stable toolchain" >&2
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi

mapfile -t targets < <("${fuzz[@]}" list)
count=${#targets[@]}
[ "$count" -gt 0 ] || { echo "no fuzz targets" >&2; exit 1; }
"${fuzz[@]}" build
start=$(date +%s)
for i in "${!targets[@]}"; do
  target="${targets[$i]}"
  # What is left of the budget, shared by the targets still to run (at least 5 s each), so a
  # target that ends early (or a slow build) never takes time from the others.
  left=$(( total - ($(date +%s) - start) ))
  seconds=$(( left / (count - i) ))
  [ "$seconds" -ge 5 ] || seconds=5
  echo "== fuzz $target for ${seconds}s ($(( i + 1 ))/$count, ${left}s of ${total}s left)"
  # Work on a scratch copy so the run never adds files to the committed corpus.
  scratch=$(mktemp -d)
  cp -r "corpus/$target/." "$scratch/"
  # Seeds kept once in ../shared/testdata (see shared-seeds), when that folder is present.
  while read -r name folder; do
    if [ "$name" = "$target" ] && [ -d "../../shared/testdata/$folder" ]; then
      cp "../../shared/testdata/$folder"/* "$scratch/"
    fi
  done < <(grep -v '^#' shared-seeds)
  "${fuzz[@]}" run "$target" "$scratch" -- -max_total_time="$seconds" -max_len=4096 -print_final_stats=1
  rm -rf "$scratch"
done
echo "== all $count fuzz targets ran without a crash, $(( $(date +%s) - start ))s of a ${total}s budget"
