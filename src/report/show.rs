//! `foldsweep show CONFIG_ID`: one config in detail.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

use crate::error::InputError;
use crate::sampling::NUM_BINS;
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
    if let Some(probe) = crate::results::probe_config(store, config_id)? {
        out += &probe_section(store, config_id, &probe)?;
    }
    out += &margin_section(&config);
    Ok(out)
}

/// With prototype features: the margin (own prototype's cosine minus the best other's) of the
/// real validation rows against the probe rows, recomputed from the config's data as its jobs
/// computed it. What separates the two is what the models can learn from.
fn margin_section(config: &serde_json::Value) -> String {
    let Ok(config) = serde_json::from_value::<crate::config::Config>(config.clone()) else {
        return String::new();
    };
    if !config.features.prototypes {
        return String::new();
    }
    let data = match crate::job::TrainingData::load(&config) {
        Ok(data) => data,
        Err(e) => return format!("\nmargins: cannot load the config's data: {e}\n"),
    };
    let Some(margins) = crate::job::margins::margins(&config, &data) else {
        return String::new();
    };
    const BINS: usize = 20;
    let real = crate::job::margins::histogram(&margins.real, BINS);
    let probes = crate::job::margins::histogram(&margins.probes, BINS);
    let share = |counts: &[usize], i: usize| {
        let fraction = counts[i] as f64 / counts.iter().sum::<usize>().max(1) as f64;
        format!("{:>5.1}% {}", fraction * 100.0, "█".repeat((fraction * 30.0).round() as usize))
    };
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        format!("{} margin", margins.level),
        format!("real validation rows ({})", margins.real.len()),
        format!("probe rows ({})", margins.probes.len()),
    ]);
    for i in 0..BINS {
        let low = -1.0 + 2.0 * i as f64 / BINS as f64;
        table.add_row(vec![format!("{low:+.1}"), share(&real, i), share(&probes, i)]);
    }
    format!(
        "\nprototype margins (own prototype's cosine minus the best other's; the end bins hold \
         what lies beyond +-1):\n{table}\n"
    )
}

/// What the probes say: per-fold probe and shifted RMSE, and where the model puts the probe
/// rows next to the real rows. A model that ignores the metric predicts 9 for both.
fn probe_section(
    store: &Store,
    config_id: &str,
    probe: &crate::probe::ProbeConfig,
) -> anyhow::Result<String> {
    let mut out = format!(
        "\nprobes: validation texts paired with another metric, believed to be {:.0}% of the test \
         set and scored {}-{}\n",
        probe.fraction * 100.0,
        probe.score_min,
        probe.score_max
    );
    for fold in store.fold_metrics(config_id)? {
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
        out += &format!(
            "  fold {}: RMSE {:.4}  probe {}  shifted {}\n",
            fold.fold,
            fold.rmse,
            f(fold.probe_rmse),
            f(fold.shifted_rmse)
        );
    }
    let (real, probes) = prediction_histograms(store, config_id)?;
    out += &format!("{}\n", histogram_table(&real, &probes));
    Ok(out)
}

/// How many real and probe rows' predictions round to each score 0..10.
pub fn prediction_histograms(
    store: &Store,
    config_id: &str,
) -> anyhow::Result<([usize; NUM_BINS], [usize; NUM_BINS])> {
    let bin = |p: f64| p.clamp(0.0, 10.0).round() as usize;
    let mut real = [0; NUM_BINS];
    let mut probes = [0; NUM_BINS];
    store.oof_rows(config_id)?.iter().for_each(|r| real[bin(r.prediction)] += 1);
    store.probe_rows(config_id)?.iter().for_each(|r| probes[bin(r.prediction)] += 1);
    Ok((real, probes))
}

fn histogram_table(real: &[usize; NUM_BINS], probes: &[usize; NUM_BINS]) -> Table {
    let share = |counts: &[usize; NUM_BINS], i: usize| {
        let total = counts.iter().sum::<usize>().max(1) as f64;
        let fraction = counts[i] as f64 / total;
        format!("{:>5.1}% {}", fraction * 100.0, "█".repeat((fraction * 30.0).round() as usize))
    };
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "predicted",
        "real validation rows",
        "probe rows",
    ]);
    for i in 0..NUM_BINS {
        table.add_row(vec![i.to_string(), share(real, i), share(probes, i)]);
    }
    table
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
    for job in store.job_records(config_id)? {
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
        let o = job.outcome.as_ref();
        folds.add_row(vec![
            job.fold.to_string(),
            status,
            job.attempt.to_string(),
            job.device.unwrap_or_default(),
            o.map_or("-".into(), |o| format!("{}/{}", o.best_epoch, o.epochs_run)),
            f(o.map(|o| o.rmse)),
            f(o.map(|o| o.rounded_rmse)),
            f(o.map(|o| o.macro_rmse)),
            f(o.map(|o| o.mean_predictor_rmse)),
            o.map_or("-".into(), |o| format!("{:.1}", o.train_seconds)),
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
