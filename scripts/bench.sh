#!/usr/bin/env bash
# Seconds per training epoch, foldsweep against the report's PyTorch model, in the same run,
# same data shape and thread count. Full model and low-rank variant.
#   scripts/bench.sh [MAX_STEPS]        (default: 5 steps per size, scaled to a 5000-row epoch)
# Needs python3 with torch for the reference (PYTHON=/path/to/python to pick one).
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-5}"
threads="$(nproc)"
python="${PYTHON:-python3}"
export RAYON_NUM_THREADS="$threads"
cargo build --release --benches -q
for rank in 0 64; do
  fs=$(cargo bench -q --bench epoch -- --rank "$rank" --max-steps "$steps" | tail -1)
  echo "$fs"
  if "$python" -c "import torch" 2>/dev/null; then
    pt=$("$python" scripts/torch_epoch.py --rank "$rank" --threads "$threads" --max-steps "$steps" | tail -1)
    echo "$pt"
    a=$(sed -E 's/.*-> ([0-9.]+) s\/epoch.*/\1/' <<<"$fs"); b=$(sed -E 's/.*-> ([0-9.]+) s\/epoch.*/\1/' <<<"$pt")
    python3 -c "print(f'ratio foldsweep/pytorch (rank $rank): {$a / $b:.2f}x')"
  else
    echo "(no torch for $python: PyTorch reference skipped)"
  fi
done
