//! The five losses and the three score decoders, as the report defines them (with the
//! ordinal pairing made consistent: targets 1[k >= y] for P(score <= k)).
//!
//! Every loss returns the per-sample values; the batch loss is mean(loss x weight).

use burn::tensor::activation::{log_sigmoid, log_softmax, sigmoid, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use crate::config::{LossKind, ModelKind, TrainConfig};
use crate::nn::in_f32;

pub const NUM_CLASSES: usize = 11;

/// The loss hyper-parameters a config can set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossSettings {
    pub kind: LossKind,
    pub ce_weight: f64,
    pub mse_weight: f64,
    pub focal_alpha: f64,
    pub focal_gamma: f64,
}

impl LossSettings {
    pub fn from_config(config: &TrainConfig) -> Self {
        LossSettings {
            kind: config.loss,
            ce_weight: config.ce_weight,
            mse_weight: config.mse_weight,
            focal_alpha: config.focal_alpha,
            focal_gamma: config.focal_gamma,
        }
    }

    /// Defaults of the report (hybrid 1.0/0.1, focal alpha 1 gamma 2) for `kind`.
    pub fn report(kind: LossKind) -> Self {
        LossSettings { kind, ce_weight: 1.0, mse_weight: 0.1, focal_alpha: 1.0, focal_gamma: 2.0 }
    }
}

/// Targets of one batch: the score as a float and its integer class.
#[derive(Debug, Clone)]
pub struct Targets<B: Backend> {
    pub score: Tensor<B, 1>,
    pub class: Tensor<B, 1, Int>,
}

/// Per-sample loss for a batch of head outputs (batch x 11 logits, or batch x 2 mean/logvar).
pub fn per_sample_loss<B: Backend>(
    settings: &LossSettings,
    output: Tensor<B, 2>,
    targets: &Targets<B>,
) -> Tensor<B, 1> {
    match settings.kind {
        LossKind::CrossEntropy => cross_entropy(output, &targets.class),
        LossKind::Hybrid => {
            let expected = expected_class(output.clone());
            let class_f = targets.class.clone().float().cast(expected.dtype());
            let squared = (expected - class_f).powi_scalar(2);
            cross_entropy(output, &targets.class) * settings.ce_weight
                + squared * settings.mse_weight
        }
        LossKind::Focal => {
            let ce = cross_entropy(output, &targets.class);
            let pt = ce.clone().neg().exp();
            pt.neg().add_scalar(1.0).powf_scalar(settings.focal_gamma) * ce * settings.focal_alpha
        }
        LossKind::Ordinal => ordinal_bce(output, &targets.class),
        LossKind::Heteroscedastic => {
            let (mean, logvar) = mean_logvar(output);
            let precision = logvar.clone().exp().add_scalar(1e-6).recip();
            (mean - targets.score.clone()).powi_scalar(2) * precision + logvar
        }
        LossKind::SquaredError => {
            unreachable!("squared_error pairs only with gbdt, which trains no neural model")
        }
    }
}

/// The training loss, the report's mean(loss x weight) over the batch, computed in f32
/// whatever the model's precision (a bf16 model's outputs, targets and weights are widened
/// first).
pub fn weighted_loss<B: Backend>(
    settings: &LossSettings,
    output: Tensor<B, 2>,
    targets: &Targets<B>,
    weights: Tensor<B, 1>,
) -> Tensor<B, 1> {
    let targets = Targets { score: in_f32(targets.score.clone()), class: targets.class.clone() };
    (per_sample_loss(settings, in_f32(output), &targets) * in_f32(weights)).mean()
}

/// 0, 1, ..., classes - 1 as a float row in `like`'s dtype (the device default may differ).
fn class_values<B: Backend>(classes: usize, like: &Tensor<B, 2>) -> Tensor<B, 2> {
    Tensor::<B, 1, Int>::arange(0..classes as i64, &like.device())
        .float()
        .cast(like.dtype())
        .reshape([1, classes])
}

fn cross_entropy<B: Backend>(logits: Tensor<B, 2>, class: &Tensor<B, 1, Int>) -> Tensor<B, 1> {
    let batch = class.dims()[0];
    log_softmax(logits, 1).gather(1, class.clone().reshape([batch, 1])).reshape([batch]).neg()
}

/// Binary cross-entropy with logits against 1[k >= y], averaged over the 11 thresholds.
/// Written as (1 - t) l - log sigmoid(l), which never overflows.
fn ordinal_bce<B: Backend>(logits: Tensor<B, 2>, class: &Tensor<B, 1, Int>) -> Tensor<B, 1> {
    let [batch, classes] = logits.dims();
    let thresholds =
        Tensor::<B, 1, Int>::arange(0..classes as i64, &logits.device()).reshape([1, classes]);
    let target =
        thresholds.greater_equal(class.clone().reshape([batch, 1])).float().cast(logits.dtype());
    let bce = logits.clone() * target.neg().add_scalar(1.0) - log_sigmoid(logits);
    bce.mean_dim(1).reshape([batch])
}

/// The heteroscedastic head's outputs: column 0 the mean, column 1 log-variance in [-10, 10].
pub fn mean_logvar<B: Backend>(output: Tensor<B, 2>) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let batch = output.dims()[0];
    let mean = output.clone().narrow(1, 0, 1).reshape([batch]);
    let logvar = output.narrow(1, 1, 1).reshape([batch]).clamp(-10.0, 10.0);
    (mean, logvar)
}

/// Softmax expectation over the classes 0..10.
fn expected_class<B: Backend>(logits: Tensor<B, 2>) -> Tensor<B, 1> {
    let [batch, classes] = logits.dims();
    let values = class_values(classes, &logits);
    (softmax(logits, 1) * values).sum_dim(1).reshape([batch])
}

/// The predicted score in [0, 10] for each sample.
pub fn predict_score<B: Backend>(kind: ModelKind, output: Tensor<B, 2>) -> Tensor<B, 1> {
    match kind {
        ModelKind::Standard => expected_class(output),
        ModelKind::Ordinal => {
            let [batch, classes] = output.dims();
            let cumulative = sigmoid(output);
            // P(score = k) = P(<= k) - P(<= k-1), clamped at 0, renormalised.
            let first = cumulative.clone().narrow(1, 0, 1);
            let diffs =
                cumulative.clone().narrow(1, 1, classes - 1) - cumulative.narrow(1, 0, classes - 1);
            let probs = Tensor::cat(vec![first, diffs], 1).clamp_min(0.0);
            let probs = probs.clone() / (probs.sum_dim(1).add_scalar(1e-8));
            let values = class_values(classes, &probs);
            (probs * values).sum_dim(1).reshape([batch]).clamp(0.0, 10.0)
        }
        ModelKind::Heteroscedastic => mean_logvar(output).0.clamp(0.0, 10.0),
        ModelKind::Gbdt => unreachable!(
            "gbdt configs never build a neural model (job dispatches them to the trees)"
        ),
    }
}

/// The predicted log-variance (heteroscedastic only), kept with out-of-fold predictions.
pub fn predict_logvar<B: Backend>(kind: ModelKind, output: Tensor<B, 2>) -> Option<Tensor<B, 1>> {
    (kind == ModelKind::Heteroscedastic).then(|| mean_logvar(output).1)
}
