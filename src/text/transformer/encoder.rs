//! [`SentenceEncoder`]: a sentence-transformers model folder, loaded and ready to encode.

use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::config::EncoderSpec;
use super::model::{Encoder, TokenBatch};
use super::pooling::{l2_normalize, pool};
use super::tokenize::TextTokenizer;
use super::weights::WeightSource;
use crate::backend::{cpu_device, Cpu};
use crate::data::Matrix;
use crate::error::InputError;

/// Tokenizer + transformer + pooling (+ normalisation) of one model folder.
pub struct SentenceEncoder<B: Backend = Cpu> {
    spec: EncoderSpec,
    tokenizer: TextTokenizer,
    encoder: Encoder<B>,
    device: B::Device,
}

impl SentenceEncoder<Cpu> {
    /// Loads a model folder onto the CPU backend.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        Self::load_on(dir, &cpu_device())
    }
}

impl<B: Backend> SentenceEncoder<B> {
    /// Loads a model folder onto `device`. Any unusable file (missing, malformed, an
    /// unsupported architecture, a weight of the wrong shape) is an [`InputError`] naming it.
    pub fn load_on(dir: &Path, device: &B::Device) -> anyhow::Result<Self> {
        let spec = EncoderSpec::load(dir)?;
        let tokenizer = TextTokenizer::load(&spec)?;
        let weights_path = spec.path(EncoderSpec::WEIGHTS);
        if !weights_path.is_file() {
            return Err(InputError::in_file(
                &weights_path,
                "missing (the model folder needs its weights)",
            )
            .into());
        }
        let mut weights = WeightSource::open(&weights_path)?;
        let encoder = Encoder::load(&mut weights, &spec.transformer, device)?;
        Ok(SentenceEncoder { spec, tokenizer, encoder, device: device.clone() })
    }

    /// Wraps an encoder that already exists (a fine-tuned one, say).
    pub fn from_parts(
        spec: EncoderSpec,
        tokenizer: TextTokenizer,
        encoder: Encoder<B>,
        device: B::Device,
    ) -> Self {
        SentenceEncoder { spec, tokenizer, encoder, device }
    }

    pub fn spec(&self) -> &EncoderSpec {
        &self.spec
    }

    pub fn encoder(&self) -> &Encoder<B> {
        &self.encoder
    }

    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// Width of one embedding.
    pub fn dim(&self) -> usize {
        self.spec.dim()
    }

    /// Token ids exactly as the model sees them (special tokens, truncation, no padding).
    pub fn token_ids(&self, texts: &[String]) -> anyhow::Result<Vec<Vec<u32>>> {
        self.tokenizer.ids(texts)
    }

    /// The full pipeline, including Normalize when modules.json lists it. Row i is text i.
    ///
    /// Texts are encoded longest first in batches of `batch_size`, each padded only to its
    /// own longest text, which keeps padding (wasted work) small. `progress(done, total)`
    /// is called after every batch.
    pub fn encode(
        &self,
        texts: &[String],
        batch_size: usize,
        progress: &mut dyn FnMut(usize, usize),
    ) -> anyhow::Result<Matrix> {
        self.run(texts, batch_size, self.spec.normalize, progress)
    }

    /// Transformer + Pooling only: never normalised, whatever modules.json says.
    pub fn encode_pooled(
        &self,
        texts: &[String],
        batch_size: usize,
        progress: &mut dyn FnMut(usize, usize),
    ) -> anyhow::Result<Matrix> {
        self.run(texts, batch_size, false, progress)
    }

    fn run(
        &self,
        texts: &[String],
        batch_size: usize,
        normalize: bool,
        progress: &mut dyn FnMut(usize, usize),
    ) -> anyhow::Result<Matrix> {
        let ids = self.token_ids(texts)?;
        let dim = self.dim();
        let mut data = vec![0f32; texts.len() * dim];
        let mut done = 0;
        for chunk in longest_first(&ids).chunks(batch_size.max(1)) {
            let sequences: Vec<&[u32]> = chunk.iter().map(|&i| ids[i].as_slice()).collect();
            let rows = self.embed_batch(&sequences, normalize);
            for (row, &index) in rows.chunks_exact(dim).zip(chunk) {
                data[index * dim..(index + 1) * dim].copy_from_slice(row);
            }
            done += chunk.len();
            progress(done, texts.len());
        }
        Ok(Matrix::new(texts.len(), dim, data))
    }

    /// One padded batch through the model, pooled; row-major values.
    fn embed_batch(&self, sequences: &[&[u32]], normalize: bool) -> Vec<f32> {
        let pooled = self.pooled_tensor(sequences);
        let pooled = if normalize { l2_normalize(pooled) } else { pooled };
        pooled.into_data().iter::<f32>().collect()
    }

    /// The pooled (not normalised) vectors of one batch, as a tensor (for fine-tuning too).
    pub fn pooled_tensor(&self, sequences: &[&[u32]]) -> Tensor<B, 2> {
        let batch = TokenBatch::new(sequences, &self.spec.transformer, &self.device);
        let hidden = self.encoder.forward(&batch);
        pool(hidden, batch.mask, &self.spec.pooling)
    }

    /// Per-token hidden states of one text: index 0 is the embeddings output, index l the
    /// output of layer l, each (tokens, hidden). For layer-by-layer debugging.
    pub fn hidden_states(&self, text: &str) -> anyhow::Result<Vec<Matrix>> {
        let ids = self.token_ids(&[text.to_string()])?;
        let batch = TokenBatch::new(&[ids[0].as_slice()], &self.spec.transformer, &self.device);
        let states = self.encoder.hidden_states(&batch);
        Ok(states
            .into_iter()
            .map(|t| {
                let [_, tokens, hidden] = t.dims();
                Matrix::new(tokens, hidden, t.into_data().iter::<f32>().collect())
            })
            .collect())
    }
}

/// Indices of `ids` ordered by decreasing length (ties keep input order), so that a batch
/// holds texts of similar length.
fn longest_first(ids: &[Vec<u32>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
    order
}
