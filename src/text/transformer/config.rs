//! The JSON files of a sentence-transformers model folder, read and checked up front so that
//! every later step can trust them (and every problem names the file and the field).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::data::records::json_kind;
use crate::error::{InputError, InputResult};

/// The encoder families this port runs. They share weight names and layers and differ only
/// in how position ids are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// Positions 0, 1, ..., L-1.
    Bert,
    /// RoBERTa-style positions: `padding_idx + 1 + k` for the k-th non-pad token, pads get
    /// `padding_idx`.
    XlmRoberta,
}

/// `config.json` of the transformer, the fields the forward pass needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformerConfig {
    pub architecture: Architecture,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub pad_token_id: usize,
    pub layer_norm_eps: f64,
    /// Only used when fine-tuning (dropout is off when encoding).
    pub hidden_dropout: f64,
    pub attention_dropout: f64,
}

impl TransformerConfig {
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }

    /// The first position id a real token gets (RoBERTa reserves `0..=padding_idx`).
    pub fn position_offset(&self) -> usize {
        match self.architecture {
            Architecture::Bert => 0,
            Architecture::XlmRoberta => self.pad_token_id + 1,
        }
    }

    /// How many tokens the position table can hold.
    pub fn max_tokens(&self) -> usize {
        self.max_position_embeddings.saturating_sub(self.position_offset())
    }
}

/// Which token summaries the Pooling module concatenates, in sentence-transformers' order
/// (CLS, max, mean, mean / sqrt(len)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolingConfig {
    pub cls: bool,
    pub max: bool,
    pub mean: bool,
    pub mean_sqrt_len: bool,
}

impl PoolingConfig {
    pub fn modes(&self) -> usize {
        [self.cls, self.max, self.mean, self.mean_sqrt_len].iter().filter(|m| **m).count()
    }
}

/// Everything the folder says about the pipeline, plus where each file is.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderSpec {
    pub dir: PathBuf,
    pub transformer: TransformerConfig,
    pub pooling: PoolingConfig,
    /// `modules.json` lists a Normalize module: outputs are L2-normalised.
    pub normalize: bool,
    /// Truncation length actually used: `max_seq_length` capped by the position table.
    pub max_seq_length: usize,
    /// sentence-transformers lower-cases texts before tokenising when this is set.
    pub do_lower_case: bool,
    pub pooling_config_path: PathBuf,
}

impl EncoderSpec {
    pub const CONFIG: &'static str = "config.json";
    pub const TOKENIZER: &'static str = "tokenizer.json";
    pub const WEIGHTS: &'static str = "model.safetensors";
    pub const MODULES: &'static str = "modules.json";
    pub const SBERT_CONFIG: &'static str = "sentence_bert_config.json";

