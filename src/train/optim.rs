//! Adam exactly as torch.optim.Adam runs it (L2 weight decay added to the gradient,
//! eps 1e-8), after clipping all gradients together to a global L2 norm as
//! torch.nn.utils.clip_grad_norm_ does.
//!
//! burn's own Adam differs on both counts (eps 1e-5 and per-tensor clipping), and the
//! parity fixtures hold PyTorch's numbers, so foldsweep carries its own.

use std::collections::HashMap;

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamSettings {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Global gradient norm limit; `None` leaves gradients as they are.
    pub clip_norm: Option<f64>,
}

impl AdamSettings {
    pub fn torch_default(weight_decay: f64, clip_norm: Option<f64>) -> Self {
        AdamSettings { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay, clip_norm }
    }
}

/// First and second moments of one parameter, flattened.
struct Moments<B: Backend> {
    first: Tensor<B, 1>,
    second: Tensor<B, 1>,
}

pub struct Adam<B: AutodiffBackend> {
    settings: AdamSettings,
    steps: i32,
    moments: HashMap<ParamId, Moments<B::InnerBackend>>,
}

impl<B: AutodiffBackend> Adam<B> {
    pub fn new(settings: AdamSettings) -> Self {
        Adam { settings, steps: 0, moments: HashMap::new() }
    }

    /// One update. Returns the new module and the gradients' global norm before clipping.
    pub fn step<M: AutodiffModule<B>>(&mut self, lr: f64, module: M, mut grads: GradientsParams) -> (M, f64) {
        let norm = global_grad_norm::<B, M>(&module, &grads);
        let scale = match self.settings.clip_norm {
            // PyTorch: coef = max_norm / (norm + 1e-6), applied only when below 1.
            Some(max_norm) => (max_norm / (norm + 1e-6)).min(1.0),
            None => 1.0,
        };
        self.steps += 1;
        let mut mapper = AdamMapper { adam: self, grads: &mut grads, lr, scale };
        (module.map(&mut mapper), norm)
    }

    fn update<const D: usize>(
        &mut self,
        id: ParamId,
        value: Tensor<B::InnerBackend, D>,
        grad: Tensor<B::InnerBackend, D>,
        lr: f64,
        scale: f64,
    ) -> Tensor<B::InnerBackend, D> {
        let AdamSettings { beta1, beta2, eps, weight_decay, .. } = self.settings;
        let shape = value.shape();
        let flat_value = value.reshape([shape.num_elements()]);
        let mut grad = grad.reshape([shape.num_elements()]);
        if scale != 1.0 {
            grad = grad * scale;
        }
        if weight_decay != 0.0 {
            grad = grad + flat_value.clone() * weight_decay;
        }
        let (first, second) = match self.moments.remove(&id) {
            Some(m) => (
                m.first * beta1 + grad.clone() * (1.0 - beta1),
                m.second * beta2 + grad.powi_scalar(2) * (1.0 - beta2),
            ),
            None => (grad.clone() * (1.0 - beta1), grad.powi_scalar(2) * (1.0 - beta2)),
        };
        let bias1 = 1.0 - beta1.powi(self.steps);
        let bias2 = 1.0 - beta2.powi(self.steps);
        let denom = (second.clone().sqrt() / bias2.sqrt()).add_scalar(eps);
        let updated = flat_value - first.clone() / denom * (lr / bias1);
        self.moments.insert(id, Moments { first, second });
        updated.reshape(shape)
    }
}

struct AdamMapper<'a, B: AutodiffBackend> {
    adam: &'a mut Adam<B>,
    grads: &'a mut GradientsParams,
    lr: f64,
    scale: f64,
}

impl<B: AutodiffBackend> ModuleMapper<B> for AdamMapper<'_, B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<B::InnerBackend, D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let require_grad = tensor.is_require_grad();
        let updated = self.adam.update(id, tensor.inner(), grad, self.lr, self.scale);
        let mut tensor = Tensor::from_inner(updated);
        if require_grad {
            tensor = tensor.require_grad();
        }
        Param::from_mapped_value(id, tensor, mapper)
    }
}

/// The L2 norm of all gradients together.
pub fn global_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(module: &M, grads: &GradientsParams) -> f64 {
    struct SumOfSquares<'a> {
        grads: &'a GradientsParams,
        total: f64,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for SumOfSquares<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(grad) = self.grads.get::<B::InnerBackend, D>(param.id) {
                self.total += grad.powi_scalar(2).sum().into_scalar().elem::<f64>();
            }
        }
    }
    let mut visitor = SumOfSquares { grads, total: 0.0 };
    module.visit(&mut visitor);
    visitor.total.sqrt()
}
