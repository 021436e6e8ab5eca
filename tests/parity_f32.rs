//! PyTorch parity of the production path: float32 on the CPU backend (burn's flex).

use crate::common::parity::*;
use burn::backend::Autodiff;

use foldsweep::backend::Cpu;

#[test]
fn forward_outputs_and_scores_match_pytorch() {
    check_forward::<Cpu>(F32);
}

#[test]
fn every_loss_matches_pytorch_weighted_and_unweighted() {
    check_losses::<Cpu>(F32);
}

#[test]
fn gradients_match_pytorch() {
    check_gradients::<Autodiff<Cpu>>(F32);
}

#[test]
fn three_adam_steps_with_global_clipping_match_pytorch() {
    check_adam::<Autodiff<Cpu>>(F32, true);
}

#[test]
fn three_adam_steps_of_the_fused_host_path_match_pytorch() {
    check_adam::<Autodiff<Cpu>>(F32, false);
}

#[test]
fn plateau_schedule_matches_pytorch() {
    check_plateau();
}

#[test]
fn sample_weights_match_pytorch() {
    check_sample_weights();
}
