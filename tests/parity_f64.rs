//! The same parity checks in float64, at a tolerance float32 could never meet (1e-10
//! relative, compared in f64, every tensor's dtype checked): proof that the formulas, not just
//! the numbers within noise, are PyTorch's.
//!
//! They must run in a process of their own: burn 0.21 keeps per-device dtype settings, and
//! after an f32 run in the same process an ndarray "f64" run returned f32-rounded results.
//! The integration tests are one binary, so the bodies below are ignored tests that
//! `float64_parity_runs_in_a_process_of_its_own` runs in a child process of this binary (as
//! reduced_precision.rs does for bf16).

use crate::common::parity::*;

/// Set in the child process that runs the float64 bodies.
const IN_CHILD: &str = "FOLDSWEEP_F64_CHILD";
/// The test-name filter that selects exactly the bodies.
const BODIES: &str = "parity_f64::in_child::";

/// Regression (issue 22): the float64 tier shared its process with the float32 one once the
/// tests became one binary, and compared after a cast to f32 at 1e-6, so f32-rounded results
/// passed.
#[test]
fn float64_parity_runs_in_a_process_of_its_own() {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([BODIES, "--include-ignored", "--test-threads", "1"])
        .env(IN_CHILD, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the float64 child process failed:\n{text}");
    assert!(text.contains("4 passed;"), "the four float64 bodies did not all run:\n{text}");
}

/// Only in the child process started above: ignored otherwise.
mod in_child {
    use super::*;
    use burn::backend::Autodiff;

    type Cpu = burn_ndarray::NdArray<f64>;

    fn assert_in_child() {
        assert!(std::env::var_os(IN_CHILD).is_some(), "only in a process without float32 runs");
    }

    #[test]
    #[ignore = "run by float64_parity_runs_in_a_process_of_its_own in a child process"]
    fn forward_outputs_and_scores_match_pytorch_in_f64() {
        assert_in_child();
        check_forward::<Cpu>(F64);
    }

    #[test]
    #[ignore = "run by float64_parity_runs_in_a_process_of_its_own in a child process"]
    fn every_loss_matches_pytorch_in_f64() {
        assert_in_child();
        check_losses::<Cpu>(F64);
    }

    #[test]
    #[ignore = "run by float64_parity_runs_in_a_process_of_its_own in a child process"]
    fn gradients_match_pytorch_in_f64() {
        assert_in_child();
        check_gradients::<Autodiff<Cpu>>(F64);
    }

    #[test]
    #[ignore = "run by float64_parity_runs_in_a_process_of_its_own in a child process"]
    fn three_adam_steps_match_pytorch_in_f64() {
        assert_in_child();
        check_adam::<Autodiff<Cpu>>(F64, true);
    }
}
