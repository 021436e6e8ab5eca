//! Reading results back: one summary per config, formatted by an [`Exporter`] per output
//! format (table, CSV, JSON), plus `show`, `compare` and the submission export.

pub mod compare;
pub mod ensemble;
pub mod export;
pub mod figures;
pub mod html;
pub mod search_plots;
pub mod show;
pub mod svg;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};

use crate::results::{has_probes, ConfigSummary};
use crate::sampling::NUM_BINS;

/// One output format of the results table (hyperfine-style exporters).
pub trait Exporter {
    fn export(&self, rows: &[ConfigSummary], keys: &[String]) -> anyhow::Result<String>;
}

/// The output formats of the results table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

pub fn exporter(format: OutputFormat) -> Box<dyn Exporter> {
    match format {
        OutputFormat::Table => Box::new(TableExporter),
        OutputFormat::Csv => Box::new(CsvExporter),
        OutputFormat::Json => Box::new(JsonExporter),
    }
}

/// The grid keys that vary across these configs, in first-seen order.
pub fn varying_keys(rows: &[ConfigSummary]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    let mut by_position = rows.to_vec();
    by_position.sort_by_key(|r| r.position);
    for row in &by_position {
        for (k, _) in row.label.split(' ').filter_map(|kv| kv.split_once('=')) {
            if !keys.iter().any(|x| x == k) {
                keys.push(k.to_string());
            }
        }
    }
    keys
}

/// `5/5`, `3/5 (2 failed)`, `0/5 (5 diverged)`, `2/5 (3 pruned)`.
fn folds_text(r: &ConfigSummary) -> String {
    let mut notes = Vec::new();
    if r.folds_failed > 0 {
        notes.push(format!("{} failed", r.folds_failed));
    }
    if r.diverged > 0 {
        notes.push(format!("{} diverged", r.diverged));
    }
    if r.pruned > 0 {
        notes.push(format!("{} pruned", r.pruned));
    }
    let done = format!("{}/{}", r.folds_done, r.folds_total);
    if notes.is_empty() {
        done
    } else {
        format!("{done} ({})", notes.join(", "))
    }
}

fn fmt(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.4}"))
}

fn bins_present(rows: &[ConfigSummary]) -> Vec<usize> {
    (0..NUM_BINS).filter(|&b| rows.iter().any(|r| r.bin_count[b] > 0)).collect()
}

pub struct TableExporter;

impl Exporter for TableExporter {
    fn export(&self, rows: &[ConfigSummary], keys: &[String]) -> anyhow::Result<String> {
        let bins = bins_present(rows);
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        let mut header: Vec<String> = vec!["#".into(), "config".into()];
        header.extend(keys.iter().cloned());
        header.extend(["folds".into(), "mean ± sd".into(), "OOF RMSE".into(), "macro".into()]);
        let probes = has_probes(rows);
        if probes {
            header.extend(["probe".into(), "shifted".into()]);
        }
        header.extend(bins.iter().map(|b| format!("@{b}")));
        table.set_header(header);
        for (rank, r) in rows.iter().enumerate() {
            let id = if r.retired { format!("{} (retired)", r.id) } else { r.id.clone() };
            let mut cells: Vec<Cell> = vec![Cell::new(rank + 1), Cell::new(id)];
            cells.extend(
                keys.iter().map(|k| Cell::new(r.varying.get(k).map_or("", String::as_str))),
            );
            let folds = folds_text(r);
            let mean_sd = match (r.mean_rmse, r.sd_rmse) {
                (Some(m), Some(s)) => format!("{m:.4} ± {s:.4}"),
                (Some(m), None) => format!("{m:.4}"),
                _ => "-".into(),
            };
            cells.extend([
                Cell::new(folds),
                Cell::new(mean_sd),
                Cell::new(fmt(r.oof_rmse)),
                Cell::new(fmt(r.macro_rmse)),
            ]);
            if probes {
                cells.extend([Cell::new(fmt(r.probe_rmse)), Cell::new(fmt(r.shifted_rmse))]);
            }
            cells.extend(bins.iter().map(|&b| {
                Cell::new(r.bin_rmse[b].map_or("-".into(), |v| format!("{v:.2}")))
                    .set_alignment(CellAlignment::Right)
            }));
            table.add_row(cells);
        }
        let counts: Vec<String> = bins
            .iter()
            .map(|&b| format!("@{b}: n={}", rows.iter().map(|r| r.bin_count[b]).max().unwrap_or(0)))
            .collect();
        let mut text = format!("{table}\nper-score columns (@s) are the RMSE of pooled out-of-fold predictions on records scored s ({})\n", counts.join(", "));
        if let Some(probe) = rows.iter().find_map(|r| r.probe.as_ref()) {
            text += &format!(
                "probe: RMSE on validation texts paired with another metric, as if scored {}-{}; \
                 shifted = sqrt({:.2} x OOF MSE + {:.2} x probe MSE)\n",
                probe.score_min,
                probe.score_max,
                1.0 - probe.fraction,
                probe.fraction
            );
        }
        Ok(text)
    }
}

pub struct CsvExporter;

impl Exporter for CsvExporter {
    fn export(&self, rows: &[ConfigSummary], keys: &[String]) -> anyhow::Result<String> {
        let bins = bins_present(rows);
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header: Vec<String> = vec!["rank".into(), "config".into()];
        header.extend(keys.iter().cloned());
        header.extend(
            ["folds_done", "folds_total", "mean_rmse", "sd_rmse", "oof_rmse", "macro_rmse"]
                .map(String::from),
        );
        header.extend(["probe_rmse", "shifted_rmse"].map(String::from));
        header.extend(bins.iter().map(|b| format!("rmse_{b}")));
        w.write_record(&header)?;
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
        for (rank, r) in rows.iter().enumerate() {
            let mut record: Vec<String> = vec![(rank + 1).to_string(), r.id.clone()];
            record.extend(keys.iter().map(|k| r.varying.get(k).cloned().unwrap_or_default()));
            record.extend([
                r.folds_done.to_string(),
                r.folds_total.to_string(),
                opt(r.mean_rmse),
                opt(r.sd_rmse),
                opt(r.oof_rmse),
                opt(r.macro_rmse),
                opt(r.probe_rmse),
                opt(r.shifted_rmse),
            ]);
            record.extend(bins.iter().map(|&b| opt(r.bin_rmse[b])));
            w.write_record(&record)?;
        }
        Ok(String::from_utf8(w.into_inner()?)?)
    }
}

pub struct JsonExporter;

impl Exporter for JsonExporter {
    fn export(&self, rows: &[ConfigSummary], _keys: &[String]) -> anyhow::Result<String> {
        Ok(serde_json::to_string_pretty(rows)? + "\n")
    }
}
