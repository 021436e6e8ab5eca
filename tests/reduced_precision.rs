//! Reduced-precision training (`precision = "bf16"` on a GPU), emulated on the CPU: burn 0.21
//! lets a device's default float dtype be set, and with BF16 flex creates every float tensor
//! (parameters, batches, constants) in bf16 as the bf16 CUDA backend does. The training step
//! is then the GPU's: tensor-op Adam, loss in f32. The dtype setting holds for the device for
//! the rest of the process, so the test body runs in a child process of this test binary
//! (every other test shares the f32 device).

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::set_default_float_dtype;
use burn::tensor::{DType, FloatDType, Tensor};
use foldsweep::backend::{cpu_device, Cpu, CpuTrain};
use foldsweep::config::{LossKind, ModelKind};
use foldsweep::data::Matrix;
use foldsweep::model::loss::weighted_loss;
use foldsweep::model::{LossSettings, ModelSpec, PairModel, Targets};
use foldsweep::sampling::Sample;
use foldsweep::train::optim::{Adam, AdamSettings};
use foldsweep::train::{train_epoch, EpochSteps, Features};

/// Every float parameter's dtype and values, in visiting order.
struct Weights(Vec<(DType, Vec<f32>)>);

impl ModuleVisitor<CpuTrain> for Weights {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<CpuTrain, D>>) {
        let value = param.val();
        self.0.push((
            value.dtype(),
            value.cast(FloatDType::F32).into_data().to_vec::<f32>().unwrap(),
        ));
    }
}

fn weights(model: &PairModel<CpuTrain>) -> Vec<(DType, Vec<f32>)> {
    let mut visitor = Weights(Vec::new());
    model.visit(&mut visitor);
    visitor.0
}

fn spec(kind: ModelKind) -> ModelSpec {
    ModelSpec {
        kind,
        d_metric: 8,
        d_text: 8,
        d_bilinear: 4,
        bilinear_rank: 0,
        hidden_dims: vec![16],
        dropout: 0.0,
    }
}

fn data() -> (Matrix, Matrix, Vec<Sample>) {
    let value = |i: usize| ((i * 37 % 101) as f32 / 101.0 - 0.5) * 0.8;
    let metrics = Matrix::new(3, 8, (0..24).map(value).collect());
    let texts = Matrix::new(16, 8, (100..228).map(value).collect());
    let samples = (0..16)
        .map(|i| Sample {
            metric_row: i % 3,
            text_row: i,
            target: (i % 11) as f32,
            weight: 1.0 + (i % 3) as f32 * 0.25,
            record: i,
            synthetic: false,
        })
        .collect();
    (metrics, texts, samples)
}

/// Set in the child process that runs the bf16 body.
const IN_CHILD: &str = "FOLDSWEEP_BF16_CHILD";

