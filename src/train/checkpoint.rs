//! Checkpoints: the best epoch's weights (burn's binary record, full precision) next to a
//! JSON file with the model's shape, so a checkpoint loads without its config.

use std::path::{Path, PathBuf};

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
    let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
    // The recorder appends its own extension to the stem.
    model
        .clone()
        .save_file(dir.join("model"), &recorder)
        .with_context(|| format!("saving the checkpoint in {}", dir.display()))?;
    Ok(dir.to_path_buf())
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
