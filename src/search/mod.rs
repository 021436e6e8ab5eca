//! Search and pruning core (issue 12): which config to try next and when to stop one early.
//!
//! An exhaustive grid spends most of its compute on configs that are clearly worse after a
//! few epochs or a couple of folds. This module holds the decisions that avoid that, as pure
//! functions of their inputs (no I/O, no printing, no clock), so a rerun that reads the same
//! history from the store makes the same decisions:
//! - [`space`]: the search space, parsed from `[grid]` (lists and range tables);
//! - [`random`] and [`tpe`]: samplers behind [`Sampler`];
//! - [`prune`]: ASHA over epochs inside a fold, racing over folds, fold-major order;
//! - [`config`]: the `[search]` sweep-file section;
//! - [`importance`]: parameter importance (PED-ANOVA) from completed trials.
//!
//! Objective values are always "lower is better" (RMSE-like); the caller negates a score.

pub mod config;
pub mod importance;
mod parzen;
pub mod prune;
pub mod random;
pub mod space;
pub mod tpe;

use rand::rngs::StdRng;
use rand::SeedableRng;

pub use config::{PruneConfig, RaceRule, SearchConfig, Strategy};
pub use prune::{
    asha_decision, fold_major, forgiving_race, race, rung_epochs, Decision, PruneReason,
};
pub use random::RandomSampler;
pub use space::{Axis, Domain, Point, Space};
pub use tpe::TpeSampler;

/// One trial of the study as the sampler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// The values it ran with, in axis order.
    pub point: Point,
    /// Its objective (lower is better); `None` for a failed trial. For a pruned trial, the
    /// last value it reported (for example its mean over the folds it completed), or `None`.
    pub value: Option<f64>,
    /// Stopped early by a pruner: a result, not a failure.
    pub pruned: bool,
}

/// Why no point could be proposed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SearchError {
    /// Every sampled point failed the validity check (for example, every model/loss pair the
    /// space allows is invalid).
    #[error(
        "no valid point found in {tries} samples: the search space allows almost only \
         invalid combinations (check the model/loss pairs in [grid])"
    )]
    NoValidPoint { tries: usize },
}

/// Proposes the next point of a study.
///
/// Implementations are deterministic: the point is a pure function of the sampler's settings
/// (its seed), `trial_number`, `history` and `running`, so a resumed study proposes the same
/// trial it would have proposed before the interruption.
pub trait Sampler {
    /// The point for trial `trial_number`. `history` holds the finished trials (complete,
    /// pruned or failed) in trial order (TPE fades the oldest once there are more than 25),
    /// `running` the points of trials started but not finished, also in trial order. `valid`
    /// rejects combinations that cannot run (invalid model/loss pairs); a rejected point is
    /// resampled a bounded number of times, then [`SearchError::NoValidPoint`].
    fn propose(
        &self,
        space: &Space,
        history: &[Trial],
        running: &[Point],
        trial_number: u64,
        valid: &dyn Fn(&Point) -> bool,
    ) -> Result<Point, SearchError>;
}

/// Attempts with the sampler's own distribution before falling back to uniform sampling.
const MODEL_TRIES: usize = 64;
/// Uniform attempts after that, before giving up.
const UNIFORM_TRIES: usize = 4096;

/// The random stream of one trial: independent of every other trial's, and the same on every
/// run. (StdRng's algorithm is fixed for a given `rand` version; Cargo.lock pins it.)
pub(crate) fn trial_rng(seed: u64, trial_number: u64) -> StdRng {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&trial_number.to_le_bytes());
    // A tag so these streams never coincide with a plain `seed_from_u64(seed)` elsewhere.
    bytes[16..24].copy_from_slice(b"fs-srch1");
    StdRng::from_seed(bytes)
}

/// Draws with `sample` until `valid` accepts, then falls back to uniform sampling.
pub(crate) fn first_valid(
    space: &Space,
    rng: &mut StdRng,
    valid: &dyn Fn(&Point) -> bool,
    mut sample: impl FnMut(&mut StdRng) -> Point,
) -> Result<Point, SearchError> {
    for _ in 0..MODEL_TRIES {
        let point = sample(rng);
        if valid(&point) {
            return Ok(point);
        }
    }
    for _ in 0..UNIFORM_TRIES {
        let point = random::sample_uniform(space, rng);
        if valid(&point) {
            return Ok(point);
        }
    }
    Err(SearchError::NoValidPoint { tries: MODEL_TRIES + UNIFORM_TRIES })
}

/// One trial of a study as the report shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialPoint {
    /// The trial number (its order in the study).
    pub number: u64,
    /// The values it ran with.
    pub point: Point,
    /// Its objective (lower is better): over all folds for a complete trial, the last value
    /// it reported for a pruned one; `None` for a failed trial or one pruned before any.
    pub value: Option<f64>,
    /// Stopped early by a pruner.
    pub pruned: bool,
}

impl TrialPoint {
    /// Finished with a usable objective: not pruned and a finite value.
    pub fn is_complete(&self) -> bool {
        !self.pruned && self.value.is_some_and(f64::is_finite)
    }

    /// Pruned with a finite last value, so it has a place on a chart.
    pub fn is_pruned_with_value(&self) -> bool {
        self.pruned && self.value.is_some_and(f64::is_finite)
    }
}
