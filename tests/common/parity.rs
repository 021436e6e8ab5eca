//! Checks of the report's models, losses, optimiser and schedules against PyTorch's own
//! numbers (`tests/fixtures/parity/parity.json`, made by make_parity.py in float64),
//! generic over the float type. `parity_f32.rs` and `parity_f64.rs` run them.
//!
//! float32 runs on the production CPU backend (flex); float64 on burn-ndarray, because flex
//! computes in float32. float64 runs in a process of its own (`parity_f64.rs` starts a child
//! process of the test binary): burn 0.21 keeps per-device dtype settings, and with an f32 run
//! earlier in the same process an ndarray "f64" run returned f32-rounded results. Every
//! compared tensor's dtype is checked against the tier's, and the values are compared in f64.
#![allow(dead_code)]

use super::{assert_close_tol, fixture, flatten, values};
use burn::module::{ModuleMapper, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::DType;
use burn::tensor::{Int, Tensor, TensorData};
use foldsweep::config::{LossKind, ModelKind, WeightingConfig};
use foldsweep::model::import::{from_state_dict, to_state_dict, StateDict, TorchTensor};
use foldsweep::model::loss::{mean_logvar, per_sample_loss, weighted_loss};
use foldsweep::model::{predict_score, LossSettings, ModelSpec, Targets};
use foldsweep::sampling::bin_weights;
use foldsweep::train::optim::{Adam, AdamSettings};
use foldsweep::train::schedule::ReduceLrOnPlateau;
use serde_json::Value;

const MODELS: [&str; 3] = ["standard", "ordinal", "heteroscedastic"];

/// A precision tier: the dtype every computed tensor must have, and the relative and absolute
/// tolerance of the comparison with PyTorch's float64 numbers.
#[derive(Clone, Copy)]
pub struct Tol {
    pub dtype: DType,
    pub rel: f64,
    pub abs: f64,
}

/// The production path (float32) against the float64 reference, as the fixture README says.
pub const F32: Tol = Tol { dtype: DType::F32, rel: 1e-4, abs: 1e-5 };
/// The same code in float64, compared in float64: a float32 computation misses this by
/// orders of magnitude (its rounding alone is 6e-8 relative), so passing proves float64.
pub const F64: Tol = Tol { dtype: DType::F64, rel: 1e-10, abs: 1e-12 };

impl Tol {
    /// burn 0.21's `sigmoid` computes in f32 on every backend (burn-backend's default
    /// `ActivationOps::sigmoid` casts to F32 and back), so a value that goes through it (the
    /// ordinal model's score) is f32-rounded even in float64: the float32 tolerance for it.
    fn through_burn_sigmoid(self) -> Tol {
        Tol { dtype: self.dtype, rel: self.rel.max(1e-6), abs: self.abs.max(1e-7) }
    }
}

/// Every element within `tol`, compared in f64; lengths first (a zip would stop early).
fn assert_close(what: &str, tol: Tol, actual: &[f64], expected: &[f64]) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    assert!(!expected.is_empty(), "{what}: nothing to compare");
    let worst = actual
        .iter()
        .zip(expected)
        .map(|(a, e)| (a - e).abs() / e.abs().max(tol.abs / tol.rel))
        .fold(0.0, f64::max);
    eprintln!("{what}: largest relative difference {worst:.1e} (allowed {:.0e})", tol.rel);
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let diff = (a - e).abs();
        assert!(
            diff <= tol.abs.max(tol.rel * e.abs()),
            "{what}[{i}]: got {a:e}, expected {e:e} (diff {diff:.3e}, allowed rel {:e} abs {:e})",
            tol.rel,
            tol.abs
        );
    }
}

/// float32 host numbers (weights, learning rates) at the float32 tier.
fn assert_close_f32(what: &str, actual: &[f32], expected: &[f64]) {
    assert_close_tol(what, actual, expected, F32.rel, F32.abs)
}

fn parity() -> Value {
    serde_json::from_slice(&std::fs::read(fixture("parity/parity.json")).expect("parity.json"))
        .expect("valid JSON")
}

fn kind(name: &str) -> ModelKind {
    serde_json::from_value(Value::String(name.into())).unwrap()
}

fn loss_kind(name: &str) -> LossKind {
    serde_json::from_value(Value::String(name.into())).unwrap()
}

fn spec(p: &Value, model: &str) -> ModelSpec {
    let dims = &p["dims"];
    let n = |k: &str| dims[k].as_u64().unwrap() as usize;
    ModelSpec {
        kind: kind(model),
        d_metric: n("d_metric"),
        d_text: n("d_text"),
        d_bilinear: n("d_bilinear"),
        bilinear_rank: 0,
        hidden_dims: values(&dims["hidden"]).iter().map(|&v| v as usize).collect(),
        dropout: 0.0,
    }
}

fn state_dict(params: &Value) -> StateDict {
    params
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| {
            let (shape, v) = flatten(value);
            (name.clone(), TorchTensor { shape, values: v })
        })
        .collect()
}

