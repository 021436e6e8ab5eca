//! The report's model: bilinear(metric, text) concatenated with both inputs, an MLP of
//! Linear -> LayerNorm -> ReLU -> Dropout blocks, and one of three heads.
//!
//! Generic over the burn backend: the same code trains on flex (CPU) and CUDA.

pub mod bilinear;
pub mod import;
pub mod loss;

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::config::{ModelKind, TrainConfig};
pub use crate::nn::HostDropout;
pub use bilinear::{Bilinear, LowRankBilinear};
pub use loss::{predict_score, LossSettings, Targets, NUM_CLASSES};

/// Everything that fixes the model's shape.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelSpec {
    pub kind: ModelKind,
    pub d_metric: usize,
    pub d_text: usize,
    pub d_bilinear: usize,
    /// 0 = full bilinear layer.
    pub bilinear_rank: usize,
    pub hidden_dims: Vec<usize>,
    pub dropout: f64,
}

impl ModelSpec {
    pub fn from_config(config: &TrainConfig, d_metric: usize, d_text: usize) -> Self {
        ModelSpec {
            kind: config.model,
            d_metric,
            d_text,
            d_bilinear: if config.bilinear_dim == 0 { d_metric } else { config.bilinear_dim },
            bilinear_rank: config.bilinear_rank,
            hidden_dims: config.hidden_dims.clone(),
            dropout: config.dropout,
        }
    }

    /// Head outputs: 11 logits (standard, ordinal) or mean and log-variance.
    pub fn head_outputs(&self) -> usize {
        match self.kind {
            ModelKind::Standard | ModelKind::Ordinal => NUM_CLASSES,
            ModelKind::Heteroscedastic => 2,
            ModelKind::Gbdt => unreachable!(
                "gbdt configs never build a neural model (job dispatches them to the trees)"
            ),
        }
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> PairModel<B> {
        let (bilinear, low_rank) = if self.bilinear_rank == 0 {
            (Some(Bilinear::new(self.d_metric, self.d_text, self.d_bilinear, device)), None)
        } else {
            let layer = LowRankBilinear::new(
                self.d_metric,
                self.d_text,
                self.d_bilinear,
                self.bilinear_rank,
                device,
            );
            (None, Some(layer))
        };
        let mut fc_layers = Vec::new();
        let mut layer_norms = Vec::new();
        let mut width = self.d_metric + self.d_text + self.d_bilinear;
        for &hidden in &self.hidden_dims {
            fc_layers.push(LinearConfig::new(width, hidden).init(device));
            layer_norms.push(LayerNormConfig::new(hidden).init(device));
            width = hidden;
        }
        let head = LinearConfig::new(width, self.head_outputs()).init(device);
        let dropout = HostDropout::new::<B>(self.dropout, device);
        PairModel { bilinear, low_rank, fc_layers, layer_norms, dropout, head, kind: self.kind }
    }
}

#[derive(Module, Debug)]
pub struct PairModel<B: Backend> {
    pub bilinear: Option<Bilinear<B>>,
    pub low_rank: Option<LowRankBilinear<B>>,
    pub fc_layers: Vec<Linear<B>>,
    pub layer_norms: Vec<LayerNorm<B>>,
    #[module(skip)]
    pub dropout: HostDropout,
    /// Standard/ordinal: 11 logits. Heteroscedastic: column 0 mean, column 1 log-variance
    /// (the report's mean_head and logvar_head side by side).
    pub head: Linear<B>,
    #[module(skip)]
    pub kind: ModelKind,
}

impl<B: Backend> PairModel<B> {
    pub fn kind(&self) -> ModelKind {
        self.kind
    }

    /// Raw head outputs; dropout is active only on an autodiff backend (training).
    pub fn forward(&self, metric: Tensor<B, 2>, text: Tensor<B, 2>) -> Tensor<B, 2> {
        let interaction = match (&self.bilinear, &self.low_rank) {
            (Some(full), _) => full.forward(metric.clone(), text.clone()),
            (None, Some(low_rank)) => low_rank.forward(metric.clone(), text.clone()),
            (None, None) => unreachable!("a model always has one bilinear layer"),
        };
        self.forward_from(metric, text, interaction)
    }

    /// The forward pass with the full bilinear layer's weight product taken out of autodiff:
    /// it enters the graph as a leaf (returned second), whose gradient gives the weight's
    /// gradient outside burn (see `train::fused`). The bias stays in the graph.
    pub fn forward_with_bilinear_leaf(
        &self,
        metric: Tensor<B, 2>,
        text: Tensor<B, 2>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let full = self
            .bilinear
            .as_ref()
            .expect("forward_with_bilinear_leaf needs the full bilinear layer");
        let product = Bilinear::product(
            full.weight.val().detach(),
            full.dims(),
            metric.clone(),
            text.clone(),
        );
        let leaf = product.detach().require_grad();
        let interaction = leaf.clone() + full.bias.val().unsqueeze();
        (self.forward_from(metric, text, interaction), leaf)
    }

    /// The forward pass after the bilinear layer: `interaction` is its output for these rows
    /// (computed elsewhere, e.g. once per distinct metric at evaluation).
    pub fn forward_from(
        &self,
        metric: Tensor<B, 2>,
        text: Tensor<B, 2>,
        interaction: Tensor<B, 2>,
    ) -> Tensor<B, 2> {
        let mut x = Tensor::cat(vec![metric, text, interaction], 1);
        for (fc, norm) in self.fc_layers.iter().zip(&self.layer_norms) {
            x = self.dropout.forward(relu(norm.forward(fc.forward(x))));
        }
        self.head.forward(x)
    }

    /// Predicted scores in [0, 10].
    pub fn predict(&self, metric: Tensor<B, 2>, text: Tensor<B, 2>) -> Tensor<B, 1> {
        predict_score(self.kind(), self.forward(metric, text))
    }
}
