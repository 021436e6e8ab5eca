#!/usr/bin/env bash
# Seconds per training epoch, foldsweep against the report's PyTorch model, in the same run,
# same data shape and thread count. Full model and low-rank variant.
#   scripts/bench.sh [MAX_STEPS]   full model: MAX_STEPS steps (default 5) scaled to a 5000-row epoch;
#                                  low-rank: whole epochs, REPEATS (default 3) alternating runs
# Needs python3 with torch for the reference (PYTHON=/path/to/python to pick one).
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-5}"
threads="$(nproc)"
python="${PYTHON:-python3}"
export RAYON_NUM_THREADS="$threads"
cargo build --release --benches -q
median() { python3 -c "import sys,statistics; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
epoch_seconds() { sed -E 's/.*-> ([0-9.]+) s\/epoch.*/\1/' <<<"$1"; }
# The full model: STEPS steps scaled to an epoch, once each. The low-rank model's epoch takes
# about a second, so it runs whole, REPEATS times alternating, and the medians are compared.
for rank in 0 64; do
  if [ "$rank" = 0 ]; then step_args=(--max-steps "$steps"); repeats=1; else step_args=(); repeats="${REPEATS:-3}"; fi
  fs_times=(); pt_times=()
  for _ in $(seq "$repeats"); do
    fs=$(cargo bench -q --bench epoch -- --rank "$rank" "${step_args[@]}" | tail -1)
    echo "$fs"; fs_times+=("$(epoch_seconds "$fs")")
    if "$python" -c "import torch" 2>/dev/null; then
      pt=$("$python" scripts/torch_epoch.py --rank "$rank" --threads "$threads" "${step_args[@]}" | tail -1)
      echo "$pt"; pt_times+=("$(epoch_seconds "$pt")")
    fi
  done
  if [ "${#pt_times[@]}" -gt 0 ]; then
    a=$(median "${fs_times[@]}"); b=$(median "${pt_times[@]}")
    python3 -c "print(f'ratio foldsweep/pytorch (rank $rank, median of $repeats): {$a:.2f} / {$b:.2f} s/epoch = {$a / $b:.2f}x')"
  else
    echo "(no torch for $python: PyTorch reference skipped)"
  fi
done
