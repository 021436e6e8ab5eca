//! The BERT / XLM-RoBERTa encoder as burn modules, backend-generic so that the same code
//! encodes (plain backend, dropout off) and fine-tunes (autodiff backend, dropout on).
//!
//! Every module loads itself from, and exports itself to, PyTorch's weight names and layouts
//! (see [`super::weights`]), so the name list lives next to the layer that uses it.

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData, TensorPrimitive};

use super::config::{Architecture, TransformerConfig};
use super::weights::{Exported, WeightSource};
use crate::error::InputResult;
use crate::nn::HostDropout;

/// Added to the attention scores of padded keys: exp() of it is exactly 0 after softmax's
/// max subtraction, as with PyTorch's `finfo.min`, without the risk of -inf arithmetic.
const MASKED_SCORE: f32 = -1e30;

/// A linear layer stored as (in, out) so that the forward pass is `x @ W + b` with no
/// transposed view (PyTorch stores (out, in); the transpose happens once, on load and save).
#[derive(Module, Debug)]
pub struct Dense<B: Backend> {
    pub weight: Param<Tensor<B, 2>>,
    pub bias: Param<Tensor<B, 1>>,
}

impl<B: Backend> Dense<B> {
    fn load(
        src: &mut WeightSource,
        name: &str,
        inputs: usize,
        outputs: usize,
        device: &B::Device,
    ) -> InputResult<Self> {
        let weight = src.linear_weight(&format!("{name}.weight"), outputs, inputs)?;
        let bias = src.tensor(&format!("{name}.bias"), &[outputs])?;
        Ok(Dense {
            weight: param(TensorData::new(weight, [inputs, outputs]), device),
            bias: param(TensorData::new(bias, [outputs]), device),
        })
    }

    fn export(&self, name: &str, out: &mut Exported) {
        out.linear_weight(&format!("{name}.weight"), self.weight.val());
        out.tensor(&format!("{name}.bias"), self.bias.val());
    }

    /// (batch, tokens, in) -> (batch, tokens, out), as one 2-D matrix product.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [batch, tokens, inputs] = x.dims();
        let outputs = self.weight.val().dims()[1];
        // [x, 1] @ [W; b]: the bias rides in the matrix product. Added afterwards it is a
        // broadcast, which flex walks element by element through strided indices (a quarter
        // of encoding time); the two concatenations are plain copies.
        let device = x.device();
        let x = Tensor::cat(
            vec![x.reshape([batch * tokens, inputs]), Tensor::ones([batch * tokens, 1], &device)],
            1,
        );
        let weight = Tensor::cat(vec![self.weight.val(), self.bias.val().unsqueeze::<2>()], 0);
        x.matmul(weight).reshape([batch, tokens, outputs])
    }
}

/// LayerNorm over the last axis with the BIASED variance and the config's epsilon (BERT's
/// 1e-12 and XLM-R's 1e-5 differ visibly, so it is never a default).
#[derive(Module, Debug)]
pub struct Norm<B: Backend> {
    pub gamma: Param<Tensor<B, 1>>,
    pub beta: Param<Tensor<B, 1>>,
    pub eps: f64,
}

impl<B: Backend> Norm<B> {
    fn load(
        src: &mut WeightSource,
        name: &str,
        width: usize,
        eps: f64,
        device: &B::Device,
    ) -> InputResult<Self> {
        Ok(Norm {
            gamma: param(
                TensorData::new(src.tensor(&format!("{name}.weight"), &[width])?, [width]),
                device,
            ),
            beta: param(
                TensorData::new(src.tensor(&format!("{name}.bias"), &[width])?, [width]),
                device,
            ),
            eps,
        })
    }

    fn export(&self, name: &str, out: &mut Exported) {
        out.tensor(&format!("{name}.weight"), self.gamma.val());
        out.tensor(&format!("{name}.bias"), self.beta.val());
    }

