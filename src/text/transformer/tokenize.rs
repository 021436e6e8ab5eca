//! tokenizer.json through the HF `tokenizers` crate, set up the way sentence-transformers
//! runs it.

use std::path::{Path, PathBuf};

use tokenizers::{Tokenizer, TruncationParams};

use super::config::EncoderSpec;
use crate::error::{InputError, InputResult};

/// The model's tokenizer with truncation to `max_seq_length` and padding off.
///
/// Both settings are forced: a tokenizer.json may carry its own (all-MiniLM-L6-v2's says
/// truncate at 128 and pad to a fixed 128), which sentence-transformers overrides. Padding
/// happens per batch in [`super::model::TokenBatch`] instead.
pub struct TextTokenizer {
    tokenizer: Tokenizer,
    path: PathBuf,
    lower_case: bool,
    vocab_size: usize,
}

impl TextTokenizer {
    pub fn load(spec: &EncoderSpec) -> InputResult<TextTokenizer> {
        let path = spec.path(EncoderSpec::TOKENIZER);
        let error = |message: String| InputError::in_file(&path, message);
        if !path.is_file() {
            return Err(error("missing (the model folder needs its tokenizer.json)".into()));
        }
        let mut tokenizer = Tokenizer::from_file(&path)
            .map_err(|e| error(format!("cannot load the tokenizer: {e}")))?;
        let truncation =
            TruncationParams { max_length: spec.max_seq_length, ..TruncationParams::default() };
        tokenizer.with_truncation(Some(truncation)).map_err(|e| {
            error(format!("cannot truncate to max_seq_length {}: {e}", spec.max_seq_length))
        })?;
        tokenizer.with_padding(None);
        Ok(TextTokenizer {
            tokenizer,
            path,
            lower_case: spec.do_lower_case,
            vocab_size: spec.transformer.vocab_size,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Token ids per text, special tokens added, truncated, not padded. The text goes in
    /// unchanged (lower-cased only when sentence_bert_config.json says `do_lower_case`).
    pub fn ids(&self, texts: &[String]) -> anyhow::Result<Vec<Vec<u32>>> {
        let inputs: Vec<String> = if self.lower_case {
            texts.iter().map(|t| t.to_lowercase()).collect()
        } else {
            texts.to_vec()
        };
        let encodings = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| anyhow::anyhow!("tokenizing with {}: {e}", self.path.display()))?;
        let ids: Vec<Vec<u32>> = encodings.into_iter().map(|e| e.get_ids().to_vec()).collect();
        self.check_vocabulary(&ids)?;
        Ok(ids)
    }

    /// An id past the embedding table would make the lookup fail; say which files disagree.
    fn check_vocabulary(&self, ids: &[Vec<u32>]) -> InputResult<()> {
        match ids.iter().flatten().find(|&&id| id as usize >= self.vocab_size) {
            Some(id) => Err(InputError::in_file(
                &self.path,
                format!("token id {id} is outside the model's vocabulary (vocab_size {} in config.json)", self.vocab_size),
            )),
            None => Ok(()),
        }
    }
}
