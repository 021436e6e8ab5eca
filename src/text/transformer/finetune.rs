//! Unsupervised SimCSE fine-tuning of a sentence-transformers model on the challenge texts.
//!
//! Each text is paired with itself: two forward passes under different dropout masks give
//! the anchor and its positive, the other texts of the batch are the negatives, and the loss
//! is sentence-transformers' MultipleNegativesRankingLoss (cross-entropy over cosine
//! similarity x scale). AdamW with linear warm-up then linear decay, gradients clipped to a
//! global norm of 1, as sentence-transformers' `fit` does. The result is a complete model
//! folder in the same format, loadable here and by sentence-transformers.

use std::path::Path;

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::config::EncoderSpec;
use super::encoder::SentenceEncoder;
use super::model::{Encoder, TokenBatch};
use super::pooling::{l2_normalize, pool};
use super::tokenize::TextTokenizer;
use super::weights::WeightSource;
use crate::backend::{cpu_device, Cpu, CpuTrain};
pub use crate::config::FinetuneSettings;
use crate::error::InputError;

/// What [`finetune`] did, and the trained model (already saved to the output folder).
pub struct FinetuneReport {
    /// The loss of every step, in order.
    pub losses: Vec<f32>,
    pub steps: usize,
    pub encoder: SentenceEncoder<Cpu>,
}

/// Fine-tunes the model in `model_dir` on `texts` (duplicates are dropped: a copy in the
/// same batch would be a false negative) and writes the result to `out_dir`.
pub fn finetune(
    model_dir: &Path,
    texts: &[String],
    out_dir: &Path,
    settings: &FinetuneSettings,
) -> anyhow::Result<FinetuneReport> {
    check_settings(model_dir, out_dir, settings)?;
    let device = cpu_device();
    let spec = EncoderSpec::load(model_dir)?;
    let tokenizer = TextTokenizer::load(&spec)?;
    let weights_path = spec.path(EncoderSpec::WEIGHTS);
    let mut weights = WeightSource::open(&weights_path)?;
    let mut encoder = crate::backend::seeded::<CpuTrain, _>(&device, settings.seed, || {
        Encoder::<CpuTrain>::load(&mut weights, &spec.transformer, &device)
    })?;
    encoder.seed_dropout(settings.seed);
    let ids = tokenizer.ids(&distinct(texts))?;
    anyhow::ensure!(
        ids.len() >= 2,
        "fine-tuning needs at least two distinct texts (in-batch negatives)"
    );

    let mut rng = rand::rngs::StdRng::seed_from_u64(settings.seed);
    let schedule = Schedule::new(settings, ids.len());
    let mut optimizer = AdamWConfig::new()
        .with_weight_decay(settings.weight_decay as f32)
        .with_epsilon(1e-6)
        .init::<CpuTrain, Encoder<CpuTrain>>();
    let mut losses = Vec::new();
    let started = std::time::Instant::now();
    'epochs: for _ in 0..settings.epochs {
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.shuffle(&mut rng);
        for chunk in order.chunks(settings.batch_size) {
            if losses.len() == schedule.steps_to_run {
                break 'epochs;
            }
            let sequences: Vec<&[u32]> = chunk.iter().map(|&i| ids[i].as_slice()).collect();
            let loss = simcse_loss(&encoder, &spec, &sequences, settings.scale);
            losses.push(loss.clone().into_scalar());
            let mut grads = GradientsParams::from_grads(loss.backward(), &encoder);
            if let Some(max_norm) = settings.max_grad_norm {
                clip_global_norm(&encoder, &mut grads, max_norm);
            }
            encoder = optimizer.step(schedule.lr(losses.len() - 1), encoder, grads);
            report_progress(losses.len(), schedule.steps_to_run, &losses, started);
        }
    }
    let trained = encoder.valid();
    save_model(model_dir, out_dir, &weights, &trained)?;
    let steps = losses.len();
    Ok(FinetuneReport {
        losses,
        steps,
        encoder: SentenceEncoder::from_parts(spec, tokenizer, trained, device),
    })
}

/// The number of optimiser steps [`finetune`] will take on `texts` (after dropping duplicates).
pub fn planned_steps(texts: &[String], settings: &FinetuneSettings) -> usize {
    Schedule::new(settings, distinct(texts).len()).steps_to_run
}

/// One notice (logged) at every tenth of the run: a real model's fine-tuning takes minutes.
fn report_progress(step: usize, steps: usize, losses: &[f32], started: std::time::Instant) {
    let every = (steps / 10).max(1);
    if step.is_multiple_of(every) || step == steps {
        let seconds = started.elapsed().as_secs_f64();
        log::info!(
            "  SimCSE step {step}/{steps}: loss {:.4}, {:.1} s/step",
            losses[step - 1],
            seconds / step as f64
        );
    }
}

