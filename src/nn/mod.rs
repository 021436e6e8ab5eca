//! Building blocks that both the text encoder and the pair model need: seeded host-side
//! dropout, the global gradient norm, casting to f32 for reductions, and the vectorised host
//! loops of the CPU training step. They sit below `text` and `model` so neither imports the
//! other for them.

mod dropout;
mod grad_norm;
pub mod kernels;

use burn::tensor::backend::Backend;
use burn::tensor::{DType, FloatDType, Tensor};

pub use dropout::HostDropout;
pub use grad_norm::global_grad_norm;

/// The tensor in at least f32: bf16 and f16 are widened to f32 (reduced-precision training
/// keeps its loss and optimiser state in f32); f32 and f64 are unchanged (no graph node), so
/// a float64 model's loss stays float64.
pub fn in_f32<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Tensor<B, D> {
    match tensor.dtype() {
        DType::BF16 | DType::F16 => tensor.cast(FloatDType::F32),
        _ => tensor,
    }
}
