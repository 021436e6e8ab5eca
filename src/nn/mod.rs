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

/// The tensor in f32; unchanged (no graph node) when it already is.
pub fn in_f32<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Tensor<B, D> {
    if tensor.dtype() == DType::F32 {
        tensor
    } else {
        tensor.cast(FloatDType::F32)
    }
}
