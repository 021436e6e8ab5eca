//! Dropout whose mask is drawn on the host with a fast generator, for CPU training (the pair
//! model and the text encoder's fine-tuning).
//!
//! burn's `Dropout` draws every mask element through its generic distribution sampler
//! (a Bernoulli in f64 per element) and then multiplies twice (mask, then 1/keep): a quarter
//! of a low-rank CPU step. Here one bulk fill of random u32s becomes a mask already holding 0 or
//! 1/keep, applied by one multiplication. On other backends (CUDA) burn's dropout runs as it
//! is: the mask is drawn on the device there and a host mask would have to be uploaded.

use std::any::TypeId;
use std::sync::{Arc, Mutex};

use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::backend::CpuTrain;

/// Dropout with probability `prob`: on CPU training a host mask, elsewhere burn's op.
#[derive(Debug, Clone)]
pub struct HostDropout {
    prob: f64,
    burn: Dropout,
    /// Shared by clones of the model: one stream of masks per training run.
    rng: Option<Arc<Mutex<StdRng>>>,
}

impl HostDropout {
    /// The generator is seeded from the backend's generator (which `B::seed` fixes), so a
    /// run's masks depend on its seed alone.
    pub fn new<B: Backend>(prob: f64, device: &B::Device) -> Self {
        let burn = DropoutConfig::new(prob).init();
        let rng = (is_cpu_training::<B>() && prob > 0.0)
            .then(|| Arc::new(Mutex::new(StdRng::seed_from_u64(seed_from_backend::<B>(device)))));
        HostDropout { prob, burn, rng }
    }

    /// The same dropout with its own generator seeded by `seed` (on CPU training; elsewhere
    /// unchanged). Independent of the backend's shared generator, which concurrent runs in one
    /// process would otherwise race on.
    pub fn reseeded(&self, seed: u64) -> Self {
        let rng = self.rng.as_ref().map(|_| Arc::new(Mutex::new(StdRng::seed_from_u64(seed))));
        HostDropout { prob: self.prob, burn: self.burn.clone(), rng }
    }

    /// Active only on an autodiff backend (training), as burn's dropout.
    pub fn forward<B: Backend, const D: usize>(&self, input: Tensor<B, D>) -> Tensor<B, D> {
        let device = input.device();
        let Some(rng) =
            self.rng.as_ref().filter(|_| B::ad_enabled(&device) && is_cpu_training::<B>())
        else {
            return self.burn.forward(input);
        };
        let keep = 1.0 - self.prob;
        // u < keep * 2^32 happens with probability keep.
        let threshold = (keep * 4_294_967_296.0).min(u32::MAX as f64) as u32;
        let scale = (1.0 / keep) as f32;
        let dims = input.dims();
        let mut bits = vec![0u32; dims.iter().product()];
        rng.lock().expect("dropout generator").fill(&mut bits[..]);
        let mask: Vec<f32> =
            bits.iter().map(|&u| if u < threshold { scale } else { 0.0 }).collect();
        input * Tensor::from_data(TensorData::new(mask, dims), &device)
    }
}

fn is_cpu_training<B: Backend>() -> bool {
    TypeId::of::<B>() == TypeId::of::<CpuTrain>()
}

/// 64 bits from the backend's seeded generator.
fn seed_from_backend<B: Backend>(device: &B::Device) -> u64 {
    let draws = Tensor::<B, 1>::random([4], Distribution::Uniform(0.0, 65536.0), device)
        .into_data()
        .convert::<f32>();
    draws.iter::<f32>().fold(0u64, |seed, v| (seed << 16) | (v as u64 & 0xffff))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{cpu_device, seeded, Cpu};

    fn mask_of(dropout: &HostDropout, rows: usize, cols: usize) -> (Vec<f32>, Vec<f32>) {
        let device = cpu_device();
        let input = Tensor::<CpuTrain, 2>::ones([rows, cols], &device).require_grad();
        let output = dropout.forward(input.clone());
        let grads = output.clone().sum().backward();
        let grad = input.grad(&grads).expect("input gradient").into_data().to_vec::<f32>().unwrap();
        (output.into_data().to_vec::<f32>().unwrap(), grad)
    }

    #[test]
    fn drops_the_given_fraction_scales_the_rest_and_passes_the_mask_to_the_gradient() {
        let device = cpu_device();
        let dropout =
            seeded::<CpuTrain, _>(&device, 3, || HostDropout::new::<CpuTrain>(0.4, &device));
        let (values, grad) = mask_of(&dropout, 64, 512);
        let dropped = values.iter().filter(|&&v| v == 0.0).count() as f64 / values.len() as f64;
        assert!((dropped - 0.4).abs() < 0.01, "dropped fraction {dropped}");
        assert!(
            values.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.6).abs() < 1e-6),
            "kept values are scaled by 1/keep"
        );
        assert_eq!(values, grad, "the gradient of sum(dropout(x)) is the mask");
    }

    #[test]
    fn masks_follow_the_backend_seed_and_change_from_call_to_call() {
        let device = cpu_device();
        let masks = |seed| {
            // Seeded under the lock: other tests of this binary draw from the same generator.
            let dropout =
                seeded::<CpuTrain, _>(&device, seed, || HostDropout::new::<CpuTrain>(0.5, &device));
            (mask_of(&dropout, 8, 16).0, mask_of(&dropout, 8, 16).0)
        };
        let (first, second) = masks(11);
        assert_ne!(first, second, "each call draws a new mask");
        assert_eq!(masks(11), (first.clone(), second), "same seed, same masks");
        assert_ne!(masks(12).0, first, "another seed, other masks");
    }

    #[test]
    fn inference_and_zero_probability_leave_the_input_alone() {
        let device = cpu_device();
        let input = Tensor::<Cpu, 2>::ones([4, 8], &device);
        let out = HostDropout::new::<Cpu>(0.5, &device).forward(input.clone());
        assert_eq!(out.into_data(), input.into_data());
        let train_input = Tensor::<CpuTrain, 2>::ones([4, 8], &device);
        let out = HostDropout::new::<CpuTrain>(0.0, &device).forward(train_input.clone());
        assert_eq!(out.into_data(), train_input.into_data());
    }
}
