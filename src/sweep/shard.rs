//! Splitting a sweep across machines: `--shard I/N` runs a deterministic, balanced slice of
//! the jobs into its own database, and `merge` combines the shard databases afterwards.
//!
//! No shared database, no shared locks: SQLite files on network filesystems are not safe.

use crate::error::{InputError, InputResult};

/// Shard I of N (1-based: `--shard 1/4` .. `--shard 4/4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// `I/N` with 1 <= I <= N; errors name the concept, and the CLI the flag (`--shard`).
impl std::str::FromStr for Shard {
    type Err = InputError;

    fn from_str(text: &str) -> InputResult<Shard> {
        let err =
            || InputError::new(format!("expected I/N with 1 <= I <= N, e.g. 2/8; got {text:?}"));
        let (i, n) = text.split_once('/').ok_or_else(err)?;
        let (index, count) = (
            i.trim().parse::<usize>().map_err(|_| err())?,
            n.trim().parse::<usize>().map_err(|_| err())?,
        );
        if count == 0 || index == 0 || index > count {
            return Err(err());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// The jobs of this shard among all jobs of a sweep. Jobs are ordered by (config id, fold),
    /// which every machine computes the same way, and dealt round-robin, so the shards' sizes
    /// differ by at most one and every job is in exactly one shard.
    pub fn select<'a>(&self, jobs: &'a [(String, usize)]) -> Vec<&'a (String, usize)> {
        let mut sorted: Vec<&(String, usize)> = jobs.iter().collect();
        sorted.sort();
        sorted
            .into_iter()
            .enumerate()
            .filter(|(rank, _)| rank % self.count == self.index - 1)
            .map(|(_, job)| job)
            .collect()
    }

    pub fn contains(&self, jobs: &[(String, usize)], job: &(String, usize)) -> bool {
        self.select(jobs).contains(&job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs(configs: usize, folds: usize) -> Vec<(String, usize)> {
        (0..configs)
            .flat_map(|c| (0..folds).map(move |f| (format!("{:012x}", c * 7919 % 1000), f)))
            .collect()
    }

    #[test]
    fn every_job_is_in_exactly_one_shard_and_shards_are_balanced() {
        for total_configs in [1, 3, 9, 45] {
            let all = jobs(total_configs, 5);
            for n in 1..=7 {
                let shards: Vec<Vec<&(String, usize)>> =
                    (1..=n).map(|i| Shard { index: i, count: n }.select(&all)).collect();
                for job in &all {
                    assert_eq!(
                        shards.iter().filter(|s| s.contains(&job)).count(),
                        1,
                        "n={n} job={job:?}"
                    );
                }
                let sizes: Vec<usize> = shards.iter().map(Vec::len).collect();
                assert_eq!(sizes.iter().sum::<usize>(), all.len());
                assert!(
                    sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
                    "n={n}: {sizes:?}"
                );
            }
        }
    }

    #[test]
    fn selection_does_not_depend_on_input_order() {
        let mut all = jobs(9, 5);
        let a = Shard { index: 2, count: 4 }.select(&all).into_iter().cloned().collect::<Vec<_>>();
        all.reverse();
        let b = Shard { index: 2, count: 4 }.select(&all).into_iter().cloned().collect::<Vec<_>>();
        assert_eq!(a, b);
    }

    #[test]
    fn parse_rejects_nonsense() {
        assert_eq!("2/8".parse::<Shard>().unwrap(), Shard { index: 2, count: 8 });
        for bad in ["0/4", "5/4", "1/0", "x/2", "3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