fn matrix<B: Backend>(value: &Value, device: &B::Device) -> Tensor<B, 2> {
    let (shape, v) = flatten(value);
    Tensor::from_data(TensorData::new(v, [shape[0], shape[1]]).convert::<B::FloatElem>(), device)
}

struct Inputs<B: Backend> {
    metric: Tensor<B, 2>,
    text: Tensor<B, 2>,
    targets: Targets<B>,
    weights: Tensor<B, 1>,
}

fn inputs<B: Backend>(p: &Value, device: &B::Device) -> Inputs<B> {
    let i = &p["inputs"];
    let target = values(&i["target"]);
    let n = target.len();
    let score = target.clone();
    let class: Vec<i64> = target.iter().map(|&t| t as i64).collect();
    let weight = values(&i["weight"]);
    Inputs {
        metric: matrix(&i["metric"], device),
        text: matrix(&i["text"], device),
        targets: Targets {
            score: Tensor::from_data(TensorData::new(score, [n]).convert::<B::FloatElem>(), device),
            class: Tensor::<B, 1, Int>::from_data(TensorData::new(class, [n]), device),
        },
        weights: Tensor::from_data(TensorData::new(weight, [n]).convert::<B::FloatElem>(), device),
    }
}

/// The tensor's values in f64, after checking that it was computed in the tier's dtype.
fn to_vec<B: Backend, const D: usize>(tol: Tol, t: Tensor<B, D>) -> Vec<f64> {
    assert_eq!(t.dtype(), tol.dtype, "computed in the wrong float type");
    t.into_data().convert::<f64>().into_vec().unwrap()
}

/// The model's parameters are in the tier's dtype (checked on its output head).
fn assert_model_dtype<B: Backend>(tol: Tol, model: &foldsweep::model::PairModel<B>) {
    assert_eq!(model.head.weight.val().dtype(), tol.dtype, "parameters in the wrong float type");
}

fn assert_state_dict(what: &str, tol: Tol, actual: &StateDict, expected: &Value) {
    let expected = expected.as_object().unwrap();
    assert_eq!(actual.len(), expected.len(), "{what}: parameter count");
    for (name, value) in expected {
        let (shape, v) = flatten(value);
        let got = actual.get(name).unwrap_or_else(|| panic!("{what}: missing {name}"));
        assert_eq!(got.shape, shape, "{what}: shape of {name}");
        assert_close(&format!("{what} {name}"), tol, &got.values, &v);
    }
}

pub fn check_forward<Cpu: Backend>(tol: Tol) {
    let p = parity();
    let device = Default::default();
    for name in MODELS {
        let m = &p["models"][name];
        let spec = spec(&p, name);
        let model = from_state_dict::<Cpu>(&spec, &state_dict(&m["params"]), &device).unwrap();
        assert_model_dtype(tol, &model);
        let x = inputs::<Cpu>(&p, &device);
        let output = model.forward(x.metric, x.text);
        if spec.kind == ModelKind::Heteroscedastic {
            let (mean, logvar) = mean_logvar(output.clone());
            assert_close(
                &format!("{name} mean"),
                tol,
                &to_vec(tol, mean),
                &values(&m["outputs"]["mean"]),
            );
            assert_close(
                &format!("{name} logvar"),
                tol,
                &to_vec(tol, logvar),
                &values(&m["outputs"]["logvar"]),
            );
        } else {
            assert_close(
                &format!("{name} logits"),
                tol,
                &to_vec(tol, output.clone()),
                &values(&m["outputs"]["logits"]),
            );
        }
        let score_tol =
            if spec.kind == ModelKind::Ordinal { tol.through_burn_sigmoid() } else { tol };
        assert_close(
            &format!("{name} score"),
            score_tol,
            &to_vec(tol, predict_score(spec.kind, output)),
            &values(&m["score"]),
        );
    }
}

pub fn check_losses<Cpu: Backend>(tol: Tol) {
    let p = parity();
    let device = Default::default();
    let mut checked = 0;
    for name in MODELS {
        let m = &p["models"][name];
        let spec = spec(&p, name);
        let model = from_state_dict::<Cpu>(&spec, &state_dict(&m["params"]), &device).unwrap();
        for (loss_name, expected) in m["losses"].as_object().unwrap() {
            let x = inputs::<Cpu>(&p, &device);
            let settings = LossSettings::report(loss_kind(loss_name));
            let output = model.forward(x.metric, x.text);
            let unweighted = per_sample_loss(&settings, output.clone(), &x.targets).mean();
            let weighted = weighted_loss(&settings, output, &x.targets, x.weights);
            assert_close(
                &format!("{loss_name} unweighted"),
                tol,
                &to_vec(tol, unweighted),
                &[expected["unweighted"].as_f64().unwrap()],
            );
            assert_close(
                &format!("{loss_name} weighted"),
                tol,
                &to_vec(tol, weighted),
                &[expected["weighted"].as_f64().unwrap()],
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 5, "all five losses are in the fixture");
}

/// Replaces every parameter by its gradient, so gradients can be read in PyTorch's layout.
struct ParamsToGrads<'a, AB: AutodiffBackend> {
    grads: &'a AB::Gradients,
}

impl<AB: AutodiffBackend> ModuleMapper<AB> for ParamsToGrads<'_, AB> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<AB, D>>) -> Param<Tensor<AB, D>> {
        let (id, tensor, mapper) = param.consume();
        let grad = tensor.grad(self.grads).expect("every parameter gets a gradient");
        Param::from_mapped_value(id, Tensor::from_inner(grad), mapper)
    }
}