    /// Reads and checks the folder's JSON files (not the tokenizer or the weights).
    pub fn load(dir: &Path) -> InputResult<EncoderSpec> {
        if !dir.is_dir() {
            return Err(InputError::in_file(dir, "model folder not found"));
        }
        let transformer = read_transformer_config(&dir.join(Self::CONFIG))?;
        let modules = read_modules(&dir.join(Self::MODULES))?;
        let pooling_config_path = dir.join(&modules.pooling_path).join("config.json");
        let pooling = read_pooling(&pooling_config_path, transformer.hidden_size)?;
        let (max_seq_length, do_lower_case) =
            read_sbert_config(&dir.join(Self::SBERT_CONFIG), &transformer)?;
        Ok(EncoderSpec {
            dir: dir.to_path_buf(),
            transformer,
            pooling,
            normalize: modules.normalize,
            max_seq_length,
            do_lower_case,
            pooling_config_path,
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Every file whose content decides the embeddings (what the cache key is made of).
    pub fn content_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> =
            [Self::CONFIG, Self::TOKENIZER, Self::WEIGHTS, Self::MODULES, Self::SBERT_CONFIG]
                .iter()
                .map(|n| self.path(n))
                .collect();
        files.push(self.pooling_config_path.clone());
        files
    }

    /// Width of one output vector.
    pub fn dim(&self) -> usize {
        self.transformer.hidden_size * self.pooling.modes()
    }
}

/// Reads a JSON file, naming it in any error.
pub fn read_json(path: &Path) -> InputResult<Value> {
    let bytes =
        std::fs::read(path).map_err(|e| InputError::in_file(path, format!("cannot read: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| InputError::in_file(path, format!("not valid JSON: {e}")))
}

/// Typed access to the fields of one JSON object, with errors that name file and field.
struct Fields<'a> {
    path: &'a Path,
    value: &'a Value,
}

impl<'a> Fields<'a> {
    fn new(path: &'a Path, value: &'a Value) -> InputResult<Self> {
        if !value.is_object() {
            return Err(InputError::in_file(
                path,
                format!("expected a JSON object, found {}", json_kind(value)),
            ));
        }
        Ok(Fields { path, value })
    }

    fn error(&self, key: &str, message: impl Into<String>) -> InputError {
        InputError::in_file(self.path, message).field(key)
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.value.get(key).filter(|v| !v.is_null())
    }

    fn usize(&self, key: &str) -> InputResult<usize> {
        self.usize_or(key, None)
    }

    fn usize_or(&self, key: &str, default: Option<usize>) -> InputResult<usize> {
        match (self.get(key), default) {
            (None, Some(default)) => Ok(default),
            (None, None) => Err(self.error(key, "missing")),
            (Some(v), _) => v.as_u64().map(|n| n as usize).ok_or_else(|| {
                self.error(key, format!("expected a non-negative integer, found {v}"))
            }),
        }
    }

    fn f64_or(&self, key: &str, default: f64) -> InputResult<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => {
                v.as_f64().ok_or_else(|| self.error(key, format!("expected a number, found {v}")))
            }
        }
    }

    fn bool_or(&self, key: &str, default: bool) -> InputResult<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.error(key, format!("expected true or false, found {v}"))),
        }
    }

    fn str(&self, key: &str) -> InputResult<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.error(key, format!("expected a string, found {}", json_kind(v)))),
        }
    }
}

fn read_transformer_config(path: &Path) -> InputResult<TransformerConfig> {
    let value = read_json(path)?;
    let f = Fields::new(path, &value)?;
    let architecture = read_architecture(&f)?;
    let hidden_act = f.str("hidden_act")?.unwrap_or("gelu");
    if hidden_act != "gelu" {
        let message = format!(
            "unsupported activation {hidden_act:?}; only the exact (erf) \"gelu\" is implemented"
        );
        return Err(f.error("hidden_act", message));
    }
    if let Some(kind) = f.str("position_embedding_type")? {
        if kind != "absolute" {
            return Err(f.error(
                "position_embedding_type",
                format!("unsupported {kind:?}; only \"absolute\" is implemented"),
            ));
        }
    }
    let config = TransformerConfig {
        architecture,
        vocab_size: f.usize("vocab_size")?,
        hidden_size: f.usize("hidden_size")?,
        num_layers: f.usize("num_hidden_layers")?,
        num_heads: f.usize("num_attention_heads")?,
        intermediate_size: f.usize("intermediate_size")?,
        max_position_embeddings: f.usize("max_position_embeddings")?,
        type_vocab_size: f.usize_or("type_vocab_size", Some(2))?,
        pad_token_id: f.usize_or(
            "pad_token_id",
            Some(if architecture == Architecture::Bert { 0 } else { 1 }),
        )?,
        layer_norm_eps: f.f64_or("layer_norm_eps", 1e-12)?,
        hidden_dropout: f.f64_or("hidden_dropout_prob", 0.1)?,
        attention_dropout: f.f64_or("attention_probs_dropout_prob", 0.1)?,
    };
    check_transformer_config(&f, &config)?;
    Ok(config)
}

/// `architectures` when present (what transformers itself goes by), else `model_type`.
fn read_architecture(f: &Fields) -> InputResult<Architecture> {
    let supported = "supported: BertModel, XLMRobertaModel";
    if let Some(list) = f.get("architectures") {
        let names: Vec<&str> = list
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        return match names.as_slice() {
            ["BertModel"] => Ok(Architecture::Bert),
            ["XLMRobertaModel"] => Ok(Architecture::XlmRoberta),
            _ => Err(
                f.error("architectures", format!("unsupported architecture {list}; {supported}"))
            ),
        };
    }
    match f.str("model_type")? {
        Some("bert") => Ok(Architecture::Bert),
        Some("xlm-roberta") => Ok(Architecture::XlmRoberta),
        other => Err(f.error(
            "model_type",
            format!("unsupported model type {other:?} and no `architectures`; {supported}"),
        )),
    }
}

