//! Backend selection. CPU (ndarray) is always there; CUDA comes with the `cuda` feature.

use burn::backend::Autodiff;

/// The CPU backend: burn's ndarray, with multi-threaded matrix products.
pub type Cpu = burn_ndarray::NdArray<f32>;
/// CPU with automatic differentiation, for training.
pub type CpuTrain = Autodiff<Cpu>;

pub fn cpu_device() -> burn_ndarray::NdArrayDevice {
    burn_ndarray::NdArrayDevice::Cpu
}
