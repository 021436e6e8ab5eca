//! Ensembles across configs: greedy forward selection with replacement over out-of-fold
//! predictions (Caruana et al. 2004, as auto-sklearn's and AutoGluon's ensemble selection do).
//!
//! Each round adds the config whose addition most lowers the criterion of the averaged
//! ensemble; a config chosen k times of N rounds gets weight k / N. Choosing on the same rows
//! the ensemble is then scored on is optimistic, so [`nested`] also scores it honestly: for each
//! fold, the weights are chosen on the other folds' rows and applied to that fold's rows, and
//! the criterion is computed on those held-out predictions pooled over all folds.
//!
//! An ensemble must never hurt: [`choose`] scores the single best config the same nested way
//! (chosen on the other folds, one round of selection), and the ensemble is exported only when
//! its nested score is lower. Greedy selection fits the rows it is chosen on, the probe rows
//! included, and on few rows a blend can look better than its best member and be worse.

use crate::data::score_bin;
use crate::probe::ProbeConfig;
use crate::sampling::NUM_BINS;

/// How an ensemble (or a config) is scored: a [`crate::results::Criterion`] with what it
/// needs to score rows (for `Shifted`, the probe settings), on real rows and probe rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Scoring {
    /// Pooled RMSE of the real rows.
    Oof,
    /// Mean of the per-score RMSEs of the real rows.
    Macro,
    /// `sqrt((1 - F) * MSE(real) + F * MSE(probes))`.
    Shifted(ProbeConfig),
}

/// The rows every candidate predicted: real out-of-fold rows (with their truth) and probe rows,
/// each with the fold it was held out in.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rows {
    pub truth: Vec<f64>,
    pub real_fold: Vec<usize>,
    pub probe_fold: Vec<usize>,
}

/// One config's predictions, aligned with [`Rows`].
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: String,
    pub real: Vec<f64>,
    pub probes: Vec<f64>,
}

/// Predictions of an ensemble (or a config) on some of the rows.
struct View<'a> {
    truth: &'a [f64],
    real_rows: &'a [usize],
    probe_rows: &'a [usize],
}

impl Scoring {
    /// The criterion of predictions `real` (indexed like `rows.truth`) and `probes`, over the
    /// rows listed in `view`.
    fn score(&self, view: &View, real: &[f64], probes: &[f64]) -> f64 {
        let squared = |i: usize| (real[i].clamp(0.0, 10.0) - view.truth[i]).powi(2);
        let mean = |sum: f64, n: usize| sum / n.max(1) as f64;
        let real_mse = mean(view.real_rows.iter().map(|&i| squared(i)).sum(), view.real_rows.len());
        match self {
            Scoring::Oof => real_mse.sqrt(),
            Scoring::Macro => {
                let mut sums = [0.0; NUM_BINS];
                let mut counts = [0usize; NUM_BINS];
                for &i in view.real_rows {
                    let bin = score_bin(view.truth[i] as f32);
                    sums[bin] += squared(i);
                    counts[bin] += 1;
                }
                let filled: Vec<f64> = (0..NUM_BINS)
                    .filter(|&b| counts[b] > 0)
                    .map(|b| mean(sums[b], counts[b]).sqrt())
                    .collect();
                mean(filled.iter().sum(), filled.len())
            }
            Scoring::Shifted(probe) => {
                let probe_mse = probe.mse(view.probe_rows.iter().map(|&i| probes[i]));
                probe.shifted_rmse(real_mse, probe_mse)
            }
        }
    }
}

/// A chosen ensemble: how often each candidate (by index) was picked in `rounds` rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub picks: Vec<usize>,
    pub rounds: usize,
}

impl Selection {
    /// (candidate index, weight) of every candidate picked at least once, heaviest first.
    pub fn weights(&self) -> Vec<(usize, f64)> {
        let mut weights: Vec<(usize, f64)> = self
            .picks
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(i, &n)| (i, n as f64 / self.rounds as f64))
            .collect();
        weights.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        weights
    }

    /// The weighted average of per-candidate values (one vector per candidate).
    pub fn blend(&self, values: &[&[f64]]) -> Vec<f64> {
        let len = values.first().map_or(0, |v| v.len());
        let mut out = vec![0.0; len];
        for (i, weight) in self.weights() {
            for (o, v) in out.iter_mut().zip(values[i]) {
                *o += weight * v;
            }
        }
        out
    }
}

