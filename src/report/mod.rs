//! Reading results back: one summary per config, formatted by an [`Exporter`] per output
//! format (table, CSV, JSON), plus `show`, `compare` and the submission export.

pub mod compare;
pub mod ensemble;
pub mod export;
pub mod figures;
pub mod html;
pub mod search_plots;
pub mod show;
pub mod status;
pub mod svg;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ColumnConstraint, ContentArrangement, Table, Width};

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

/// How the terminal table is laid out. Piped output (the default layout) keeps every column at
/// its natural width, so scripts and diffs see the same table on any terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableLayout {
    /// Every column: mean ± sd and the per-score RMSEs (@0 ... @10), twelve of a table's
    /// twenty-odd columns. Without it the table keeps the axes, folds and the criteria.
    pub wide: bool,
    /// Fit the table into this many characters, wrapping the axis values where it must.
    pub width: Option<u16>,
}

impl Default for TableLayout {
    fn default() -> Self {
        TableLayout { wide: true, width: None }
    }
}

pub fn exporter(format: OutputFormat, layout: TableLayout) -> Box<dyn Exporter> {
    match format {
        OutputFormat::Table => Box::new(TableExporter { layout }),
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

pub struct TableExporter {
    pub layout: TableLayout,
}

impl Exporter for TableExporter {
    fn export(&self, rows: &[ConfigSummary], keys: &[String]) -> anyhow::Result<String> {
        let wide = self.layout.wide;
        let bins = if wide { bins_present(rows) } else { Vec::new() };
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        if let Some(width) = self.layout.width {
            table.set_width(width).set_content_arrangement(ContentArrangement::Dynamic);
        }
        let mut header: Vec<String> = vec!["#".into(), "config".into()];
        header.extend(keys.iter().cloned());
        header.push("folds".into());
        if wide {
            header.push("mean ± sd".into());
        }
        header.extend(["OOF RMSE".into(), "macro".into()]);
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
            cells.push(Cell::new(folds));
            if wide {
                cells.push(Cell::new(mean_sd));
            }
            cells.extend([Cell::new(fmt(r.oof_rmse)), Cell::new(fmt(r.macro_rmse))]);
            if probes {
                cells.extend([Cell::new(fmt(r.probe_rmse)), Cell::new(fmt(r.shifted_rmse))]);
            }
            cells.extend(bins.iter().map(|&b| {
                Cell::new(r.bin_rmse[b].map_or("-".into(), |v| format!("{v:.2}")))
                    .set_alignment(CellAlignment::Right)
            }));
            table.add_row(cells);
        }
        if self.layout.width.is_some() {
            // Only the axis values wrap: ids are copied into commands, figures read across.
            // An axis column keeps at least 10 characters (a value like `[512, 256]`).
            let axes = 2..2 + keys.len();
            for (i, column) in table.column_iter_mut().enumerate() {
                column.set_constraint(if axes.contains(&i) {
                    ColumnConstraint::LowerBoundary(Width::Fixed(10))
                } else {
                    ColumnConstraint::ContentWidth
                });
            }
        }
        let counts: Vec<String> = bins
            .iter()
            .map(|&b| format!("@{b}: n={}", rows.iter().map(|r| r.bin_count[b]).max().unwrap_or(0)))
            .collect();
        let mut text = if wide {
            format!("{table}\nper-score columns (@s) are the RMSE of pooled out-of-fold predictions on records scored s ({})\n", counts.join(", "))
        } else {
            format!("{table}\n--wide adds mean ± sd over the folds and the RMSE on the records of each true score (@0 ... @10)\n")
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<ConfigSummary> {
        (0..3)
            .map(|i| {
                let mut row = ConfigSummary {
                    id: format!("c0ffee00000{i}"),
                    position: i,
                    folds_done: 5,
                    folds_total: 5,
                    mean_rmse: Some(1.1),
                    sd_rmse: Some(0.1),
                    oof_rmse: Some(1.0 + i as f64),
                    macro_rmse: Some(1.5),
                    bin_rmse: vec![Some(1.25); NUM_BINS],
                    bin_count: vec![10; NUM_BINS],
                    ..Default::default()
                };
                row.varying.insert("train.lr".into(), format!("{}", 1e-3 * (i + 1) as f64));
                row.varying.insert("train.hidden_dims".into(), "[512, 256, 128]".into());
                row
            })
            .collect()
    }

    fn table_lines(text: &str) -> Vec<&str> {
        text.lines().filter(|l| l.starts_with(['┌', '│', '╞', '├', '└'])).collect()
    }

    fn widest(text: &str) -> usize {
        table_lines(text).iter().map(|l| l.chars().count()).max().unwrap()
    }

    #[test]
    fn the_terminal_table_fits_its_width_and_leaves_the_wide_columns_to_the_flag() {
        let (rows, keys) = (rows(), vec!["train.lr".into(), "train.hidden_dims".into()]);
        let export = |layout| TableExporter { layout }.export(&rows, &keys).unwrap();
        let per_score_header = |text: &str| table_lines(text).iter().any(|l| l.contains("@10"));
        let piped = export(TableLayout::default());
        assert!(per_score_header(&piped), "piped output keeps every column:\n{piped}");
        assert!(widest(&piped) > 100, "the natural width is wide:\n{piped}");
        let terminal = export(TableLayout { wide: false, width: Some(80) });
        assert!(!per_score_header(&terminal), "{terminal}");
        assert!(widest(&terminal) <= 80, "fits 80 columns:\n{terminal}");
        assert!(!table_lines(&terminal).iter().any(|l| l.contains("mean ± sd")), "{terminal}");
        let ids_and_figures = ["c0ffee000002", "3.0000", "1.5000"];
        assert!(ids_and_figures.iter().all(|t| terminal.contains(t)), "never wrapped:\n{terminal}");
    }
}