    /// The backend's layer norm: flex fuses it into one pass per row (written out in tensor
    /// ops it was a quarter of encoding time); other backends, autodiff included, compose it
    /// from the same formula.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let normalized = B::layer_norm(
            x.into_primitive().tensor(),
            self.gamma.val().into_primitive().tensor(),
            Some(self.beta.val().into_primitive().tensor()),
            self.eps,
        );
        Tensor::from_primitive(TensorPrimitive::Float(normalized))
    }
}

/// Word + position + token-type (always type 0) embeddings, then LayerNorm.
#[derive(Module, Debug)]
pub struct Embeddings<B: Backend> {
    pub word: Param<Tensor<B, 2>>,
    pub position: Param<Tensor<B, 2>>,
    pub token_type: Param<Tensor<B, 2>>,
    pub norm: Norm<B>,
    #[module(skip)]
    pub dropout: HostDropout,
}

impl<B: Backend> Embeddings<B> {
    fn load(
        src: &mut WeightSource,
        c: &TransformerConfig,
        device: &B::Device,
    ) -> InputResult<Self> {
        let h = c.hidden_size;
        let table =
            |src: &mut WeightSource, name: &str, rows: usize| -> InputResult<Param<Tensor<B, 2>>> {
                Ok(param(TensorData::new(src.tensor(name, &[rows, h])?, [rows, h]), device))
            };
        Ok(Embeddings {
            word: table(src, "embeddings.word_embeddings.weight", c.vocab_size)?,
            position: table(
                src,
                "embeddings.position_embeddings.weight",
                c.max_position_embeddings,
            )?,
            token_type: table(src, "embeddings.token_type_embeddings.weight", c.type_vocab_size)?,
            norm: Norm::load(src, "embeddings.LayerNorm", h, c.layer_norm_eps, device)?,
            dropout: HostDropout::new::<B>(c.hidden_dropout, device),
        })
    }

    fn export(&self, out: &mut Exported) {
        out.tensor("embeddings.word_embeddings.weight", self.word.val());
        out.tensor("embeddings.position_embeddings.weight", self.position.val());
        out.tensor("embeddings.token_type_embeddings.weight", self.token_type.val());
        self.norm.export("embeddings.LayerNorm", out);
    }

    fn forward(&self, batch: &TokenBatch<B>) -> Tensor<B, 3> {
        let [rows, tokens] = batch.ids.dims();
        let hidden = self.word.val().dims()[1];
        let lookup = |table: Tensor<B, 2>, ids: Tensor<B, 2, Int>| {
            table.select(0, ids.reshape([rows * tokens])).reshape([rows, tokens, hidden])
        };
        let words = lookup(self.word.val(), batch.ids.clone());
        let positions = lookup(self.position.val(), batch.positions.clone());
        let token_type = self.token_type.val().slice([0..1, 0..hidden]).unsqueeze::<3>();
        self.dropout.forward(self.norm.forward(words + positions + token_type))
    }
}

/// One post-LN encoder layer: self-attention, then the GELU feed-forward block.
#[derive(Module, Debug)]
pub struct Layer<B: Backend> {
    pub query: Dense<B>,
    pub key: Dense<B>,
    pub value: Dense<B>,
    pub attention_out: Dense<B>,
    pub attention_norm: Norm<B>,
    pub intermediate: Dense<B>,
    pub output: Dense<B>,
    pub output_norm: Norm<B>,
    pub heads: usize,
    #[module(skip)]
    pub hidden_dropout: HostDropout,
    #[module(skip)]
    pub attention_dropout: HostDropout,
}

impl<B: Backend> Layer<B> {
    fn load(
        src: &mut WeightSource,
        index: usize,
        c: &TransformerConfig,
        device: &B::Device,
    ) -> InputResult<Self> {
        let p = |suffix: &str| format!("encoder.layer.{index}.{suffix}");
        let (h, i, eps) = (c.hidden_size, c.intermediate_size, c.layer_norm_eps);
        Ok(Layer {
            query: Dense::load(src, &p("attention.self.query"), h, h, device)?,
            key: Dense::load(src, &p("attention.self.key"), h, h, device)?,
            value: Dense::load(src, &p("attention.self.value"), h, h, device)?,
            attention_out: Dense::load(src, &p("attention.output.dense"), h, h, device)?,
            attention_norm: Norm::load(src, &p("attention.output.LayerNorm"), h, eps, device)?,
            intermediate: Dense::load(src, &p("intermediate.dense"), h, i, device)?,
            output: Dense::load(src, &p("output.dense"), i, h, device)?,
            output_norm: Norm::load(src, &p("output.LayerNorm"), h, eps, device)?,
            heads: c.num_heads,
            hidden_dropout: HostDropout::new::<B>(c.hidden_dropout, device),
            attention_dropout: HostDropout::new::<B>(c.attention_dropout, device),
        })
    }

