//! The interval every config number must lie in, and the check that names the first one
//! outside its interval.

use crate::error::{InputError, InputResult};

/// Largest layer or feature width, batch size or rank a config may ask for: far above any real
/// use, far below a size whose allocation aborts the process.
pub const MAX_WIDTH: f64 = 1_048_576.0;
/// Largest epoch, step or patience count.
pub const MAX_COUNT: f64 = 1e9;

/// An interval a config number must lie in; NaN and infinities never do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub min: f64,
    pub max: f64,
    pub min_open: bool,
    pub max_open: bool,
}

impl Range {
    /// (0, inf): learning rates, scales.
    pub const POSITIVE: Range =
        Range { min: 0.0, max: f64::INFINITY, min_open: true, max_open: true };
    /// [0, inf): weights, decays, norms.
    pub const NON_NEGATIVE: Range =
        Range { min: 0.0, max: f64::INFINITY, min_open: false, max_open: true };
    /// [0, 1): dropout, warm-up fraction.
    pub const FRACTION: Range = Range { min: 0.0, max: 1.0, min_open: false, max_open: true };

    pub const fn closed(min: f64, max: f64) -> Range {
        Range { min, max, min_open: false, max_open: false }
    }

    pub const fn open(min: f64, max: f64) -> Range {
        Range { min, max, min_open: true, max_open: true }
    }

    pub fn contains(&self, value: f64) -> bool {
        let above = if self.min_open { value > self.min } else { value >= self.min };
        let below = if self.max_open { value < self.max } else { value <= self.max };
        value.is_finite() && above && below
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (open, close) =
            (if self.min_open { '(' } else { '[' }, if self.max_open { ')' } else { ']' });
        write!(f, "{open}{}, {}{close}", self.min, self.max)
    }
}

/// The first (key, value, range) whose value is not a finite number inside its range.
pub fn check_numbers(numbers: &[(&str, f64, Range)]) -> InputResult<()> {
    match numbers.iter().find(|(_, value, range)| !range.contains(*value)) {
        Some((key, value, range)) => {
            Err(InputError::new(format!("must be a finite number in {range}; got {value}"))
                .field(*key))
        }
        None => Ok(()),
    }
}
