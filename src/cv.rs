//! Stratified k-fold assignment on the integer score.
//!
//! Each score bin is shuffled (seeded) and dealt round-robin over the folds, continuing
//! where the previous bin stopped, so every fold holds floor or ceil of (bin count / k)
//! records of every bin and the fold sizes differ by at most one.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use sha2::{Digest, Sha256};

/// Which validation fold each record belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldAssignment {
    pub folds: usize,
    /// `fold_of[i]` is the validation fold of record i.
    pub fold_of: Vec<usize>,
}

impl FoldAssignment {
    pub fn stratified(bins: &[usize], folds: usize, seed: u64) -> FoldAssignment {
        assert!(folds >= 2, "need at least two folds");
        let mut rng = StdRng::seed_from_u64(seed);
        let max_bin = bins.iter().copied().max().unwrap_or(0);
        let mut fold_of = vec![0; bins.len()];
        let mut next_fold = 0;
        for bin in 0..=max_bin {
            let mut members: Vec<usize> = (0..bins.len()).filter(|&i| bins[i] == bin).collect();
            members.shuffle(&mut rng);
            for record in members {
                fold_of[record] = next_fold;
                next_fold = (next_fold + 1) % folds;
            }
        }
        FoldAssignment { folds, fold_of }
    }

    /// Record indices used for training and for validation in fold `k`.
    pub fn split(&self, k: usize) -> (Vec<usize>, Vec<usize>) {
        (0..self.fold_of.len()).partition(|&i| self.fold_of[i] != k)
    }

    /// A short fingerprint of the assignment: two results with the same hash were
    /// validated on exactly the same records.
    pub fn hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update((self.folds as u64).to_le_bytes());
        for &fold in &self.fold_of {
            hasher.update((fold as u32).to_le_bytes());
        }
        crate::util::hex16(&hasher.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_is_validated_exactly_once() {
        let bins: Vec<usize> = (0..103).map(|i| (i * 7) % 11).collect();
        let folds = FoldAssignment::stratified(&bins, 5, 1);
        let mut seen = vec![0; bins.len()];
        for k in 0..5 {
            let (train, val) = folds.split(k);
            assert_eq!(train.len() + val.len(), bins.len());
            val.iter().for_each(|&i| seen[i] += 1);
        }
        assert!(seen.iter().all(|&n| n == 1));
    }
}
