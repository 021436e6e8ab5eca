//! `foldsweep show CONFIG_ID`: one config in detail.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use rusqlite::OptionalExtension;

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
    let conn = store.conn();
    let params: Option<String> = conn
        .query_row("SELECT params FROM configs WHERE id = ?1", [config_id], |r| r.get(0))
        .optional()?;
    let params = params.ok_or_else(|| {
        InputError::new(format!("no config with id {config_id:?} in this database"))
            .field("CONFIG_ID")
    })?;
    let label: String = conn
        .query_row(
            "SELECT label FROM sweep_configs WHERE config_id = ?1 LIMIT 1",
            [config_id],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or_default();
    let mut out = format!("config {config_id}  {label}\n");
    let config: serde_json::Value = serde_json::from_str(&params)?;
    out += &format!("train: {}\n\n", config["train"]);

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
    let mut stmt = conn.prepare(
        "SELECT j.id, j.fold, j.status, j.attempt, j.device, r.best_epoch, r.epochs_run, r.rmse, r.rounded_rmse, r.macro_rmse,
                r.mean_predictor_rmse, r.train_seconds, j.error
         FROM jobs j LEFT JOIN fold_results r ON r.job_id = j.id WHERE j.config_id = ?1 ORDER BY j.fold",
    )?;
    type Row = (
        i64,
        i64,
        String,
        i64,
        Option<String>,
        Option<i64>,
        Option<i64>,
        Option<f64>,
        Option<f64>,
        Option<f64>,
        Option<f64>,
        Option<f64>,
        Option<String>,
    );
    let rows: Vec<Row> = stmt
        .query_map([config_id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
                r.get(11)?,
                r.get(12)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    let mut errors = Vec::new();
    for (
        job_id,
        fold,
        status,
        attempt,
        device,
        best,
        epochs,
        rmse,
        rounded,
        macro_rmse,
        mean_pred,
        seconds,
        error,
    ) in rows
    {
        let curve: Vec<f64> = conn
            .prepare("SELECT val_rmse FROM epochs WHERE job_id = ?1 ORDER BY epoch")?
            .query_map([job_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let curve_text = match (curve.first(), curve.iter().copied().reduce(f64::min)) {
            (Some(first), Some(best_value)) => {
                format!("{} {first:.3}→{best_value:.3}", sparkline(&curve, 30))
            }
            _ => String::new(),
        };
        folds.add_row(vec![
            fold.to_string(),
            status,
            attempt.to_string(),
            device.unwrap_or_default(),
            match (best, epochs) {
                (Some(b), Some(e)) => format!("{b}/{e}"),
                _ => "-".into(),
            },
            f(rmse),
            f(rounded),
            f(macro_rmse),
            f(mean_pred),
            seconds.map_or("-".into(), |s| format!("{s:.1}")),
            curve_text,
        ]);
        if let Some(e) = error {
            errors.push(format!("fold {fold}: {}", e.lines().last().unwrap_or("")));
        }
    }
    out += &format!("{folds}\n");
    for e in errors {
        out += &format!("error {e}\n");
    }

    let mut bins = Table::new();
    bins.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "score",
        "count",
        "RMSE (pooled OOF)",
        "mean prediction",
    ]);
    let mut stmt = conn.prepare(
        "SELECT CAST(ROUND(o.truth) AS INTEGER) AS s, COUNT(*), AVG((o.prediction - o.truth) * (o.prediction - o.truth)), AVG(o.prediction)
         FROM oof_predictions o JOIN jobs j ON j.id = o.job_id WHERE j.config_id = ?1 AND j.status = 'done' GROUP BY s ORDER BY s",
    )?;
    let bin_rows: Vec<(i64, i64, f64, f64)> = stmt
        .query_map([config_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    for (score, count, mse, mean) in bin_rows {
        bins.add_row(vec![
            score.to_string(),
            count.to_string(),
            format!("{:.4}", mse.sqrt()),
            format!("{mean:.2}"),
        ]);
    }
    out += &format!("\n{bins}\n");
    Ok(out)
}
