//! The same parity checks in float64, at a tolerance float32 could never meet: proof that
//! the formulas (not just the numbers, within noise) are PyTorch's. Its own binary, so that
//! no float32 test shares the process (see tests/common/parity.rs).

use crate::common::parity::*;
use burn::backend::Autodiff;

type Cpu = burn_ndarray::NdArray<f64>;

#[test]
fn forward_outputs_and_scores_match_pytorch_in_f64() {
    check_forward::<Cpu>(F64);
}

#[test]
fn every_loss_matches_pytorch_in_f64() {
    check_losses::<Cpu>(F64);
}

#[test]
fn gradients_match_pytorch_in_f64() {
    check_gradients::<Autodiff<Cpu>>(F64);
}

#[test]
fn three_adam_steps_match_pytorch_in_f64() {
    check_adam::<Autodiff<Cpu>>(F64, true);
}
