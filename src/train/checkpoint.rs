//! Checkpoints: the best epoch's weights (burn's binary record, full precision) next to a
//! JSON file with the model's shape, so a checkpoint loads without its config.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use burn::module::Module;
use burn::record::{BinFileRecorder, FullPrecisionSettings};
use burn::tensor::backend::Backend;

use crate::model::{ModelSpec, PairModel};

const WEIGHTS: &str = "model.bin";
const SPEC: &str = "model.json";

/// Saves into `dir` (created if needed); returns the folder.
pub fn save<B: Backend>(
    dir: &Path,
    spec: &ModelSpec,
    model: &PairModel<B>,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let spec_json = serde_json::to_string_pretty(spec)?;
    crate::util::write_atomic(&dir.join(SPEC), spec_json.as_bytes())?;
    save_weights_atomically(dir, model)?;
    Ok(dir.to_path_buf())
}

/// The weights go to a temporary file of this writer's own, are synced, and then renamed
/// over `model.bin`: two shards that train the same config id into one shared folder each
/// replace the whole file, and a reader (`export`) never loads half of one.
fn save_weights_atomically<B: Backend>(dir: &Path, model: &PairModel<B>) -> anyhow::Result<()> {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    // No dot in the stem: the recorder replaces the extension with its own ("bin").
    let stem = format!(
        "model-partial-{}-{}-{:08x}",
        std::process::id(),
        SERIAL.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    );
    let tmp = dir.join(format!("{stem}.bin"));
    let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
    let saved = model
        .clone()
        .save_file(dir.join(&stem), &recorder)
        .with_context(|| format!("saving the checkpoint in {}", dir.display()))
        .and_then(|()| {
            std::fs::File::open(&tmp)
                .and_then(|file| file.sync_all())
                .with_context(|| format!("syncing {}", tmp.display()))
        })
        .and_then(|()| {
            let target = dir.join(WEIGHTS);
            std::fs::rename(&tmp, &target)
                .with_context(|| format!("renaming {} to {}", tmp.display(), target.display()))
        });
    if saved.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    saved
}

pub fn load<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> anyhow::Result<(ModelSpec, PairModel<B>)> {
    let spec_path = dir.join(SPEC);
    let spec: ModelSpec = serde_json::from_slice(
        &std::fs::read(&spec_path).with_context(|| format!("reading {}", spec_path.display()))?,
    )
    .with_context(|| format!("parsing {}", spec_path.display()))?;
    let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
    let model = spec
        .init::<B>(device)
        .load_file(dir.join("model"), &recorder, device)
        .with_context(|| format!("loading {}", dir.join(WEIGHTS).display()))?;
    Ok((spec, model))
}
