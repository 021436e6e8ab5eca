# Shared by check_serve.sh and load_serve.sh (sourced, not run): a scratch folder with the
# sample data, a sweep slow enough to watch (30 jobs of 1-2 s each on 2 cores), the sweep
# running in the background and `foldsweep serve` on an ephemeral 127.0.0.1 port.
# Sets: work (the folder), port, token, sweep_pid, serve_pid; cleans up on exit.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
foldsweep=${FOLDSWEEP:-$root/target/release/foldsweep}
if [[ ! -x $foldsweep ]]; then
    echo "no $foldsweep (cargo build --release, or set FOLDSWEEP)" >&2
    exit 2
fi
command -v curl >/dev/null || { echo "needs curl" >&2; exit 2; }

work=$(mktemp -d)
sweep_pid=""
serve_pid=""
cleanup() {
    [[ -n $serve_pid ]] && kill "$serve_pid" 2>/dev/null
    [[ -n $sweep_pid ]] && kill -INT "$sweep_pid" 2>/dev/null && sleep 1 && kill -INT "$sweep_pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

for f in train_data.json test_data.json metric_names.json metric_name_embeddings.npy; do
    cp "$root/data/sample/$f" "$work/"
done
epochs=${EPOCHS:-1000}
cat >"$work/sweep.toml" <<TOML
name = "live"

[data]
train = "train_data.json"
test = "test_data.json"
metric_names = "metric_names.json"
metric_embeddings = "metric_name_embeddings.npy"

[text]
encoder = "hashing"
dim = 64

[cv]
folds = 5
seed = 42

[train]
hidden_dims = [8]
bilinear_dim = 8
bilinear_rank = 4
batch_size = 64
epochs = $epochs
patience = 0
synthetic = { ratio = 0.3, score_min = 0, score_max = 3 }

[grid]
model = ["standard", "ordinal"]
loss = ["hybrid", "ordinal"]
lr = [1e-3, 3e-3, 1e-2]

[resources]
devices = "cpu"
jobs_per_device = 1
max_attempts = 2
TOML

cd "$work"
"$foldsweep" run sweep.toml --db results.db >sweep.log 2>&1 &
sweep_pid=$!

# serve needs the database with the sweep in it: wait for the sweep to register itself.
for _ in $(seq 600); do
    "$foldsweep" results --db results.db --format json >/dev/null 2>&1 && break
    sleep 0.1
done
"$foldsweep" serve --db results.db --addr 127.0.0.1:0 >serve.log 2>serve.err &
serve_pid=$!
for _ in $(seq 100); do
    [[ -s serve.log ]] && break
    sleep 0.1
done
for _ in $(seq 100); do
    [[ $(wc -l <serve.log) -ge 2 ]] && break
    sleep 0.1
done
port=$(head -1 serve.log | sed -E 's#.*http://127\.0\.0\.1:([0-9]+)/.*#\1#')
[[ $port =~ ^[0-9]+$ ]] || { echo "serve did not start: $(cat serve.log serve.err)" >&2; exit 1; }
# The token of the printed link (serve asks for one on loopback too).
token=$(sed -n 2p serve.log | sed -E 's#.*\?token=##')

# A JSON number from the progress endpoint, e.g. progress_field done.
progress_field() {
    curl -s --noproxy '*' -H "Authorization: Bearer $token" \
        "http://127.0.0.1:$port/api/sweeps/live/progress" |
        tr -d ' \n' | grep -o "\"$1\":[0-9.]*" | head -1 | cut -d: -f2
}
