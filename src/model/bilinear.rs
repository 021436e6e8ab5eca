//! The bilinear interaction between a metric embedding m and a text embedding t:
//! out_k = m^T W_k t + b_k, as PyTorch's nn.Bilinear computes it.

use burn::module::{Initializer, Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

/// The full layer: d_metric x d_text x d_out weights (453M for 768/768/768).
///
/// The weight is stored as a d_metric x (d_text * d_out) matrix (element [a, c * d_out + k] is
/// PyTorch's weight[k, a, c]): the forward pass is then ONE matrix product m @ W followed by a
/// small contraction with t, and the gradient of W is one contiguous matrix product too. Two
/// layouts cost measurable time on the 453M-weight layer: a transposed one makes every pass
/// over the gradient slow, and a 3-D one makes burn copy 1.8 GB on every reshape.
#[derive(Module, Debug)]
pub struct Bilinear<B: Backend> {
    pub weight: Param<Tensor<B, 2>>,
    pub bias: Param<Tensor<B, 1>>,
}

impl<B: Backend> Bilinear<B> {
    /// PyTorch's initialisation: U(-1/sqrt(d_metric), 1/sqrt(d_metric)) for weight and bias.
    pub fn new(d_metric: usize, d_text: usize, d_out: usize, device: &B::Device) -> Self {
        let bound = 1.0 / (d_metric as f64).sqrt();
        let init = Initializer::Uniform { min: -bound, max: bound };
        Bilinear {
            weight: init.init([d_metric, d_text * d_out], device),
            bias: init.init([d_out], device),
        }
    }

    /// [d_metric, d_text, d_out]
    pub fn dims(&self) -> [usize; 3] {
        let [d_metric, cols] = self.weight.val().dims();
        let d_out = self.bias.val().dims()[0];
        [d_metric, cols / d_out, d_out]
    }

    pub fn forward(&self, metric: Tensor<B, 2>, text: Tensor<B, 2>) -> Tensor<B, 2> {
        Self::product(self.weight.val(), self.dims(), metric, text) + self.bias.val().unsqueeze()
    }

    /// The layer's output for many samples that share few metrics: m @ W is computed once
    /// per distinct metric (`metrics`, [k, d_metric]) instead of once per sample, then each
    /// sample's text is contracted with its metric's product. `metric_of[i]` is sample i's
    /// row in `metrics`. At evaluation the 145 metric embeddings make this up to N/145 times
    /// less work than [`Bilinear::forward`] on the 453M-weight layer. Returns [N, d_out].
    pub fn forward_shared_metrics(
        &self,
        metrics: Tensor<B, 2>,
        metric_of: &[usize],
        text: Tensor<B, 2>,
    ) -> Tensor<B, 2> {
        /// Metrics per product: the challenge's 145 fit in one (342 MB of m @ W for 768-wide
        /// layers); a wide product uses the matrix units better (1000 rows: 1.8 s at 145 per
        /// product, 3.2 s at 32). More metrics go in groups, so memory stays bounded.
        const METRICS_PER_PRODUCT: usize = 160;
        self.forward_shared_metrics_in_groups(metrics, metric_of, text, METRICS_PER_PRODUCT)
    }

    fn forward_shared_metrics_in_groups(
        &self,
        metrics: Tensor<B, 2>,
        metric_of: &[usize],
        text: Tensor<B, 2>,
        metrics_per_product: usize,
    ) -> Tensor<B, 2> {
        let [_, d_text, d_out] = self.dims();
        let device = text.device();
        let k = metrics.dims()[0];
        let mut samples_of = vec![Vec::new(); k];
        for (sample, &g) in metric_of.iter().enumerate() {
            samples_of[g].push(sample);
        }
        let mut parts = Vec::new();
        let mut order = Vec::new();
        for first in (0..k).step_by(metrics_per_product) {
            let last = (first + metrics_per_product).min(k);
            let products = metrics.clone().narrow(0, first, last - first).matmul(self.weight.val());
            // `in_product`: the metric's row in this product.
            for (in_product, rows) in samples_of[first..last].iter_mut().enumerate() {
                let rows = std::mem::take(rows);
                if rows.is_empty() {
                    continue;
                }
                let per_text = products.clone().narrow(0, in_product, 1).reshape([d_text, d_out]);
                parts.push(text.clone().select(0, row_index(&rows, &device)).matmul(per_text));
                order.extend(rows);
            }
        }
        // Back into sample order: position p of the concatenation holds sample order[p].
        let mut inverse = vec![0; order.len()];
        for (position, &sample) in order.iter().enumerate() {
            inverse[sample] = position;
        }
        Tensor::cat(parts, 0).select(0, row_index(&inverse, &device)) + self.bias.val().unsqueeze()
    }

    /// m^T W_k t for every output k, without the bias; `weight` as stored in [`Bilinear`].
    pub fn product(
        weight: Tensor<B, 2>,
        [_, d_text, d_out]: [usize; 3],
        metric: Tensor<B, 2>,
        text: Tensor<B, 2>,
    ) -> Tensor<B, 2> {
        let batch = metric.dims()[0];
        // (batch, d_text, d_out): every text direction's output for this metric.
        let per_text = metric.matmul(weight).reshape([batch, d_text, d_out]);
        // Contract with t: (batch, 1, d_text) @ (batch, d_text, d_out) -> (batch, 1, d_out).
        text.reshape([batch, 1, d_text]).matmul(per_text).reshape([batch, d_out])
    }
}

/// Row numbers as an index tensor for `select`.
fn row_index<B: Backend>(rows: &[usize], device: &B::Device) -> Tensor<B, 1, Int> {
    Tensor::from_data(
        TensorData::new(rows.iter().map(|&r| r as i64).collect::<Vec<_>>(), [rows.len()]),
        device,
    )
}

/// The low-rank factorisation b = P((U m) * (V t)) + bias: rank r instead of d_text x d_out
/// weights per metric dimension, which makes CPU sweeps practical.
#[derive(Module, Debug)]
pub struct LowRankBilinear<B: Backend> {
    pub metric_proj: Linear<B>,
    pub text_proj: Linear<B>,
    pub out_proj: Linear<B>,
}

impl<B: Backend> LowRankBilinear<B> {
    pub fn new(
        d_metric: usize,
        d_text: usize,
        d_out: usize,
        rank: usize,
        device: &B::Device,
    ) -> Self {
        LowRankBilinear {
            metric_proj: LinearConfig::new(d_metric, rank).with_bias(false).init(device),
            text_proj: LinearConfig::new(d_text, rank).with_bias(false).init(device),
            out_proj: LinearConfig::new(rank, d_out).init(device),
        }
    }

    pub fn forward(&self, metric: Tensor<B, 2>, text: Tensor<B, 2>) -> Tensor<B, 2> {
        let interaction = self.metric_proj.forward(metric) * self.text_proj.forward(text);
        self.out_proj.forward(interaction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{cpu_device, initialized, seeded, Cpu};
    use burn::tensor::Distribution;

    #[test]
    fn shared_metric_products_match_the_plain_layer_whatever_the_grouping() {
        let device = cpu_device();
        // Seeded, so that these draws cannot land inside another test's seeded block.
        let (layer, metrics, texts) = seeded::<Cpu, _>(&device, 1, || {
            let uniform = Distribution::Uniform(-1.0, 1.0);
            (
                initialized(Bilinear::<Cpu>::new(5, 4, 3, &device)),
                Tensor::<Cpu, 2>::random([7, 5], uniform, &device),
                Tensor::<Cpu, 2>::random([20, 4], uniform, &device),
            )
        });
        let metric_of: Vec<usize> = (0..20).map(|i| (i * 5 + 3) % 7).collect();
        let index = Tensor::from_data(
            TensorData::new(metric_of.iter().map(|&g| g as i64).collect::<Vec<_>>(), [20]),
            &device,
        );
        let plain = layer
            .forward(metrics.clone().select(0, index), texts.clone())
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert_eq!(plain.len(), 20 * 3, "20 pairs x 3 outputs");
        for group in [1, 2, 3, 7, 160] {
            let shared = layer
                .forward_shared_metrics_in_groups(metrics.clone(), &metric_of, texts.clone(), group)
                .into_data()
                .to_vec::<f32>()
                .unwrap();
            assert_eq!(shared.len(), plain.len(), "{group} metrics per product: output length");
            assert!(
                plain.iter().zip(&shared).all(|(a, b)| (a - b).abs() < 1e-5),
                "{group} metrics per product: {shared:?} vs {plain:?}"
            );
        }
    }
}