fn check_settings(
    model_dir: &Path,
    out_dir: &Path,
    settings: &FinetuneSettings,
) -> anyhow::Result<()> {
    if settings.batch_size < 2 {
        return Err(InputError::new(
            "must be at least 2 (the other texts of a batch are the negatives)",
        )
        .field("batch_size")
        .into());
    }
    let same = match (model_dir.canonicalize(), out_dir.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return Err(InputError::in_file(
            out_dir,
            "the output folder must differ from the model folder",
        )
        .into());
    }
    Ok(())
}

fn distinct(texts: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    texts.iter().filter(|t| seen.insert(t.as_str())).cloned().collect()
}

/// MultipleNegativesRankingLoss on one batch: every text is encoded twice in one padded
/// batch (rows i and b + i), so the two copies see different dropout masks.
fn simcse_loss<B: AutodiffBackend>(
    encoder: &Encoder<B>,
    spec: &EncoderSpec,
    sequences: &[&[u32]],
    scale: f64,
) -> Tensor<B, 1> {
    let b = sequences.len();
    let doubled: Vec<&[u32]> = sequences.iter().chain(sequences).copied().collect();
    let device = encoder.embeddings.word.val().device();
    let batch = TokenBatch::new(&doubled, &spec.transformer, &device);
    let pooled = pool(encoder.forward(&batch), batch.mask.clone(), &spec.pooling);
    let width = pooled.dims()[1];
    let anchors = l2_normalize(pooled.clone().slice([0..b, 0..width]));
    let positives = l2_normalize(pooled.slice([b..2 * b, 0..width]));
    let scores = anchors.matmul(positives.transpose()) * scale;
    let targets = Tensor::<B, 1, Int>::from_data(
        TensorData::new((0..b as i64).collect::<Vec<_>>(), [b]),
        &device,
    );
    CrossEntropyLossConfig::new().init(&device).forward(scores, targets)
}

/// Linear warm-up over `warmup_fraction` of the steps, then linear decay to 0, as
/// transformers' `get_linear_schedule_with_warmup` (step 0 runs at lr 0 when warming up).
struct Schedule {
    lr: f64,
    total: usize,
    warmup: usize,
    steps_to_run: usize,
}

impl Schedule {
    fn new(settings: &FinetuneSettings, texts: usize) -> Schedule {
        let total = settings.epochs * texts.div_ceil(settings.batch_size);
        let warmup = (total as f64 * settings.warmup_fraction).ceil() as usize;
        let steps_to_run = settings.max_steps.map_or(total, |m| m.min(total));
        Schedule { lr: settings.lr, total, warmup, steps_to_run }
    }

    fn lr(&self, step: usize) -> f64 {
        let factor = if step < self.warmup {
            step as f64 / self.warmup as f64
        } else {
            (self.total - step) as f64 / (self.total - self.warmup).max(1) as f64
        };
        self.lr * factor.max(0.0)
    }
}

/// Scales all gradients together so that their joint L2 norm is at most `max_norm`, as
/// torch's `clip_grad_norm_` (burn's own clipping works per tensor).
fn clip_global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) {
    let norm = crate::nn::global_grad_norm::<B, M>(module, grads);
    let factor = max_norm / (norm + 1e-6);
    if factor >= 1.0 {
        return;
    }
    struct Scale<'a, B: Backend> {
        grads: &'a mut GradientsParams,
        factor: f64,
        _backend: std::marker::PhantomData<B>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(grad) = self.grads.remove::<B::InnerBackend, D>(param.id) {
                self.grads.register::<B::InnerBackend, D>(param.id, grad * self.factor);
            }
        }
    }
    module.visit(&mut Scale::<B> { grads, factor, _backend: std::marker::PhantomData });
}

/// A complete model folder: every file of the original (tokenizer, configs, pooling, ...)
/// except the weights, plus model.safetensors with the trained weights under the original
/// names and layouts (untrained tensors such as the pooler are passed through).
fn save_model(
    model_dir: &Path,
    out_dir: &Path,
    original: &WeightSource,
    trained: &Encoder<Cpu>,
) -> anyhow::Result<()> {
    copy_model_files(model_dir, out_dir)?;
    original.save_with(&trained.export(), &out_dir.join(EncoderSpec::WEIGHTS))
}

/// Weight files other than model.safetensors are left behind: they would hold the old weights.
fn copy_model_files(from: &Path, to: &Path) -> anyhow::Result<()> {
    const STALE: [&str; 3] =
        [EncoderSpec::WEIGHTS, "pytorch_model.bin", "model.safetensors.index.json"];
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_model_files(&entry.path(), &target)?;
        } else if !STALE.iter().any(|s| entry.file_name() == *s) {
            std::fs::copy(entry.path(), &target)?;
            // Copies of read-only files (a packaged model) must stay overwritable.
            let mut permissions = std::fs::metadata(&target)?.permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            permissions.set_readonly(false);
            std::fs::set_permissions(&target, permissions)?;
        }
    }
    Ok(())
}