/// Greedy forward selection with replacement on the rows of the given folds (all folds when
/// `folds` is None). Ties go to the candidate listed first.
fn select_on(
    candidates: &[Candidate],
    rows: &Rows,
    criterion: &Scoring,
    rounds: usize,
    folds: Option<&dyn Fn(usize) -> bool>,
) -> Selection {
    let keep = |fold: usize| folds.is_none_or(|f| f(fold));
    let real_rows: Vec<usize> =
        (0..rows.truth.len()).filter(|&i| keep(rows.real_fold[i])).collect();
    let probe_rows: Vec<usize> =
        (0..rows.probe_fold.len()).filter(|&i| keep(rows.probe_fold[i])).collect();
    let view = View { truth: &rows.truth, real_rows: &real_rows, probe_rows: &probe_rows };
    let mut picks = vec![0usize; candidates.len()];
    let mut real_sum = vec![0.0; rows.truth.len()];
    let mut probe_sum = vec![0.0; rows.probe_fold.len()];
    for round in 1..=rounds {
        let mut best: Option<(usize, f64)> = None;
        for (c, candidate) in candidates.iter().enumerate() {
            let avg = |sum: &[f64], add: &[f64]| -> Vec<f64> {
                sum.iter().zip(add).map(|(s, a)| (s + a) / round as f64).collect()
            };
            let value = criterion.score(
                &view,
                &avg(&real_sum, &candidate.real),
                &avg(&probe_sum, &candidate.probes),
            );
            if best.is_none_or(|(_, b)| value < b) {
                best = Some((c, value));
            }
        }
        let Some((chosen, _)) = best else { break };
        picks[chosen] += 1;
        add(&mut real_sum, &candidates[chosen].real);
        add(&mut probe_sum, &candidates[chosen].probes);
    }
    Selection { picks, rounds }
}

fn add(sum: &mut [f64], values: &[f64]) {
    sum.iter_mut().zip(values).for_each(|(s, v)| *s += v);
}

/// The ensemble chosen on every row, and its (optimistic) score on those same rows.
pub fn select(
    candidates: &[Candidate],
    rows: &Rows,
    criterion: &Scoring,
    rounds: usize,
) -> (Selection, f64) {
    let selection = select_on(candidates, rows, criterion, rounds, None);
    let score = score_all(candidates, rows, criterion, |_| &selection);
    (selection, score)
}

/// The honest score: fold k's rows predicted by the ensemble chosen on the other folds' rows,
/// pooled over all folds, then scored.
pub fn nested(candidates: &[Candidate], rows: &Rows, criterion: &Scoring, rounds: usize) -> f64 {
    let folds = rows.real_fold.iter().chain(&rows.probe_fold).max().map_or(0, |&k| k + 1);
    let per_fold: Vec<Selection> = (0..folds)
        .map(|k| select_on(candidates, rows, criterion, rounds, Some(&|fold| fold != k)))
        .collect();
    score_all(candidates, rows, criterion, |fold| &per_fold[fold])
}

/// What to export: the ensemble or the single best config, by the nested score of each.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// The ensemble chosen on every row.
    pub ensemble: Selection,
    /// The single best config chosen on every row (one pick).
    pub single: Selection,
    /// The ensemble's in-sample score (optimistic).
    pub in_sample: f64,
    /// The ensemble's nested score.
    pub ensemble_nested: f64,
    /// The single best config's nested score (the best config chosen on the other folds).
    pub single_nested: f64,
    /// Whether the ensemble's nested score is the lower: it is the one to export.
    pub ensemble_wins: bool,
}

impl Choice {
    /// What to export.
    pub fn exported(&self) -> &Selection {
        if self.ensemble_wins {
            &self.ensemble
        } else {
            &self.single
        }
    }
}

