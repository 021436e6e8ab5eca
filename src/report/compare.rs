//! Which differences between configs are real: the Nadeau-Bengio corrected resampled t-test
//! on per-fold RMSE, with Holm's correction across the grid.
//!
//! Folds of k-fold CV share training rows, so a plain paired t-test is far too eager;
//! Nadeau & Bengio (2003) inflate the variance by n_test / n_train:
//!   t = mean(d) / sqrt((1/K + n_test/n_train) var(d)),  K - 1 degrees of freedom.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::error::{InputError, InputResult};
use crate::results::{ConfigSummary, Criterion};

/// The test of one config against the reference on the folds both finished.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub config: String,
    pub label: String,
    /// Folds used (finished by both).
    pub folds: usize,
    /// mean(config RMSE - reference RMSE): positive means worse than the reference.
    pub mean_diff: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub t: f64,
    pub p: f64,
    pub p_holm: f64,
}

/// Corrected resampled t-test on paired per-fold differences.
/// Returns (t, two-sided p, 95% CI of the mean difference); needs at least two folds.
pub fn corrected_t_test(
    diffs: &[f64],
    n_test: f64,
    n_train: f64,
) -> Option<(f64, f64, (f64, f64))> {
    let k = diffs.len();
    if k < 2 {
        return None;
    }
    let mean = diffs.iter().sum::<f64>() / k as f64;
    let var = diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (k as f64 - 1.0);
    let se = ((1.0 / k as f64 + n_test / n_train) * var).sqrt();
    let dist = StudentsT::new(0.0, 1.0, (k - 1) as f64).ok()?;
    let critical = dist.inverse_cdf(0.975);
    if se == 0.0 {
        // Identical differences on every fold: no spread to test against.
        let p = if mean == 0.0 { 1.0 } else { 0.0 };
        let t = if mean == 0.0 { 0.0 } else { f64::INFINITY.copysign(mean) };
        return Some((t, p, (mean, mean)));
    }
    let t = mean / se;
    let p = 2.0 * (1.0 - dist.cdf(t.abs()));
    Some((t, p.clamp(0.0, 1.0), (mean - critical * se, mean + critical * se)))
}

/// Holm's step-down adjustment: p-values in, adjusted p-values out (same order).
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut adjusted = vec![0.0; m];
    let mut running_max: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        running_max = running_max.max(((m - rank) as f64 * p[i]).min(1.0));
        adjusted[i] = running_max;
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrected_t_test_matches_hand_computation() {
        // d = [0.1, 0.2, 0.3, 0.4, 0.5]: mean 0.3, var 0.025; n_test/n_train = 1/4.
        // se = sqrt((1/5 + 1/4) * 0.025) = sqrt(0.01125) = 0.106066; t = 2.828427.
        // Two-sided p for t = 2.828427 with 4 df: 0.047421 (closed-form t CDF for 4 df,
        // F = 1/2 + 3/4 sin θ (1 - sin²θ / 3) with θ = atan(t / 2); numerical integration agrees).
        let (t, p, (lo, hi)) =
            corrected_t_test(&[0.1, 0.2, 0.3, 0.4, 0.5], 1000.0, 4000.0).unwrap();
        assert!((t - 2.828427).abs() < 1e-5, "t = {t}");
        assert!((p - 0.047421).abs() < 1e-5, "p = {p}");
        // t_{0.975, 4} = 2.776445: CI = 0.3 -/+ 2.776445 * 0.106066.
        assert!(
            (lo - (0.3 - 2.776445 * 0.106066)).abs() < 1e-5
                && (hi - (0.3 + 2.776445 * 0.106066)).abs() < 1e-5
        );
    }

    fn summary(id: &str, oof: f64, macro_rmse: f64) -> ConfigSummary {
        ConfigSummary {
            id: id.into(),
            label: String::new(),
            varying: Default::default(),
            folds_done: 5,
            folds_total: 5,
            folds_failed: 0,
            fold_rmse: Vec::new(),
            mean_rmse: Some(oof),
            sd_rmse: None,
            oof_rmse: Some(oof),
            macro_rmse: Some(macro_rmse),
            oof_rounded_rmse: None,
            bin_rmse: Vec::new(),
            bin_count: Vec::new(),
            fold_hash: "h".into(),
            ..Default::default()
        }
    }

    #[test]
    fn compare_by_macro_uses_the_best_config_by_macro_as_reference() {
        // Sorted by pooled OOF RMSE, as `results` shows them: `a` is best by OOF, `b` by macro.
        let rows = [summary("a", 1.0, 3.0), summary("b", 1.5, 2.0), summary("c", 2.0, 2.5)];
        assert_eq!(reference(&rows, None, Criterion::Macro).unwrap().id, "b");
        assert_eq!(reference(&rows, None, Criterion::Oof).unwrap().id, "a");
        assert_eq!(reference(&rows, Some("c"), Criterion::Macro).unwrap().id, "c");
        assert!(reference(&rows, Some("zz"), Criterion::Oof).is_err());
    }

    #[test]
    fn holm_adjusts_step_down_and_stays_monotone() {
        // p sorted: 0.01 (x3 = 0.03), 0.02 (x2 = 0.04), 0.04 (x1 = 0.04).
        let adjusted = holm(&[0.04, 0.01, 0.02]);
        assert_eq!(adjusted, vec![0.04, 0.03, 0.04]);
    }
}

