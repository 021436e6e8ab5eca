//! Text features: one vector per record, from the record's combined text.
//!
//! `hashing` needs no model; `precomputed` reads an .npy made elsewhere (for example by
//! `sentence-transformers`); `transformer` runs a SentenceTransformer model folder natively,
//! through an on-disk cache so each text is encoded once for every config and run.

pub mod hashing;
pub mod transformer;

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::{Config, DataConfig, TextEncoderKind};
use crate::data::{npy, Dataset, Matrix};
use crate::error::{InputError, InputResult};
pub use hashing::HashingFeaturizer;

/// Which records a feature matrix is for; precomputed files differ between the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Train,
    Test,
}

/// Text features for every record of `dataset`, row i for record i, by `config.text`
/// (the data section is read too: fine-tuning trains on the config's train and test texts,
/// whichever records `dataset` holds).
///
/// A problem with what the user gave (a missing model folder, a bad .npy) is an
/// [`InputError`]; a failure of the machine (the cache cannot be written) stays an I/O error,
/// so that it does not exit as bad input.
pub fn text_features(config: &Config, dataset: &Dataset, part: Part) -> anyhow::Result<Matrix> {
    let text = &config.text;
    match text.encoder {
        TextEncoderKind::Hashing => Ok(HashingFeaturizer {
            dim: text.dim,
            ngram_min: text.ngram_min,
            ngram_max: text.ngram_max,
        }
        .featurize_all(&dataset.texts())),
        TextEncoderKind::Precomputed => {
            let (path, key) = match part {
                Part::Train => (text.train_embeddings.as_deref(), "text.train_embeddings"),
                Part::Test => (text.test_embeddings.as_deref(), "text.test_embeddings"),
            };
            let path = path.ok_or_else(|| {
                InputError::new("required for precomputed text features").field(key)
            })?;
            Ok(load_precomputed(path, dataset.len())?)
        }
        TextEncoderKind::Transformer => {
            let model = transformer_model(config)?;
            let (matrix, _) = transformer::encode_cached(
                &model,
                &dataset.texts(),
                &cache_dir(),
                32,
                &mut |_, _| {},
            )
            .with_context(|| format!("text.model: encoding with {}", model.display()))?;
            Ok(matrix)
        }
    }
}

/// The model folder the transformer encoder runs: `text.model`, or with `text.finetune` its
/// fine-tuned copy (trained now unless the cache already has it). A sweep's plan calls this
/// before any job starts, so its workers only ever find the copy.
fn transformer_model(config: &Config) -> anyhow::Result<PathBuf> {
    let model = config.text.model.as_deref().ok_or_else(|| {
        InputError::new("required when text.encoder = \"transformer\"").field("text.model")
    })?;
    let Some(finetune) = &config.text.finetune else {
        return Ok(model.to_path_buf());
    };
    let texts = finetune_texts(&config.data)?;
    transformer::finetuned_model(model, &texts, &finetune.settings(), &cache_dir())
        .with_context(|| format!("text.finetune: fine-tuning {}", model.display()))
}

/// The texts a model is fine-tuned on: the train records' combined texts, then the test
/// records' (when `data.test` is set), in file order.
pub fn finetune_texts(data: &DataConfig) -> InputResult<Vec<String>> {
    let mut texts = transformer::read_texts(&data.train)?;
    if let Some(test) = &data.test {
        texts.extend(transformer::read_texts(test)?);
    }
    Ok(texts)
}

/// Where encoded texts are cached: FOLDSWEEP_CACHE, else `.cache/foldsweep` in the current
/// directory. Entries are keyed by the model's content and each text, so sharing is safe.
pub fn cache_dir() -> std::path::PathBuf {
    std::env::var_os("FOLDSWEEP_CACHE")
        .map(Into::into)
        .unwrap_or_else(|| std::path::PathBuf::from(".cache/foldsweep"))
}

fn load_precomputed(path: &Path, records: usize) -> InputResult<Matrix> {
    let matrix = npy::read_matrix(path)?;
    if matrix.rows != records {
        return Err(InputError::in_file(
            path,
            format!("has {} rows but the records file has {records} records; row i must belong to record i", matrix.rows),
        ));
    }
    Ok(matrix)
}