pub fn check_gradients<CpuTrain: AutodiffBackend>(tol: Tol) {
    use burn::module::Module;
    let p = parity();
    let device = Default::default();
    for name in MODELS {
        let m = &p["models"][name];
        let spec = spec(&p, name);
        let model = from_state_dict::<CpuTrain>(&spec, &state_dict(&m["params"]), &device).unwrap();
        assert_model_dtype(tol, &model);
        let x = inputs::<CpuTrain>(&p, &device);
        let settings = LossSettings::report(loss_kind(m["grads"]["loss"].as_str().unwrap()));
        let loss = weighted_loss(&settings, model.forward(x.metric, x.text), &x.targets, x.weights);
        assert_eq!(loss.dtype(), tol.dtype, "{name}: the loss's float type");
        let grads = loss.backward();
        let grad_model = model.map(&mut ParamsToGrads::<CpuTrain> { grads: &grads });
        assert_model_dtype(tol, &grad_model);
        assert_state_dict(
            &format!("{name} gradient"),
            tol,
            &to_state_dict(&spec, &grad_model),
            &m["grads"]["values"],
        );
    }
}

pub fn check_adam<CpuTrain: AutodiffBackend>(tol: Tol, tensor_ops: bool) {
    let p = parity();
    let device = Default::default();
    for name in MODELS {
        let m = &p["models"][name];
        let a = &m["adam"];
        let spec = spec(&p, name);
        let mut model =
            from_state_dict::<CpuTrain>(&spec, &state_dict(&m["params"]), &device).unwrap();
        let settings = LossSettings::report(loss_kind(a["loss"].as_str().unwrap()));
        let clip = a["clip_norm"].as_f64();
        let mut adam = Adam::<CpuTrain>::new(AdamSettings::torch_default(
            a["weight_decay"].as_f64().unwrap(),
            clip,
        ))
        .with_tensor_ops(tensor_ops);
        let mut norms = Vec::new();
        for _ in 0..a["steps"].as_u64().unwrap() {
            let x = inputs::<CpuTrain>(&p, &device);
            let loss =
                weighted_loss(&settings, model.forward(x.metric, x.text), &x.targets, x.weights);
            assert_eq!(loss.dtype(), tol.dtype, "{name}: the loss's float type");
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let (next, norm) = adam.step(a["lr"].as_f64().unwrap(), model, grads);
            model = next;
            norms.push(norm);
        }
        assert_model_dtype(tol, &model);
        assert_close(
            &format!("{name} grad norms"),
            tol,
            &norms,
            &values(&a["grad_norms_before_clip"]),
        );
        assert_state_dict(
            &format!("{name} after Adam"),
            tol,
            &to_state_dict(&spec, &model),
            &a["params_after"],
        );
    }
}

pub fn check_plateau() {
    let p = parity();
    let s = &p["plateau"];
    let f = |k: &str| s[k].as_f64().unwrap();
    let mut plateau = ReduceLrOnPlateau::new(
        f("lr0"),
        f("factor"),
        s["patience"].as_u64().unwrap() as usize,
        f("threshold_rel"),
        f("min_lr"),
    );
    let lrs: Vec<f32> = values(&s["val_rmse"]).iter().map(|&v| plateau.step(v) as f32).collect();
    assert_close_f32("learning rates", &lrs, &values(&s["lr_after_each_step"]));
}

pub fn check_sample_weights() {
    let p = parity();
    let w = &p["sample_weights"];
    let counts: Vec<usize> = values(&w["counts_per_score"]).iter().map(|&c| c as usize).collect();
    let counts: [usize; 11] = counts.try_into().unwrap();
    let cases = w["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let config = WeightingConfig {
            temperature: case["temperature"].as_f64().unwrap(),
            min_weight: case["min_weight"].as_f64().unwrap(),
            max_weight: case["max_weight"].as_f64().unwrap(),
            boost_high_scores: case["boost_high_scores"].as_bool().unwrap(),
        };
        let weights: Vec<f32> = bin_weights(&counts, &config).iter().map(|&w| w as f32).collect();
        assert_close_f32(&format!("weights {config:?}"), &weights, &values(&case["weights"]));
    }
}
