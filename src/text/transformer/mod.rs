//! SentenceTransformer models run natively: HF `tokenizers` for the tokenizer, burn for a
//! BERT / XLM-RoBERTa encoder, then sentence-transformers' Pooling and Normalize.
//!
//! A model is a sentence-transformers folder (config.json, tokenizer.json,
//! model.safetensors, modules.json, sentence_bert_config.json, 1_Pooling/config.json).
//! Outputs match sentence-transformers to float32 noise (checked against reference
//! fixtures in tests/encoder.rs). Any unusable file is an [`crate::error::InputError`]
//! naming the file (and the field or weight).
//!
//! - [`SentenceEncoder`]: load a folder, tokenise, encode texts in length-sorted batches;
//! - [`encode_cached`]: the same through an on-disk cache keyed by model and text content;
//! - [`embed_file`]: a JSON file of texts or challenge records to a float32 .npy;
//! - [`finetune`]: SimCSE fine-tuning that writes a new model folder;
//! - [`finetuned_model`]: the same once per model, settings and texts, cached for sweeps.

pub mod cache;
pub mod config;
pub mod encoder;
pub mod finetune;
pub mod finetuned;
pub mod model;
pub mod pooling;
pub mod tokenize;
pub mod weights;

use std::path::{Path, PathBuf};

use serde_json::Value;

pub use cache::{encode_cached, CacheStats};
pub use config::{Architecture, EncoderSpec, PoolingConfig, TransformerConfig};
pub use encoder::SentenceEncoder;
pub use finetune::{finetune, planned_steps, FinetuneReport, FinetuneSettings};
pub use finetuned::{finetune_key, finetuned_model};

use crate::data::records::{json_kind, parse_records};
use crate::data::{npy, Split};
use crate::error::{InputError, InputResult};

/// How [`embed_file_with`] runs.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedOptions {
    pub batch_size: usize,
    /// Reuse and extend the embedding cache in this folder.
    pub cache_dir: Option<PathBuf>,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        EmbedOptions { batch_size: 32, cache_dir: None }
    }
}

/// `foldsweep embed`: encodes every text of `input` with the model in `model_dir` and writes
/// a float32 .npy to `out`, row i for item i. Returns the number of rows.
///
/// `input` is a JSON list of strings (each encoded as-is) or a challenge records file (a
/// list of objects, each encoded as [`crate::data::Record::combined_text`]).
pub fn embed_file(model_dir: &Path, input: &Path, out: &Path) -> anyhow::Result<usize> {
    embed_file_with(model_dir, input, out, &EmbedOptions::default(), &mut |_, _| {})
}

/// [`embed_file`] with a batch size, an optional cache and a progress callback
/// `(done, total)`.
pub fn embed_file_with(
    model_dir: &Path,
    input: &Path,
    out: &Path,
    options: &EmbedOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> anyhow::Result<usize> {
    let texts = read_texts(input)?;
    let matrix = match &options.cache_dir {
        Some(dir) => encode_cached(model_dir, &texts, dir, options.batch_size, progress)?.0,
        None => SentenceEncoder::load(model_dir)?.encode(&texts, options.batch_size, progress)?,
    };
    npy::write_matrix(out, &matrix)?;
    Ok(matrix.rows)
}

/// The texts of an embed input file: a JSON list of strings, or of challenge records.
pub fn read_texts(path: &Path) -> InputResult<Vec<String>> {
    let bytes =
        std::fs::read(path).map_err(|e| InputError::in_file(path, format!("cannot read: {e}")))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        InputError::in_file(
            path,
            format!("not valid JSON at line {}, column {}: {e}", e.line(), e.column()),
        )
    })?;
    let Value::Array(items) = &value else {
        return Err(InputError::in_file(
            path,
            format!("expected a JSON list of strings or records, found {}", json_kind(&value)),
        ));
    };
    if items.iter().any(Value::is_object) {
        let records = parse_records(&bytes, Split::Test).map_err(|e| e.file(path))?;
        return Ok(records.iter().map(|r| r.combined_text()).collect());
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(text) => Ok(text.clone()),
            other => Err(InputError::in_file(
                path,
                format!("expected a string, found {}", json_kind(other)),
            )
            .record(i)),
        })
        .collect()
}