    fn export(&self, index: usize, out: &mut Exported) {
        let p = |suffix: &str| format!("encoder.layer.{index}.{suffix}");
        self.query.export(&p("attention.self.query"), out);
        self.key.export(&p("attention.self.key"), out);
        self.value.export(&p("attention.self.value"), out);
        self.attention_out.export(&p("attention.output.dense"), out);
        self.attention_norm.export(&p("attention.output.LayerNorm"), out);
        self.intermediate.export(&p("intermediate.dense"), out);
        self.output.export(&p("output.dense"), out);
        self.output_norm.export(&p("output.LayerNorm"), out);
    }

    /// `score_bias` is (batch, 1, 1, tokens): 0 for real keys, [`MASKED_SCORE`] for padding.
    fn forward(&self, x: Tensor<B, 3>, score_bias: Tensor<B, 4>) -> Tensor<B, 3> {
        let context = self.attention(x.clone(), score_bias);
        let attended = self.hidden_dropout.forward(self.attention_out.forward(context));
        let x = self.attention_norm.forward(attended + x);
        let inner = gelu(self.intermediate.forward(x.clone()));
        let out = self.hidden_dropout.forward(self.output.forward(inner));
        self.output_norm.forward(out + x)
    }

    fn attention(&self, x: Tensor<B, 3>, score_bias: Tensor<B, 4>) -> Tensor<B, 3> {
        let [batch, tokens, hidden] = x.dims();
        let head_dim = hidden / self.heads;
        // (batch, tokens, hidden) -> (batch, heads, tokens, head_dim)
        let split =
            |t: Tensor<B, 3>| t.reshape([batch, tokens, self.heads, head_dim]).swap_dims(1, 2);
        let q = split(self.query.forward(x.clone()));
        let k = split(self.key.forward(x.clone()));
        let v = split(self.value.forward(x));
        let scores = q.matmul(k.swap_dims(2, 3)) / (head_dim as f64).sqrt() + score_bias;
        let probs = self.attention_dropout.forward(burn::tensor::activation::softmax(scores, 3));
        probs.matmul(v).swap_dims(1, 2).reshape([batch, tokens, hidden])
    }
}

/// The exact GELU `0.5 x (1 + erf(x / sqrt 2))`. burn's fused op computes it on every backend;
/// its gradient is exact on flex, where encoding and fine-tuning run (burn's default backward,
/// used by backends that do not override it, differentiates the tanh approximation).
pub fn gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    burn::tensor::activation::gelu(x)
}

/// The whole transformer: embeddings and the layer stack (no pooler: sentence-transformers
/// never uses it).
#[derive(Module, Debug)]
pub struct Encoder<B: Backend> {
    pub embeddings: Embeddings<B>,
    pub layers: Vec<Layer<B>>,
}

impl<B: Backend> Encoder<B> {
    /// Gives every dropout layer its own generator derived from `seed`, so fine-tuning's masks
    /// depend on its seed alone.
    pub fn seed_dropout(&mut self, seed: u64) {
        let mut next = (0u64..).map(|i| seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(i));
        self.embeddings.dropout = self.embeddings.dropout.reseeded(next.next().unwrap());
        for layer in &mut self.layers {
            layer.hidden_dropout = layer.hidden_dropout.reseeded(next.next().unwrap());
            layer.attention_dropout = layer.attention_dropout.reseeded(next.next().unwrap());
        }
    }