#[test]
fn bf16_training_updates_f32_master_weights_and_every_loss_runs() {
    let name = "reduced_precision::bf16_body_in_its_own_process";
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--include-ignored", "--test-threads", "1", "--nocapture"])
        .env(IN_CHILD, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the bf16 child process failed:\n{text}");
    assert!(text.contains("1 passed"), "the bf16 body did not run in the child:\n{text}");
}

/// The bf16 test itself; only in the child process started above (ignored otherwise, so a
/// plain run never switches this process's device to bf16).
#[test]
#[ignore = "run by bf16_training_updates_f32_master_weights_and_every_loss_runs in a child process"]
fn bf16_body_in_its_own_process() {
    assert!(
        std::env::var_os(IN_CHILD).is_some(),
        "only in the child process: it switches the device to bf16"
    );
    let device = cpu_device();
    set_default_float_dtype::<Cpu>(&device, FloatDType::BF16).expect("the first use of the device");
    let (metrics, texts, samples) = data();
    let features = Features { metrics: &metrics, texts: &texts };

    // Every head and loss trains in bf16 (the loss itself in f32) and gives finite losses.
    for (kind, loss) in [
        (ModelKind::Standard, LossKind::CrossEntropy),
        (ModelKind::Standard, LossKind::Hybrid),
        (ModelKind::Standard, LossKind::Focal),
        (ModelKind::Ordinal, LossKind::Ordinal),
        (ModelKind::Heteroscedastic, LossKind::Heteroscedastic),
    ] {
        let model = spec(kind).init::<CpuTrain>(&device);
        assert!(
            weights(&model).iter().all(|(dtype, _)| *dtype == DType::BF16),
            "parameters are created in bf16"
        );
        let mut adam = Adam::<CpuTrain>::new(AdamSettings::torch_default(1e-5, Some(1.0)))
            .with_tensor_ops(true);
        let settings = LossSettings::report(loss);
        let (model, first) =
            train_epoch(model, &mut adam, steps(&settings, 8, 1e-3), features, &samples, &device);
        let (model, _) =
            train_epoch(model, &mut adam, steps(&settings, 8, 1e-3), features, &samples, &device);
        assert!(first.is_finite(), "{loss:?}: loss {first}");
        assert!(
            weights(&model).iter().all(|(dtype, _)| *dtype == DType::BF16),
            "{loss:?}: parameters stay bf16"
        );
    }

    // The loss is computed in f32 from bf16 outputs, targets and weights.
    let output = Tensor::<CpuTrain, 2>::from_floats([[0.5, -1.0], [2.0, 0.25]], &device);
    assert_eq!(output.dtype(), DType::BF16);
    let targets = Targets {
        score: Tensor::from_floats([1.0, 3.0], &device),
        class: Tensor::from_ints([1, 3], &device),
    };
    let loss = weighted_loss(
        &LossSettings::report(LossKind::Heteroscedastic),
        output,
        &targets,
        Tensor::from_floats([1.0, 0.5], &device),
    );
    assert_eq!(loss.dtype(), DType::F32, "the loss is f32");
    // (mean - y)^2 / (exp(logvar) + 1e-6) + logvar, weighted mean: rows (0.5, -1) and (2, 0.25).
    let expected = ((0.25 / ((-1.0f64).exp() + 1e-6) - 1.0) * 1.0
        + (1.0 / (0.25f64.exp() + 1e-6) + 0.25) * 0.5)
        / 2.0;
    let got = loss.into_scalar() as f64;
    assert!((got - expected).abs() < 1e-6, "loss {got}, expected {expected}");

    // Steps of 1e-5 are far below a bf16 weight's resolution (0.002 at 0.25): applied to the
    // bf16 weights they would round away, every one. Accumulated in f32 master weights they
    // add up to whole bf16 steps.
    let model = spec(ModelKind::Heteroscedastic).init::<CpuTrain>(&device);
    let before = weights(&model);
    let mut adam =
        Adam::<CpuTrain>::new(AdamSettings::torch_default(0.0, None)).with_tensor_ops(true);
    let settings = LossSettings::report(LossKind::Heteroscedastic);
    let mut model = model;
    for _ in 0..250 {
        (model, _) =
            train_epoch(model, &mut adam, steps(&settings, 16, 1e-5), features, &samples, &device);
    }
    let after = weights(&model);
    let (mut large, mut moved) = (0, 0);
    for ((_, b), (_, a)) in before.iter().zip(&after) {
        for (x, y) in b.iter().zip(a) {
            if x.abs() > 0.1 {
                large += 1;
                moved += usize::from(x != y);
            }
        }
    }
    assert!(large > 50, "enough weights above 0.1 to judge ({large})");
    assert!(
        moved * 2 > large,
        "only {moved} of {large} weights above 0.1 moved: updates were lost to bf16 rounding"
    );
}

fn steps(loss: &LossSettings, batch_size: usize, lr: f64) -> EpochSteps<'_> {
    EpochSteps { loss, batch_size, lr }
}