/// The ensemble of `rounds` rounds when its nested score is lower than the single best
/// config's, else that config (ties go to the single config: simpler, and no worse).
pub fn choose(candidates: &[Candidate], rows: &Rows, criterion: &Scoring, rounds: usize) -> Choice {
    let (ensemble, in_sample) = select(candidates, rows, criterion, rounds);
    let ensemble_nested = nested(candidates, rows, criterion, rounds);
    let single_nested = nested(candidates, rows, criterion, 1);
    let single = select(candidates, rows, criterion, 1).0;
    let ensemble_wins = ensemble_nested < single_nested;
    Choice { ensemble, single, in_sample, ensemble_nested, single_nested, ensemble_wins }
}

/// Scores predictions made row by row by the selection of the row's fold.
fn score_all<'a>(
    candidates: &[Candidate],
    rows: &Rows,
    criterion: &Scoring,
    selection_for: impl Fn(usize) -> &'a Selection,
) -> f64 {
    let blend_row = |selection: &Selection, values: &dyn Fn(&Candidate) -> f64| -> f64 {
        selection.weights().iter().map(|&(c, w)| w * values(&candidates[c])).sum()
    };
    let real: Vec<f64> = (0..rows.truth.len())
        .map(|i| blend_row(selection_for(rows.real_fold[i]), &|c| c.real[i]))
        .collect();
    let probes: Vec<f64> = (0..rows.probe_fold.len())
        .map(|i| blend_row(selection_for(rows.probe_fold[i]), &|c| c.probes[i]))
        .collect();
    let real_rows: Vec<usize> = (0..rows.truth.len()).collect();
    let probe_rows: Vec<usize> = (0..rows.probe_fold.len()).collect();
    criterion.score(
        &View { truth: &rows.truth, real_rows: &real_rows, probe_rows: &probe_rows },
        &real,
        &probes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe() -> ProbeConfig {
        ProbeConfig { fraction: 0.5, score_min: 0, score_max: 2, ratio: 1.0, seed: 0 }
    }

    /// 40 real rows (truth 9 or 10) and 40 probe rows in 4 folds.
    fn rows() -> Rows {
        Rows {
            truth: (0..40).map(|i| if i % 3 == 0 { 9.0 } else { 10.0 }).collect(),
            real_fold: (0..40).map(|i| i % 4).collect(),
            probe_fold: (0..40).map(|i| i % 4).collect(),
        }
    }

    fn candidate(id: &str, real: impl Fn(usize) -> f64, probe: impl Fn(usize) -> f64) -> Candidate {
        Candidate {
            id: id.into(),
            real: (0..40).map(real).collect(),
            probes: (0..40).map(probe).collect(),
        }
    }

    #[test]
    fn the_best_single_config_is_picked_first_and_a_blend_can_beat_it() {
        let rows = rows();
        let truth = rows.truth.clone();
        // `blind` is exact on real rows but too high on probes; `aware` is 1 off on real rows
        // and right on probes. Under the shifted criterion a blend beats both.
        let blind = candidate("blind", |i| truth[i], |_| 2.5);
        let aware = candidate("aware", |i| truth[i] - 1.0, |_| 1.0);
        let cands = [blind, aware];
        let oof = select(&cands, &rows, &Scoring::Oof, 5);
        assert_eq!(oof.0.weights(), vec![(0, 1.0)], "oof only sees real rows");
        assert!(oof.1 < 1e-12);
        let (shifted, score) = select(&cands, &rows, &Scoring::Shifted(probe()), 10);
        let weights = shifted.weights();
        assert_eq!(weights[0].0, 1, "the shift-aware config weighs most");
        assert_eq!(weights.len(), 2, "and the blend uses both: {weights:?}");
        let single =
            |c: &Candidate| select(std::slice::from_ref(c), &rows, &Scoring::Shifted(probe()), 1).1;
        assert!(score < single(&cands[0]) && score < single(&cands[1]));
    }

    #[test]
    fn nested_score_is_never_better_than_the_in_sample_score() {
        let rows = rows();
        let truth = rows.truth.clone();
        // Noisy candidates: each fits some rows by luck, which in-sample selection exploits.
        let noise = |seed: usize, i: usize| {
            (((i * 7919 + seed * 104_729) % 997) as f64 / 997.0 - 0.5) * 3.0
        };
        let cands: Vec<Candidate> = (0..8)
            .map(|s| {
                candidate(&format!("c{s}"), |i| truth[i] + noise(s, i), |i| 3.0 + noise(s + 50, i))
            })
            .collect();
        for criterion in [Scoring::Oof, Scoring::Macro, Scoring::Shifted(probe())] {
            let (_, in_sample) = select(&cands, &rows, &criterion, 15);
            let honest = nested(&cands, &rows, &criterion, 15);
            assert!(honest >= in_sample, "{criterion:?}: nested {honest} < in-sample {in_sample}");
        }
    }

    #[test]
    fn the_single_best_config_is_exported_when_the_ensemble_scores_worse_nested() {
        // Two folds of 10 rows. `steady` is 0.5 too high everywhere. `fits_0` is 0.5 too low
        // on fold 0 and 3 too high on fold 1; `fits_1` the other way round. Chosen on fold 0,
        // the blend of steady and fits_0 is exact there, and 1.75 off on fold 1; the single
        // best (steady, listed first on a tie) is 0.5 off wherever it is applied.
        let rows = Rows {
            truth: vec![5.0; 20],
            real_fold: (0..20).map(|i| i / 10).collect(),
            probe_fold: vec![],
        };
        let off = |fold_0: f64, fold_1: f64| -> Vec<f64> {
            (0..20).map(|i| 5.0 + if i < 10 { fold_0 } else { fold_1 }).collect()
        };
        let candidate =
            |id: &str, real: Vec<f64>| Candidate { id: id.into(), real, probes: vec![] };
        let cands = [
            candidate("steady", off(0.5, 0.5)),
            candidate("fits_0", off(-0.5, 3.0)),
            candidate("fits_1", off(3.0, -0.5)),
        ];
        let choice = choose(&cands, &rows, &Scoring::Oof, 10);
        assert!((choice.single_nested - 0.5).abs() < 1e-12, "{choice:?}");
        assert!(choice.ensemble_nested > 1.0, "the blend overfits each fold: {choice:?}");
        assert!(!choice.ensemble_wins, "{choice:?}");
        assert_eq!(choice.exported().weights(), vec![(0, 1.0)], "the single best: steady");

        // Where blending truly helps (errors that cancel on every fold), the ensemble stays.
        let cands = [candidate("high", off(0.5, 0.5)), candidate("low", off(-0.5, -0.5))];
        let choice = choose(&cands, &rows, &Scoring::Oof, 10);
        assert!(choice.ensemble_wins && choice.ensemble_nested < 1e-12, "{choice:?}");
        assert_eq!(choice.exported().weights().len(), 2);
    }

    #[test]
    fn blend_is_the_weighted_average() {
        let selection = Selection { picks: vec![3, 0, 1], rounds: 4 };
        assert_eq!(selection.weights(), vec![(0, 0.75), (2, 0.25)]);
        let blended = selection.blend(&[&[4.0, 8.0], &[100.0, 100.0], &[0.0, 4.0]]);
        assert_eq!(blended, vec![3.0, 7.0]);
    }
}

/// What `export --ensemble` did.
#[derive(Debug, Clone, PartialEq)]
pub struct EnsembleExport {
    /// The ensemble's (config id, label, weight), heaviest first.
    pub picks: Vec<(String, String, f64)>,
    /// The single best config's (id, label).
    pub single: (String, String),
    /// The criterion on the rows the weights were chosen on (optimistic).
    pub in_sample: f64,
    /// Weights chosen on the other folds' rows, scored on each fold's own (honest).
    pub nested: f64,
    /// The single best config, chosen and scored the same nested way.
    pub single_nested: f64,
    /// Whether the ensemble was exported; else the single best config.
    pub ensemble: bool,
    pub export: super::export::ExportReport,
}

/// Greedy ensemble selection over the sweep's complete configs, by `criterion`, and its
/// weighted average of their stored test predictions written as a submission.
pub fn export_ensemble(
    store: &crate::store::Store,
    summaries: &[crate::results::ConfigSummary],
    criterion: crate::results::Criterion,
    rounds: usize,
    out: &std::path::Path,
    round: bool,
) -> anyhow::Result<EnsembleExport> {
    use crate::error::InputError;
    let complete: Vec<&crate::results::ConfigSummary> = summaries
        .iter()
        .filter(|s| !s.retired && s.diverged == 0 && s.folds_done == s.folds_total)
        .collect();
    if complete.is_empty() || rounds == 0 {
        return Err(InputError::new("no complete config to ensemble (or zero rounds)")
            .field("ensemble")
            .into());
    }
    let (rows, candidates) = candidates(store, &complete)?;
    let criterion = match criterion {
        crate::results::Criterion::Oof => Scoring::Oof,
        crate::results::Criterion::Macro => Scoring::Macro,
        crate::results::Criterion::Shifted => {
            Scoring::Shifted(complete[0].probe.clone().ok_or_else(|| {
                InputError::new("shifted RMSE needs [validation] probe in the sweep").field("by")
            })?)
        }
    };
    let choice = choose(&candidates, &rows, &criterion, rounds);
    let selection = choice.exported();
    let mut tests = Vec::with_capacity(complete.len());
    for summary in &complete {
        let request = super::export::ExportRequest {
            config_id: summary.id.clone(),
            test: None,
            test_embeddings: None,
            out: out.to_path_buf(),
            round,
            allow_partial: false,
        };
        tests.push(super::export::fold_mean(store, &request)?.0);
    }
    let blended = selection.blend(&tests.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let scores = super::export::finish(&blended, round);
    super::export::write_submission(out, &scores, round)?;
    let picks = choice
        .ensemble
        .weights()
        .into_iter()
        .map(|(i, w)| (complete[i].id.clone(), complete[i].label.clone(), w))
        .collect();
    let (best, _) = choice.single.weights()[0];
    let single = (complete[best].id.clone(), complete[best].label.clone());
    let folds = complete[0].folds_total;
    let export = super::export::report(&scores, folds, super::export::Source::Stored);
    Ok(EnsembleExport {
        picks,
        single,
        in_sample: choice.in_sample,
        nested: choice.ensemble_nested,
        single_nested: choice.single_nested,
        ensemble: choice.ensemble_wins,
        export,
    })
}

/// What identifies the rows a config predicted: its records, and its probes' (fold, record,
/// metric row).
type RowKeys = (Vec<usize>, Vec<(usize, usize, usize)>);

/// The rows and every config's predictions of them, checked to be the same rows.
fn candidates(
    store: &crate::store::Store,
    configs: &[&crate::results::ConfigSummary],
) -> anyhow::Result<(Rows, Vec<Candidate>)> {
    let mut rows: Option<Rows> = None;
    let mut keys: Option<RowKeys> = None;
    let mut out = Vec::with_capacity(configs.len());
    for summary in configs {
        let oof = store.oof_rows(&summary.id)?;
        let probes = store.probe_rows(&summary.id)?;
        let these = (
            oof.iter().map(|r| r.record).collect::<Vec<_>>(),
            probes.iter().map(|p| (p.fold, p.record, p.metric_row)).collect::<Vec<_>>(),
        );
        match &keys {
            Some(first) if *first != these => anyhow::bail!(
                "config {} was evaluated on other rows than {} (other folds or probes): \
                 ensembles need configs of one fold assignment",
                summary.id,
                configs[0].id
            ),
            Some(_) => {}
            None => keys = Some(these),
        }
        rows.get_or_insert_with(|| Rows {
            truth: oof.iter().map(|r| r.truth).collect(),
            real_fold: oof.iter().map(|r| r.fold).collect(),
            probe_fold: probes.iter().map(|p| p.fold).collect(),
        });
        out.push(Candidate {
            id: summary.id.clone(),
            real: oof.iter().map(|r| r.prediction).collect(),
            probes: probes.iter().map(|p| p.prediction).collect(),
        });
    }
    Ok((rows.unwrap_or_default(), out))
}
