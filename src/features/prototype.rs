//! One level of prototypes (metrics or families): per group, the sum and count of its training
//! texts, and the statistics of any text against them.
//!
//! Every statistic comes from three numbers per (text, group): the dot product of the text
//! with the group's *sum* of texts, the squared norm of that sum and the count. Leaving the
//! text itself out of its own group is then closed-form (subtract it from the sum), so
//! leave-one-out costs nothing beyond the one pass over the groups. Sums and dots are f64: the
//! subtraction cancels most of the sum when a group has two or three texts.

use rayon::prelude::*;

use super::TextSet;
use crate::data::Matrix;

/// Statistic columns per level, in output order (see the module docs of `features`).
pub const STAT_NAMES: [&str; 7] =
    ["has_prototype", "own_cosine", "best_other_cosine", "margin", "own_rank", "own_l2", "own_dot"];

/// Prototypes of one grouping of the metric table (group = metric row, or family index).
#[derive(Debug, Clone)]
pub struct PrototypeSet {
    dim: usize,
    /// Row-major `groups x dim`: the sum of each group's training texts.
    sums: Vec<f64>,
    counts: Vec<usize>,
    sum_norms2: Vec<f64>,
    /// Text row -> the group it was added to, for the fitted matrix's rows.
    member_of: Vec<Option<usize>>,
}

/// A text's statistics against the prototypes, as paired with one group.
#[derive(Debug, Clone, PartialEq)]
pub struct RowStats {
    pub has_prototype: bool,
    pub own_cosine: f64,
    pub best_other_cosine: f64,
    pub margin: f64,
    /// 1 = the own prototype is the closest by cosine; 0 without an own prototype.
    pub own_rank: usize,
    pub own_l2: f64,
    pub own_dot: f64,
    /// Cosine to every group's prototype (0 where a group has none); empty unless asked for.
    pub cosines: Vec<f64>,
}

/// One group as a given text sees it: count, dot of the text with the sum, squared norm of
/// the sum, after leaving the text out where it is a member.
#[derive(Debug, Clone, Copy)]
struct GroupView {
    count: f64,
    dot_sum: f64,
    sum_norm2: f64,
}

impl GroupView {
    fn cosine(&self, text_norm2: f64) -> f64 {
        if text_norm2 <= 0.0 || self.sum_norm2 <= 0.0 {
            return 0.0; // a zero vector has no direction
        }
        // cos(x, sum / n) = cos(x, sum): the count cancels.
        (self.dot_sum / (text_norm2.sqrt() * self.sum_norm2.sqrt())).clamp(-1.0, 1.0)
    }

    fn dot_mean(&self) -> f64 {
        self.dot_sum / self.count
    }

    fn l2(&self, text_norm2: f64) -> f64 {
        let mean_norm2 = self.sum_norm2 / (self.count * self.count);
        (text_norm2 - 2.0 * self.dot_mean() + mean_norm2).max(0.0).sqrt()
    }
}

impl PrototypeSet {
    /// Sums the texts of `members` (distinct text rows, each with its group) per group.
    pub fn fit(texts: &Matrix, members: &[(usize, usize)], groups: usize) -> PrototypeSet {
        let dim = texts.cols;
        let mut sums = vec![0.0f64; groups * dim];
        let mut counts = vec![0usize; groups];
        let mut member_of = vec![None; texts.rows];
        for &(text_row, group) in members {
            debug_assert!(member_of[text_row].is_none(), "text row {text_row} added twice");
            member_of[text_row] = Some(group);
            counts[group] += 1;
            let sum = &mut sums[group * dim..(group + 1) * dim];
            for (s, &x) in sum.iter_mut().zip(texts.row(text_row)) {
                *s += x as f64;
            }
        }
        let sum_norms2 = sums.chunks(dim.max(1)).map(|s| s.iter().map(|v| v * v).sum()).collect();
        let sum_norms2 = if dim == 0 { vec![0.0; groups] } else { sum_norms2 };
        PrototypeSet { dim, sums, counts, sum_norms2, member_of }
    }

    pub fn groups(&self) -> usize {
        self.counts.len()
    }

    /// Training texts in `group`.
    pub fn count(&self, group: usize) -> usize {
        self.counts[group]
    }

    /// The prototype of `group` (the mean of its training texts), if it has any.
    pub fn mean(&self, group: usize) -> Option<Vec<f32>> {
        let n = self.counts[group];
        (n > 0).then(|| {
            let sum = &self.sums[group * self.dim..(group + 1) * self.dim];
            sum.iter().map(|s| (s / n as f64) as f32).collect()
        })
    }

