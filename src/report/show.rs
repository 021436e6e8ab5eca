//! `foldsweep show CONFIG_ID`: one config in detail.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

use crate::error::InputError;
use crate::store::Store;

/// A learning curve as a one-line sparkline of validation RMSE (lower is a lower bar).
pub fn sparkline(values: &[f64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if values.is_empty() {
        return String::new();
    }
    let (lo, hi) =
        values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    let step = (values.len() as f64 / width as f64).max(1.0);
    (0..values.len().min(width))
        .map(|i| {
            let v = values[((i as f64 * step) as usize).min(values.len() - 1)];
            let level = if hi > lo { ((v - lo) / (hi - lo) * 7.0).round() as usize } else { 0 };
            BARS[level.min(7)]
        })
        .collect()
}

pub fn show(store: &Store, config_id: &str) -> anyhow::Result<String> {
    let params = store.config_params(config_id)?.ok_or_else(|| {
        InputError::new(format!("no config with id {config_id:?} in this database"))
            .field("CONFIG_ID")
    })?;
    let label = store.config_label(config_id)?.unwrap_or_default();
    let mut out = format!("config {config_id}  {label}\n");
    let config: serde_json::Value = serde_json::from_str(&params)?;
    out += &format!("train: {}\n\n", config["train"]);
    let (folds, errors) = folds_table(store, config_id)?;
    out += &format!("{folds}\n");
    for e in errors {
        out += &format!("error {e}\n");
    }
    out += &format!("\n{}\n", bins_table(store, config_id)?);
    Ok(out)
}

/// One row per job (status, result, learning curve) and the last line of each job's error.
fn folds_table(store: &Store, config_id: &str) -> anyhow::Result<(Table, Vec<String>)> {
    let mut folds = Table::new();
    folds.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "fold",
        "status",
        "attempt",
        "device",
        "best/epochs",
        "RMSE",
        "rounded",
        "macro",
        "mean-pred",
        "seconds",
        "learning curve (val RMSE)",
    ]);
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    let mut errors = Vec::new();
    for job in store.job_details(config_id)? {
        let curve = store.job_curve(job.id)?;
        let finite: Vec<f64> = curve.iter().copied().filter(|v| v.is_finite()).collect();
        let curve_text = match (finite.first(), finite.iter().copied().reduce(f64::min)) {
            (Some(first), Some(best_value)) => {
                format!("{} {first:.3}→{best_value:.3}", sparkline(&finite, 30))
            }
            _ => String::new(),
        };
        let status = match job.diverged_epoch {
            Some(epoch) => format!("{} at epoch {epoch}", job.status),
            None => job.status.to_string(),
        };
        folds.add_row(vec![
            job.fold.to_string(),
            status,
            job.attempt.to_string(),
            job.device.unwrap_or_default(),
            match (job.best_epoch, job.epochs_run) {
                (Some(b), Some(e)) => format!("{b}/{e}"),
                _ => "-".into(),
            },
            f(job.rmse),
            f(job.rounded_rmse),
            f(job.macro_rmse),
            f(job.mean_predictor_rmse),
            job.train_seconds.map_or("-".into(), |s| format!("{s:.1}")),
            curve_text,
        ]);
        if let Some(e) = job.error {
            errors.push(format!("fold {}: {}", job.fold, e.lines().last().unwrap_or("")));
        }
    }
    Ok((folds, errors))
}

/// Pooled out-of-fold RMSE and mean prediction per true score.
fn bins_table(store: &Store, config_id: &str) -> anyhow::Result<Table> {
    let mut bins = Table::new();
    bins.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "score",
        "count",
        "RMSE (pooled OOF)",
        "mean prediction",
    ]);
    for (score, count, mse, mean) in store.oof_by_score(config_id)? {
        bins.add_row(vec![
            score.to_string(),
            count.to_string(),
            format!("{:.4}", mse.sqrt()),
            format!("{mean:.2}"),
        ]);
    }
    Ok(bins)
}
