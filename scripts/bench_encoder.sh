#!/usr/bin/env bash
# Texts per second on the CPU: `foldsweep embed` against sentence-transformers, same model folder,
# same texts (the sample train records' combined texts), same machine, in the same run.
#   scripts/bench_encoder.sh [MODEL_DIR] [RECORDS_JSON]
# Defaults: MiniLM from scripts/get_minilm.sh, data/sample/train_data.json. PYTHON picks the Python
# that has sentence-transformers (skipped if it has none). foldsweep runs without its text cache.
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-$(bash scripts/get_minilm.sh)}"
records="${2:-data/sample/train_data.json}"
python="${PYTHON:-python3}"
threads="$(nproc)"
out="$(mktemp -d)"
cargo build --release -q
FOLDSWEEP_CACHE="$out/cache" ./target/release/foldsweep embed --model "$model" --input "$records" --out "$out/foldsweep.npy" --batch-size 32
if "$python" -c "import sentence_transformers" 2>/dev/null; then
  HF_HUB_OFFLINE=1 "$python" - "$model" "$records" "$threads" <<'PY'
import json, sys, time
import torch
from sentence_transformers import SentenceTransformer
model_dir, records, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(threads)
def combined(r):  # the same text foldsweep encodes (README: non-empty fields joined by a blank line)
    parts = [r.get("system_prompt"), r.get("user_prompt") or r.get("prompt"), r.get("response") or r.get("expected_response")]
    return "\n\n".join(p.strip() for p in parts if p and p.strip())
texts = [combined(r) for r in json.load(open(records, encoding="utf-8"))]
model = SentenceTransformer(model_dir, device="cpu")
start = time.perf_counter()
model.encode(texts, batch_size=32)
seconds = time.perf_counter() - start
print(f"sentence-transformers: encoded {len(texts)} texts in {seconds:.1f}s ({len(texts) / seconds:.1f} texts/s, {threads} threads)")
PY
else
  echo "(no sentence-transformers for $python: reference skipped)"
fi
rm -rf "$out"