    /// Statistics of each `(text_row, group)` pair. With [`TextSet::Training`], `texts` must be
    /// the matrix the set was fitted on, and a member text sees its group without itself.
    pub fn row_stats(
        &self,
        texts: &Matrix,
        pairs: &[(usize, usize)],
        text_set: TextSet,
        all_cosines: bool,
    ) -> Vec<RowStats> {
        assert_eq!(texts.cols, self.dim, "texts and prototypes differ in width");
        // Dots against every group once per distinct text: synthetic negatives and probe rows
        // reuse the texts of real rows.
        let mut slot = vec![usize::MAX; texts.rows];
        let mut distinct = Vec::new();
        for &(text_row, _) in pairs {
            if slot[text_row] == usize::MAX {
                slot[text_row] = distinct.len();
                distinct.push(text_row);
            }
        }
        let dots: Vec<(f64, Vec<f64>)> =
            distinct.par_iter().map(|&row| self.dots(texts.row(row))).collect();
        pairs
            .iter()
            .map(|&(text_row, group)| {
                let left_out = match text_set {
                    TextSet::Training => self.member_of.get(text_row).copied().flatten(),
                    TextSet::Unseen => None,
                };
                let (text_norm2, dot_sums) = &dots[slot[text_row]];
                self.stats(*text_norm2, dot_sums, group, left_out, all_cosines)
            })
            .collect()
    }

    /// The text's squared norm and its dot with every group's sum.
    fn dots(&self, text: &[f32]) -> (f64, Vec<f64>) {
        let x: Vec<f64> = text.iter().map(|&v| v as f64).collect();
        let norm2 = x.iter().map(|v| v * v).sum();
        let dots = self.sums.chunks(self.dim.max(1)).map(|sum| dot(&x, sum)).collect();
        (norm2, if self.dim == 0 { vec![0.0; self.groups()] } else { dots })
    }

    fn view(
        &self,
        group: usize,
        dot_sum: f64,
        text_norm2: f64,
        left_out: Option<usize>,
    ) -> Option<GroupView> {
        let mut view = GroupView {
            count: self.counts[group] as f64,
            dot_sum,
            sum_norm2: self.sum_norms2[group],
        };
        if left_out == Some(group) {
            // |s - x|^2 = |s|^2 - 2 x.s + |x|^2 and x.(s - x) = x.s - |x|^2.
            let before = view.sum_norm2;
            view.sum_norm2 = before - 2.0 * dot_sum + text_norm2;
            view.dot_sum = dot_sum - text_norm2;
            view.count -= 1.0;
            // What is left of the sum after the subtraction is rounding when the remaining
            // texts cancel out (or there are none): treat it as the zero vector.
            if view.sum_norm2 <= 1e-12 * (before + text_norm2) {
                view.sum_norm2 = 0.0;
            }
        }
        (view.count > 0.5).then_some(view)
    }

    fn stats(
        &self,
        text_norm2: f64,
        dot_sums: &[f64],
        own: usize,
        left_out: Option<usize>,
        all_cosines: bool,
    ) -> RowStats {
        let cosines: Vec<Option<f64>> = (0..self.groups())
            .map(|g| self.view(g, dot_sums[g], text_norm2, left_out).map(|v| v.cosine(text_norm2)))
            .collect();
        let best_other = cosines
            .iter()
            .enumerate()
            .filter(|&(g, _)| g != own)
            .filter_map(|(_, c)| *c)
            .fold(None, |best: Option<f64>, c| Some(best.map_or(c, |b| b.max(c))))
            .unwrap_or(0.0);
        let all = if all_cosines {
            cosines.iter().map(|c| c.unwrap_or(0.0)).collect()
        } else {
            Vec::new()
        };
        let Some(view) = self.view(own, dot_sums[own], text_norm2, left_out) else {
            return RowStats {
                has_prototype: false,
                own_cosine: 0.0,
                best_other_cosine: best_other,
                margin: 0.0,
                own_rank: 0,
                own_l2: 0.0,
                own_dot: 0.0,
                cosines: all,
            };
        };
        let own_cosine = view.cosine(text_norm2);
        let closer = cosines
            .iter()
            .enumerate()
            .filter(|&(g, c)| g != own && c.is_some_and(|c| c > own_cosine))
            .count();
        RowStats {
            has_prototype: true,
            own_cosine,
            best_other_cosine: best_other,
            margin: own_cosine - best_other,
            own_rank: 1 + closer,
            own_l2: view.l2(text_norm2),
            own_dot: view.dot_mean(),
            cosines: all,
        }
    }
}

impl RowStats {
    /// Appends this row's columns in [`STAT_NAMES`] order, then the cosines if asked for.
    pub fn push_columns(&self, out: &mut Vec<f32>, all_cosines: bool) {
        out.extend([
            if self.has_prototype { 1.0 } else { 0.0 },
            self.own_cosine as f32,
            self.best_other_cosine as f32,
            self.margin as f32,
            self.own_rank as f32,
            self.own_l2 as f32,
            self.own_dot as f32,
        ]);
        if all_cosines {
            out.extend(self.cosines.iter().map(|&c| c as f32));
        }
    }
}

/// Dot product with four accumulators, so the loop vectorises.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (a4, b4) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = a4.remainder().iter().zip(b4.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a4.zip(b4) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f64>() + tail
}
