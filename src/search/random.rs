//! Random search: every axis drawn independently and uniformly (log-uniformly for `log`
//! axes), ignoring the history. Also TPE's start-up sampler and the last-resort sampler when
//! a model-based proposal keeps failing the validity check.

use rand::rngs::StdRng;
use rand::Rng;

use super::space::{Domain, Point, Space};
use super::{first_valid, trial_rng, Sampler, SearchError, Trial};

/// Uniform random search with a fixed seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomSampler {
    pub seed: u64,
}

impl Sampler for RandomSampler {
    fn propose(
        &self,
        space: &Space,
        _history: &[Trial],
        _running: &[Point],
        trial_number: u64,
        valid: &dyn Fn(&Point) -> bool,
    ) -> Result<Point, SearchError> {
        let mut rng = trial_rng(self.seed, trial_number);
        first_valid(space, &mut rng, valid, |rng| sample_uniform(space, rng))
    }
}

/// One uniform draw of the whole space.
pub(crate) fn sample_uniform(space: &Space, rng: &mut StdRng) -> Point {
    let coordinates: Vec<f64> = space.axes.iter().map(|a| sample_axis(&a.domain, rng)).collect();
    space.point_from_internal(&coordinates)
}

/// A uniform internal coordinate of one axis: uniform on the internal line (so log-uniform
/// for log axes), a uniform integer or a uniform choice index.
pub(crate) fn sample_axis(domain: &Domain, rng: &mut StdRng) -> f64 {
    match domain {
        Domain::Categorical(choices) => rng.random_range(0..choices.len()) as f64,
        Domain::Int { min, max, log: false } => rng.random_range(*min..=*max) as f64,
        // Floats, and log integers (uniform on the log line, rounded by `from_internal`).
        _ => {
            let (low, high) = domain.kernel_line().expect("numeric axis");
            rng.random_range(low..high)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::search::space::Axis;
    use toml::Value;

    pub(crate) fn mixed_space() -> Space {
        let axis = |key: &str, domain| Axis { key: key.into(), domain };
        Space::new(vec![
            axis("lr", Domain::Float { min: 1e-4, max: 3e-3, log: true }),
            axis("dropout", Domain::Float { min: 0.0, max: 0.5, log: false }),
            axis("width", Domain::Int { min: 8, max: 64, log: true }),
            axis("depth", Domain::Int { min: 1, max: 3, log: false }),
            axis(
                "model",
                Domain::Categorical(vec![
                    Value::String("mlp".into()),
                    Value::String("bilinear".into()),
                ]),
            ),
        ])
        .unwrap()
    }

    #[test]
    fn same_inputs_same_point_and_trials_differ() {
        let space = mixed_space();
        let sampler = RandomSampler { seed: 7 };
        let propose = |n| sampler.propose(&space, &[], &[], n, &|_| true).unwrap();
        assert_eq!(propose(3), propose(3));
        assert_ne!(propose(3), propose(4));
        let other = RandomSampler { seed: 8 }.propose(&space, &[], &[], 3, &|_| true).unwrap();
        assert_ne!(propose(3), other);
    }

    #[test]
    fn proposals_stay_in_bounds_and_cover_the_log_scale() {
        let space = mixed_space();
        let sampler = RandomSampler { seed: 1 };
        let mut below_geometric_mean = 0;
        let mut depths = [0; 3];
        for n in 0..2000 {
            let point = sampler.propose(&space, &[], &[], n, &|_| true).unwrap();
            for (axis, (key, value)) in space.axes.iter().zip(&point) {
                assert_eq!(&axis.key, key);
                assert!(axis.domain.to_internal(value).is_some(), "{key} = {value} outside");
            }
            let lr = point[0].1.as_float().unwrap();
            below_geometric_mean += usize::from(lr < (1e-4f64 * 3e-3).sqrt());
            assert!(point[2].1.as_integer().is_some() && point[3].1.as_integer().is_some());
            depths[point[3].1.as_integer().unwrap() as usize - 1] += 1;
        }
        // Log-uniform: half the draws below the geometric mean (uniform would give ~3%).
        assert!((850..1150).contains(&below_geometric_mean), "{below_geometric_mean}");
        // Uniform integers: both ends are reachable, as often as the middle.
        assert!(depths.iter().all(|&d| (550..780).contains(&d)), "{depths:?}");
    }

    #[test]
    fn invalid_points_are_never_proposed_and_impossible_spaces_are_an_error() {
        let space = mixed_space();
        let sampler = RandomSampler { seed: 3 };
        let no_bilinear = |p: &Point| p[4].1.as_str() != Some("bilinear");
        for n in 0..200 {
            let point = sampler.propose(&space, &[], &[], n, &no_bilinear).unwrap();
            assert_eq!(point[4].1.as_str(), Some("mlp"));
        }
        let error = sampler.propose(&space, &[], &[], 0, &|_| false).unwrap_err();
        assert!(matches!(error, SearchError::NoValidPoint { .. }));
    }
}
