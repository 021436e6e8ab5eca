//! Text features: one vector per record, from the record's combined text.
//!
//! `hashing` needs no model; `precomputed` reads an .npy made elsewhere (for example by
//! `sentence-transformers`); `transformer` runs a SentenceTransformer model folder natively,
//! through an on-disk cache so each text is encoded once for every config and run.

pub mod hashing;
pub mod transformer;

use std::path::Path;

use crate::config::{TextConfig, TextEncoderKind};
use crate::data::{npy, Dataset, Matrix};
use crate::error::{InputError, InputResult};
pub use hashing::HashingFeaturizer;

/// Which records a feature matrix is for; precomputed files differ between the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Train,
    Test,
}

/// Text features for every record of `dataset`, row i for record i.
pub fn text_features(config: &TextConfig, dataset: &Dataset, part: Part) -> InputResult<Matrix> {
    match config.encoder {
        TextEncoderKind::Hashing => Ok(HashingFeaturizer {
            dim: config.dim,
            ngram_min: config.ngram_min,
            ngram_max: config.ngram_max,
        }
        .featurize_all(&dataset.texts())),
        TextEncoderKind::Precomputed => {
            let (path, key) = match part {
                Part::Train => (config.train_embeddings.as_deref(), "text.train_embeddings"),
                Part::Test => (config.test_embeddings.as_deref(), "text.test_embeddings"),
            };
            let path = path.ok_or_else(|| InputError::new("required for precomputed text features").field(key))?;
            load_precomputed(path, dataset.len())
        }
        TextEncoderKind::Transformer => {
            let model = config.model.as_deref().ok_or_else(|| InputError::new("required when text.encoder = \"transformer\"").field("text.model"))?;
            let (matrix, _) = transformer::encode_cached(model, &dataset.texts(), &cache_dir(), 32, &mut |_, _| {})
                .map_err(|e| match e.downcast::<InputError>() {
                    Ok(input) => input,
                    Err(other) => InputError::new(format!("{other:#}")).field("text.model"),
                })?;
            Ok(matrix)
        }
    }
}

/// Where encoded texts are cached: FOLDSWEEP_CACHE, else `.cache/foldsweep` in the current
/// directory. Entries are keyed by the model's content and each text, so sharing is safe.
pub fn cache_dir() -> std::path::PathBuf {
    std::env::var_os("FOLDSWEEP_CACHE").map(Into::into).unwrap_or_else(|| std::path::PathBuf::from(".cache/foldsweep"))
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
