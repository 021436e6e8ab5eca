//! `[text]`: which encoder turns texts into vectors, and its settings (hashing n-grams, a
//! precomputed matrix, or a sentence-transformers folder with optional SimCSE fine-tuning).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::range::{check_numbers, Range, MAX_COUNT, MAX_WIDTH};
use crate::error::{InputError, InputResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextEncoderKind {
    Hashing,
    Precomputed,
    Transformer,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextConfig {
    #[serde(default = "default_encoder")]
    pub encoder: TextEncoderKind,
    /// Number of hashing buckets (`hashing` only).
    #[serde(default = "default_hashing_dim")]
    pub dim: usize,
    /// Character n-gram lengths of the hashing featurizer, inclusive.
    #[serde(default = "default_ngram_min")]
    pub ngram_min: usize,
    #[serde(default = "default_ngram_max")]
    pub ngram_max: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_embeddings: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_embeddings: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<PathBuf>,
    /// SimCSE fine-tuning of `model` on the train and test texts before encoding
    /// (`transformer` only). Left out of the serialized form when unset, so the ids of
    /// configs without it (a hash of that form) stay what they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finetune: Option<FinetuneConfig>,
}

/// `[text] finetune = {...}`: the settings of [`FinetuneSettings`] a sweep may choose;
/// every key defaults to the SimCSE recipe, so `finetune = {}` is the recipe itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FinetuneConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub warmup_fraction: f64,
    pub scale: f64,
    pub weight_decay: f64,
    pub seed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<usize>,
}

impl FinetuneConfig {
    /// Every key, for the sweep grid (which cannot find `max_steps` in the serialized defaults).
    pub const KEYS: &'static [&'static str] = &[
        "epochs",
        "batch_size",
        "lr",
        "warmup_fraction",
        "scale",
        "weight_decay",
        "seed",
        "max_steps",
    ];

    pub fn settings(&self) -> FinetuneSettings {
        FinetuneSettings {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            warmup_fraction: self.warmup_fraction,
            scale: self.scale,
            weight_decay: self.weight_decay,
            seed: self.seed,
            max_steps: self.max_steps,
            ..FinetuneSettings::default()
        }
    }

    fn validate(&self) -> InputResult<()> {
        if self.batch_size < 2 {
            return Err(InputError::new(
                "must be at least 2 (the other texts of a batch are the negatives)",
            )
            .field("text.finetune.batch_size"));
        }
        let mut numbers = vec![
            ("text.finetune.epochs", self.epochs as f64, Range::closed(1.0, MAX_COUNT)),
            ("text.finetune.batch_size", self.batch_size as f64, Range::closed(2.0, MAX_WIDTH)),
            ("text.finetune.lr", self.lr, Range::POSITIVE),
            ("text.finetune.warmup_fraction", self.warmup_fraction, Range::FRACTION),
            ("text.finetune.scale", self.scale, Range::POSITIVE),
            ("text.finetune.weight_decay", self.weight_decay, Range::NON_NEGATIVE),
        ];
        if let Some(steps) = self.max_steps {
            numbers.push(("text.finetune.max_steps", steps as f64, Range::closed(1.0, MAX_COUNT)));
        }
        check_numbers(&numbers)
    }
}

/// The defaults are the library's, so the CLI's `finetune` and a sweep's agree.
impl Default for FinetuneConfig {
    fn default() -> Self {
        let s = FinetuneSettings::default();
        FinetuneConfig {
            epochs: s.epochs,
            batch_size: s.batch_size,
            lr: s.lr,
            warmup_fraction: s.warmup_fraction,
            scale: s.scale,
            weight_decay: s.weight_decay,
            seed: s.seed,
            max_steps: s.max_steps,
        }
    }
}

fn default_encoder() -> TextEncoderKind {
    TextEncoderKind::Hashing
}
fn default_hashing_dim() -> usize {
    768
}
fn default_ngram_min() -> usize {
    3
}
fn default_ngram_max() -> usize {
    5
}

impl Default for TextConfig {
    fn default() -> Self {
        TextConfig {
            encoder: default_encoder(),
            dim: default_hashing_dim(),
            ngram_min: default_ngram_min(),
            ngram_max: default_ngram_max(),
            train_embeddings: None,
            test_embeddings: None,
            model: None,
            finetune: None,
        }
    }
}

impl TextConfig {
    pub fn validate_public(&self) -> InputResult<()> {
        self.validate()
    }

    pub(crate) fn validate(&self) -> InputResult<()> {
        if let Some(finetune) = &self.finetune {
            if self.encoder != TextEncoderKind::Transformer {
                return Err(InputError::new(
                    "only valid with text.encoder = \"transformer\" (it fine-tunes text.model)",
                )
                .field("text.finetune"));
            }
            finetune.validate()?;
        }
        check_numbers(&[
            ("text.dim", self.dim as f64, Range::closed(1.0, MAX_WIDTH)),
            ("text.ngram_min", self.ngram_min as f64, Range::closed(1.0, 64.0)),
            ("text.ngram_max", self.ngram_max as f64, Range::closed(1.0, 64.0)),
        ])?;
        match self.encoder {
            TextEncoderKind::Hashing => {
                if self.ngram_min > self.ngram_max {
                    return Err(
                        InputError::new("need 1 <= ngram_min <= ngram_max").field("text.ngram_min")
                    );
                }
            }
            TextEncoderKind::Precomputed => {
                if self.train_embeddings.is_none() {
                    return Err(InputError::new("required when text.encoder = \"precomputed\"")
                        .field("text.train_embeddings"));
                }
            }
            TextEncoderKind::Transformer => {
                if self.model.is_none() {
                    return Err(InputError::new("required when text.encoder = \"transformer\" (a sentence-transformers model folder)")
                        .field("text.model"));
                }
            }
        }
        Ok(())
    }
}

/// Training settings; [`Default`] is the SimCSE recipe of the brief. Serializable so that a
/// fine-tuned model can be keyed by the settings that made it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FinetuneSettings {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// Fraction of all steps spent warming the learning rate up from 0.
    pub warmup_fraction: f64,
    /// Cosine similarities are multiplied by this before the cross-entropy.
    pub scale: f64,
    pub weight_decay: f64,
    /// Global gradient-norm limit (`None`: no clipping).
    pub max_grad_norm: Option<f64>,
    /// Seeds both the shuffling and the dropout masks.
    pub seed: u64,
    /// Stop after this many steps (the schedule is still planned for the full run).
    pub max_steps: Option<usize>,
}

impl Default for FinetuneSettings {
    fn default() -> Self {
        FinetuneSettings {
            epochs: 3,
            batch_size: 64,
            lr: 2e-5,
            warmup_fraction: 0.1,
            scale: 20.0,
            weight_decay: 0.01,
            max_grad_norm: Some(1.0),
            seed: 42,
            max_steps: None,
        }
    }
}