fn check_transformer_config(f: &Fields, c: &TransformerConfig) -> InputResult<()> {
    if c.num_heads == 0 || !c.hidden_size.is_multiple_of(c.num_heads) {
        return Err(f.error(
            "num_attention_heads",
            format!("{} heads do not divide hidden_size {}", c.num_heads, c.hidden_size),
        ));
    }
    if c.type_vocab_size == 0 {
        return Err(f.error("type_vocab_size", "must be at least 1 (token type 0 is always added)"));
    }
    if c.max_tokens() < 2 {
        return Err(f.error(
            "max_position_embeddings",
            format!("{} leaves no room for tokens", c.max_position_embeddings),
        ));
    }
    if c.layer_norm_eps.is_nan() || c.layer_norm_eps <= 0.0 {
        return Err(f.error("layer_norm_eps", "must be positive"));
    }
    Ok(())
}

/// What `modules.json` says beyond the Transformer: where Pooling lives, whether Normalize runs.
struct Modules {
    pooling_path: String,
    normalize: bool,
}

/// Accepts exactly Transformer -> Pooling [-> Normalize]; any other module (Dense, say)
/// would change the output and is refused rather than silently skipped.
fn read_modules(path: &Path) -> InputResult<Modules> {
    let value = read_json(path)?;
    let items = value.as_array().ok_or_else(|| {
        InputError::in_file(
            path,
            format!("expected a JSON list of modules, found {}", json_kind(&value)),
        )
    })?;
    let kinds: Vec<(String, String)> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let kind = item.get("type").and_then(Value::as_str);
            let module_path = item.get("path").and_then(Value::as_str).unwrap_or("");
            kind.map(|k| (k.rsplit('.').next().unwrap_or(k).to_string(), module_path.to_string()))
                .ok_or_else(|| {
                    InputError::in_file(path, "missing or not a string").record(i).field("type")
                })
        })
        .collect::<InputResult<_>>()?;
    match kinds.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().as_slice() {
        ["Transformer", "Pooling"] | ["Transformer", "Pooling", "Normalize"] => Ok(Modules {
            pooling_path: kinds[1].1.clone(),
            normalize: kinds.len() == 3,
        }),
        other => Err(InputError::in_file(
            path,
            format!("unsupported module list {other:?}; supported: Transformer, Pooling and an optional Normalize"),
        )),
    }
}

fn read_pooling(path: &Path, hidden_size: usize) -> InputResult<PoolingConfig> {
    let value = read_json(path)?;
    let f = Fields::new(path, &value)?;
    for unsupported in ["pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"] {
        if f.bool_or(unsupported, false)? {
            return Err(f.error(
                unsupported,
                "this pooling mode is not implemented (supported: cls, max, mean, mean_sqrt_len)",
            ));
        }
    }
    let pooling = PoolingConfig {
        cls: f.bool_or("pooling_mode_cls_token", false)?,
        max: f.bool_or("pooling_mode_max_tokens", false)?,
        mean: f.bool_or("pooling_mode_mean_tokens", false)?,
        mean_sqrt_len: f.bool_or("pooling_mode_mean_sqrt_len_tokens", false)?,
    };
    if pooling.modes() == 0 {
        return Err(InputError::in_file(path, "no pooling mode is switched on"));
    }
    let width = f.usize_or("word_embedding_dimension", Some(hidden_size))?;
    if width != hidden_size {
        return Err(f.error(
            "word_embedding_dimension",
            format!("{width} differs from hidden_size {hidden_size} in config.json"),
        ));
    }
    Ok(pooling)
}

/// `max_seq_length` (capped by the position table, as transformers would fail past it) and
/// `do_lower_case`.
fn read_sbert_config(path: &Path, transformer: &TransformerConfig) -> InputResult<(usize, bool)> {
    let value = read_json(path)?;
    let f = Fields::new(path, &value)?;
    let limit = transformer.max_tokens();
    let max_seq_length = f.usize_or("max_seq_length", Some(limit))?.min(limit);
    if max_seq_length < 2 {
        return Err(f.error("max_seq_length", "must leave room for the two special tokens"));
    }
    Ok((max_seq_length, f.bool_or("do_lower_case", false)?))
}