/// The outcome of `foldsweep compare`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompareReport {
    pub reference: String,
    pub reference_label: String,
    pub metric: String,
    pub comparisons: Vec<Comparison>,
    /// Configs that cannot be compared with the reference, with the reason.
    pub refused: Vec<(String, String)>,
}

/// Per-fold (RMSE, macro RMSE or shifted RMSE; val rows, train rows) of a config's finished
/// folds; a fold without the figure (no probes) is left out.
fn fold_metrics(
    store: &crate::store::Store,
    config_id: &str,
    by: Criterion,
) -> anyhow::Result<Vec<(usize, f64, f64, f64)>> {
    Ok(store
        .fold_metrics(config_id)?
        .into_iter()
        .filter_map(|f| {
            let value = match by {
                Criterion::Macro => Some(f.macro_rmse),
                Criterion::Oof => Some(f.rmse),
                Criterion::Shifted => f.shifted_rmse,
            };
            Some((f.fold, value?, f.val_rows as f64, f.train_rows as f64))
        })
        .collect())
}

/// The config everything is compared with: the baseline when given, else the best config by
/// the criterion being compared (pooled OOF RMSE for per-fold RMSE, macro RMSE for per-fold
/// macro RMSE), whatever order `summaries` are in.
pub fn reference<'a>(
    summaries: &'a [ConfigSummary],
    baseline: Option<&str>,
    by: Criterion,
) -> InputResult<&'a ConfigSummary> {
    match baseline {
        Some(id) => summaries.iter().find(|s| s.id == id).ok_or_else(|| {
            InputError::new(format!("config {id:?} is not part of this sweep")).field("baseline")
        }),
        None => crate::results::best(summaries, by.sort_key()).ok_or_else(|| {
            InputError::new("no config of this sweep has a finished fold yet").field("sweep")
        }),
    }
}

/// Every config of the sweep against the reference (the baseline, or the best by the
/// criterion compared), on the folds both finished.
pub fn compare(
    store: &crate::store::Store,
    summaries: &[ConfigSummary],
    baseline: Option<&str>,
    by: Criterion,
) -> anyhow::Result<CompareReport> {
    let reference = reference(summaries, baseline, by)?;
    let reference_folds = fold_metrics(store, &reference.id, by)?;
    let mut comparisons = Vec::new();
    let mut refused = Vec::new();
    for s in summaries.iter().filter(|s| s.id != reference.id) {
        if s.fold_hash != reference.fold_hash {
            refused.push((
                s.id.clone(),
                format!(
                    "evaluated on different folds (fold hash {} vs {})",
                    s.fold_hash, reference.fold_hash
                ),
            ));
            continue;
        }
        let folds = fold_metrics(store, &s.id, by)?;
        let paired: Vec<(f64, f64, f64)> = folds
            .iter()
            .filter_map(|(fold, value, n_test, n_train)| {
                let r = reference_folds.iter().find(|r| r.0 == *fold)?;
                Some((value - r.1, *n_test, *n_train))
            })
            .collect();
        let diffs: Vec<f64> = paired.iter().map(|p| p.0).collect();
        let n_test = paired.iter().map(|p| p.1).sum::<f64>() / paired.len().max(1) as f64;
        let n_train = paired.iter().map(|p| p.2).sum::<f64>() / paired.len().max(1) as f64;
        match corrected_t_test(&diffs, n_test, n_train) {
            Some((t, p, (lo, hi))) => comparisons.push(Comparison {
                config: s.id.clone(),
                label: s.label.clone(),
                folds: diffs.len(),
                mean_diff: diffs.iter().sum::<f64>() / diffs.len() as f64,
                ci_low: lo,
                ci_high: hi,
                t,
                p,
                p_holm: p,
            }),
            None => refused.push((
                s.id.clone(),
                format!("only {} fold(s) finished by both; need 2", diffs.len()),
            )),
        }
    }
    let adjusted = holm(&comparisons.iter().map(|c| c.p).collect::<Vec<_>>());
    comparisons.iter_mut().zip(adjusted).for_each(|(c, p)| c.p_holm = p);
    Ok(CompareReport {
        reference: reference.id.clone(),
        reference_label: reference.label.clone(),
        metric: match by {
            Criterion::Macro => "macro RMSE".into(),
            Criterion::Oof => "RMSE".into(),
            Criterion::Shifted => "shifted RMSE".into(),
        },
        comparisons,
        refused,
    })
}

pub fn render(report: &CompareReport) -> String {
    use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "config",
        "grid values",
        "folds",
        "Δ mean",
        "95% CI",
        "t",
        "p",
        "p (Holm)",
        "verdict",
    ]);
    for c in &report.comparisons {
        let verdict = if c.p_holm < 0.05 {
            if c.mean_diff > 0.0 {
                "worse"
            } else {
                "better"
            }
        } else {
            "no real difference"
        };
        table.add_row(vec![
            c.config.clone(),
            c.label.clone(),
            c.folds.to_string(),
            format!("{:+.4}", c.mean_diff),
            format!("[{:+.4}, {:+.4}]", c.ci_low, c.ci_high),
            format!("{:.2}", c.t),
            format!("{:.4}", c.p),
            format!("{:.4}", c.p_holm),
            verdict.to_string(),
        ]);
    }
    let mut out = format!(
        "reference: {} [{}]; per-fold {} differences (config - reference), Nadeau-Bengio corrected t-test, Holm-adjusted\n{table}\n",
        report.reference, report.reference_label, report.metric
    );
    for (id, reason) in &report.refused {
        out += &format!("not compared: {id}: {reason}\n");
    }
    out
}