    /// Builds the encoder from a weight file, checking every weight's shape against `config`.
    pub fn load(
        src: &mut WeightSource,
        config: &TransformerConfig,
        device: &B::Device,
    ) -> InputResult<Self> {
        let embeddings = Embeddings::load(src, config, device)?;
        let layers = (0..config.num_layers)
            .map(|i| Layer::load(src, i, config, device))
            .collect::<InputResult<_>>()?;
        Ok(Encoder { embeddings, layers })
    }

    /// Every weight under its PyTorch name (without any file prefix), in PyTorch's layout.
    pub fn export(&self) -> Exported {
        let mut out = Exported::default();
        self.embeddings.export(&mut out);
        for (i, layer) in self.layers.iter().enumerate() {
            layer.export(i, &mut out);
        }
        out
    }

    /// The last hidden state, (batch, tokens, hidden).
    pub fn forward(&self, batch: &TokenBatch<B>) -> Tensor<B, 3> {
        let bias = batch.score_bias();
        self.layers
            .iter()
            .fold(self.embeddings.forward(batch), |x, layer| layer.forward(x, bias.clone()))
    }

    /// The embeddings output and every layer's output (for layer-by-layer debugging).
    pub fn hidden_states(&self, batch: &TokenBatch<B>) -> Vec<Tensor<B, 3>> {
        let bias = batch.score_bias();
        let mut states = vec![self.embeddings.forward(batch)];
        for layer in &self.layers {
            let next = layer.forward(states[states.len() - 1].clone(), bias.clone());
            states.push(next);
        }
        states
    }
}

/// A right-padded batch of token ids with its position ids and attention mask.
#[derive(Debug, Clone)]
pub struct TokenBatch<B: Backend> {
    pub ids: Tensor<B, 2, Int>,
    pub positions: Tensor<B, 2, Int>,
    /// 1.0 for real tokens, 0.0 for padding, (batch, tokens).
    pub mask: Tensor<B, 2>,
}

impl<B: Backend> TokenBatch<B> {
    /// Pads every sequence to the longest one with `pad_token_id`.
    pub fn new(sequences: &[&[u32]], config: &TransformerConfig, device: &B::Device) -> Self {
        let rows = sequences.len();
        // At least one column, so that a tokenizer without special tokens cannot make an empty tensor.
        let tokens = sequences.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
        let pad = config.pad_token_id as i64;
        let mut ids = vec![pad; rows * tokens];
        let mut mask = vec![0f32; rows * tokens];
        for (r, seq) in sequences.iter().enumerate() {
            for (t, &id) in seq.iter().enumerate() {
                ids[r * tokens + t] = id as i64;
                mask[r * tokens + t] = 1.0;
            }
        }
        let positions = position_ids(&ids, tokens, config);
        TokenBatch {
            ids: Tensor::from_data(TensorData::new(ids, [rows, tokens]), device),
            positions: Tensor::from_data(TensorData::new(positions, [rows, tokens]), device),
            mask: Tensor::from_data(TensorData::new(mask, [rows, tokens]), device),
        }
    }

    fn score_bias(&self) -> Tensor<B, 4> {
        let [rows, tokens] = self.mask.dims();
        (self.mask.clone().sub_scalar(1.0) * -MASKED_SCORE).reshape([rows, 1, 1, tokens])
    }
}

/// BERT counts 0..L for every row; RoBERTa follows transformers'
/// `cumsum(ids != pad) * (ids != pad) + pad`, so real tokens start at `pad + 1`.
fn position_ids(ids: &[i64], tokens: usize, config: &TransformerConfig) -> Vec<i64> {
    let pad = config.pad_token_id as i64;
    ids.chunks(tokens.max(1))
        .flat_map(|row| {
            let mut seen = 0i64;
            row.iter()
                .enumerate()
                .map(|(t, &id)| match config.architecture {
                    Architecture::Bert => t as i64,
                    Architecture::XlmRoberta if id == pad => pad,
                    Architecture::XlmRoberta => {
                        seen += 1;
                        pad + seen
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn param<B: Backend, const D: usize>(data: TensorData, device: &B::Device) -> Param<Tensor<B, D>> {
    Param::from_tensor(Tensor::from_data(data, device))
}
