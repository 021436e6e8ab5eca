//! The L2 norm of all of a module's gradients together, as torch's `clip_grad_norm_` measures
//! it (burn's own clipping works per tensor). Both the pair model's optimiser and the
//! encoder's fine-tuning clip by it.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};

use super::in_f32;

/// The L2 norm of all gradients together.
pub fn global_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &GradientsParams,
) -> f64 {
    struct SumOfSquares<'a> {
        grads: &'a GradientsParams,
        total: f64,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for SumOfSquares<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(grad) = self.grads.get::<B::InnerBackend, D>(param.id) {
                self.total += in_f32(grad).powi_scalar(2).sum().into_scalar().elem::<f64>();
            }
        }
    }
    let mut visitor = SumOfSquares { grads, total: 0.0 };
    module.visit(&mut visitor);
    visitor.total.sqrt()
}
