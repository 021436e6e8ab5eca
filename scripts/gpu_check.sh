#!/usr/bin/env bash
# The GPU check, in one call on a machine with an NVIDIA GPU. No toolchain needed there: build
# here with `CUDARC_CUDA_VERSION=13000 cargo build --release --features cuda` and carry
# target/release/foldsweep (FOLDSWEEP=path overrides).
#
# Prints, next to the CPU figures of the same binary:
#  1. seconds per training epoch (5000 random rows, batch 64) of the full-size model in f32 and
#     bf16 and of the low-rank model, on cuda:0 and on the CPU;
#  2. jobs-per-GPU scaling: 1, 2 and 4 concurrent full-model benchmarks on cuda:0;
#  3. one fold of the sample sweep config trained on cuda:0 (f32, bf16) and on the CPU: RMSE and
#     seconds per epoch.
set -uo pipefail
cd "$(dirname "$0")/.."
bin="${FOLDSWEEP:-target/release/foldsweep}"
steps="${STEPS:-10}"
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

echo "== epoch benchmark ($steps steps scaled to 5000 rows)"
for args in "--device cuda:0 --precision f32" "--device cuda:0 --precision bf16" \
            "--device cuda:0 --precision f32 --rank 64" "--device cpu --rank 64" "--device cpu"; do
  cpu_steps=$steps; [[ "$args" == "--device cpu" ]] && cpu_steps=3
  timeout 600 "$bin" bench-epoch $args --max-steps "$cpu_steps" || echo "FAILED: bench-epoch $args"
done

echo "== jobs per GPU: total throughput with 1, 2, 4 concurrent full-model jobs on cuda:0"
for n in 1 2 4; do
  start=$(python3 -c 'import time; print(time.time())')
  for _ in $(seq "$n"); do "$bin" bench-epoch --device cuda:0 --max-steps "$steps" > /dev/null & done
  wait
  # python3 rather than bc for the arithmetic: the GPU image may have no bc.
  python3 -c "import sys, time; n, s, t = int(sys.argv[1]), int(sys.argv[2]), time.time() - float(sys.argv[3]); print(f'{n} job(s): {n * s / t:.2f} steps/s in total ({t:.1f} s wall)')" "$n" "$steps" "$start"
done

echo "== one fold of sweeps/sample.toml: RMSE and seconds per epoch"
work=$(mktemp -d)
for run in "cuda:0 f32" "cuda:0 bf16" "cpu f32"; do
  set -- $run
  sed "s/^seed = 0$/seed = 0\nprecision = \"$2\"/" sweeps/sample.toml > "$work/c.toml"
  if "$bin" train "$work/c.toml" --fold 0 --device "$1" --out "$work/$1-$2" --quiet > "$work/log" 2>&1; then
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); e=r['epochs']; print(f\"{sys.argv[2]:>10} {sys.argv[3]}: RMSE {r['metrics']['rmse']:.4f} (train-mean {r['mean_predictor_rmse']:.4f}), {sum(x['seconds'] for x in e)/len(e):.3f} s/epoch over {len(e)} epochs\")" "$work/$1-$2/result.json" "$1" "$2"
  else
    echo "FAILED: train on $1 $2"; tail -5 "$work/log"
  fi
done
