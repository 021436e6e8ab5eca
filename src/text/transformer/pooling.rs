//! sentence-transformers' Pooling and Normalize modules, on burn tensors (so that
//! fine-tuning differentiates through them).

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::config::PoolingConfig;

/// What sentence-transformers writes over padded tokens before taking the max.
const MAX_POOL_FILL: f32 = -1e9;

/// One vector per row from the last hidden state (batch, tokens, hidden) and the attention
/// mask (batch, tokens): the switched-on modes concatenated in sentence-transformers' order.
/// Special tokens count as tokens; padding does not.
pub fn pool<B: Backend>(
    hidden: Tensor<B, 3>,
    mask: Tensor<B, 2>,
    config: &PoolingConfig,
) -> Tensor<B, 2> {
    let [rows, tokens, width] = hidden.dims();
    let mask3 = mask.clone().reshape([rows, tokens, 1]);
    let mut parts = Vec::new();
    if config.cls {
        parts.push(hidden.clone().slice([0..rows, 0..1, 0..width]).reshape([rows, width]));
    }
    if config.max {
        let filled =
            hidden.clone() * mask3.clone() + (mask3.clone().sub_scalar(1.0) * -MAX_POOL_FILL);
        parts.push(filled.max_dim(1).reshape([rows, width]));
    }
    if config.mean || config.mean_sqrt_len {
        let sum = (hidden * mask3).sum_dim(1).reshape([rows, width]);
        let count = mask.sum_dim(1).clamp_min(1e-9);
        if config.mean {
            parts.push(sum.clone() / count.clone());
        }
        if config.mean_sqrt_len {
            parts.push(sum / count.sqrt());
        }
    }
    Tensor::cat(parts, 1)
}

/// Rows divided by their L2 norm, as torch's `F.normalize` (norm clamped at 1e-12).
pub fn l2_normalize<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}
