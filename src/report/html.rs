//! `foldsweep report`: one self-contained HTML file per sweep: the results table and inline SVG
//! charts (plotters' SVG backend). Nothing is fetched when the file is opened (no scripts,
//! stylesheets or fonts from elsewhere), so it can be mailed, archived and read offline.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::figures::axis_figure;
use super::figures::histogram_figure;
use super::figures::learning_curve_figure;
use super::figures::per_score_figure;
use super::figures::probe_histogram_figure;
use super::figures::Figure;
use super::search_plots::render_search_section;
use super::varying_keys;
use crate::results::{has_probes, summaries_by, ConfigSummary, Criterion, Retired};
use crate::sampling::NUM_BINS;
use crate::search::Space;
use crate::search::TrialPoint;
use crate::store::{JobStatus, Store};

/// How many of the best configs the per-score chart compares: more bars per score stop being readable.
pub(super) const TOP: usize = 5;

/// The report of one sweep as a complete HTML document.
pub fn render(store: &Store, sweep_id: i64) -> anyhow::Result<String> {
    render_with_trials(store, sweep_id, &[], None)
}

/// The report with a search section (optimisation history, importance, slice plots) for
/// `trials`, placed after the results table; none when `trials` is empty. `space` is the
/// sweep's search space (`None` for a grid: the keys the trials vary become its axes).
pub fn render_with_trials(
    store: &Store,
    sweep_id: i64,
    trials: &[TrialPoint],
    space: Option<&Space>,
) -> anyhow::Result<String> {
    let head = SweepHead::load(store, sweep_id)?;
    // Sorted by the sweep's default criterion: shifted RMSE with validation probes.
    let (rows, key) = summaries_by(store, sweep_id, None, Retired::Exclude)?;
    let keys = varying_keys(&rows);
    // Configs without results sort last, so the first row is the best if any has results.
    let best = rows.first().filter(|r| key.value(r).is_some());
    let mut figures = vec![per_score_figure(&rows)?];
    for axis in &keys {
        figures.push(axis_figure(&rows, axis, key)?);
    }
    figures.push(learning_curve_figure(store, best)?);
    figures.push(histogram_figure(store, best)?);
    if has_probes(&rows) {
        figures.push(probe_histogram_figure(store, best)?);
    }
    let search = render_search_section(trials, space)?;
    Ok(page(&head, &rows, &keys, &search, &figures).replace(SORTED_BY_PLACEHOLDER, key.name()))
}

/// Filled in by `render` with the criterion the results are sorted by.
const SORTED_BY_PLACEHOLDER: &str = "{sorted-by}";

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The sweep's name, fold count and job counts by status.
struct SweepHead {
    name: String,
    folds: usize,
    jobs: BTreeMap<JobStatus, usize>,
}

impl SweepHead {
    fn load(store: &Store, sweep_id: i64) -> anyhow::Result<SweepHead> {
        let (name, folds) = store.sweep_head(sweep_id)?;
        let jobs = store.status_counts(sweep_id)?;
        Ok(SweepHead { name, folds, jobs })
    }

    fn count(&self, status: JobStatus) -> usize {
        self.jobs.get(&status).copied().unwrap_or(0)
    }
}

// ---------------------------------------------------------------------------------------------
// The page

pub(crate) const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 20px; color: #222; }
h1 { margin-bottom: 4px; }
.facts { color: #555; margin-top: 0; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ddd; padding: 3px 8px; }
th { background: #f3f3f3; }
td.num { text-align: right; }
tbody tr:nth-child(even) { background: #fafafa; }
.note { color: #555; font-size: 13px; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; padding: 10px; border: 1px solid #ddd; border-radius: 6px; width: 620px; }
figure h3 { margin: 0 0 6px 0; font-size: 16px; }
figure svg { display: block; max-width: 100%; height: auto; }
figcaption { color: #444; font-size: 13px; margin-top: 6px; }
ul.legend { list-style: none; padding: 0; margin: 6px 0 0 0; font-size: 13px; }
ul.legend li { display: inline-block; margin-right: 14px; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 5px; vertical-align: -1px; border-radius: 2px; }
.empty { color: #888; font-style: italic; }
";

fn page(
    head: &SweepHead,
    rows: &[ConfigSummary],
    keys: &[String],
    search: &str,
    figures: &[Figure],
) -> String {
    let name = escape(&head.name);
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>foldsweep report: {name}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>Sweep {name}</h1>\n<p class=\"facts\">{}</p>\n",
        escape(&facts(head, rows))
    );
    html += "<h2>Results</h2>\n";
    html += &results_table(rows, keys);
    html += search;
    html += "<h2>Charts</h2>\n<div class=\"charts\">\n";
    for figure in figures {
        html += &figure.html();
    }
    html += &format!(
        "</div>\n<p class=\"note\">Made by foldsweep {}.</p>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    );
    html
}

/// "8 configs × 5 folds = 40 jobs: 38 done, 2 failed".
fn facts(head: &SweepHead, rows: &[ConfigSummary]) -> String {
    let total: usize = head.jobs.values().sum();
    let (done, failed) = (head.count(JobStatus::Done), head.count(JobStatus::Failed));
    let mut text = format!(
        "{} × {} = {}: {done} done, {failed} failed",
        plural(rows.len(), "config"),
        plural(head.folds, "fold"),
        plural(total, "job")
    );
    let other = total - done - failed;
    if other > 0 {
        text += &format!(", {other} not finished");
    }
    let key = Criterion::default_for(rows).sort_key();
    if let Some(best) = rows.first().filter(|r| key.value(r).is_some()) {
        text +=
            &format!(". Best by {} RMSE: {} ({})", key.name(), best.id, num(key.value(best), 4));
    }
    text
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn num(value: Option<f64>, digits: usize) -> String {
    value.map_or("-".into(), |v| format!("{v:.digits$}"))
}

/// Scores with at least one record among these configs' out-of-fold predictions.
pub(super) fn scores_present(rows: &[&ConfigSummary]) -> Vec<usize> {
    (0..NUM_BINS).filter(|&b| rows.iter().any(|r| r.bin_count[b] > 0)).collect()
}

/// The terminal results table's columns (see `TableExporter`), as HTML.
fn results_table(rows: &[ConfigSummary], keys: &[String]) -> String {
    let scores = scores_present(&rows.iter().collect::<Vec<_>>());
    let mut header: Vec<String> = vec!["#".into(), "config".into()];
    header.extend(keys.iter().cloned());
    header.extend(["folds", "mean ± sd", "OOF RMSE", "macro"].map(String::from));
    let probes = has_probes(rows);
    if probes {
        header.extend(["probe", "shifted"].map(String::from));
    }
    header.extend(scores.iter().map(|b| format!("@{b}")));
    let mut html = String::from("<table>\n<thead><tr>");
    for h in &header {
        let _ = write!(html, "<th>{}</th>", escape(h));
    }
    html += "</tr></thead>\n<tbody>\n";
    for (rank, r) in rows.iter().enumerate() {
        html += &table_row(rank, r, keys, &scores, probes);
    }
    let counts: Vec<String> = scores
        .iter()
        .map(|&b| format!("@{b}: n={}", rows.iter().map(|r| r.bin_count[b]).max().unwrap_or(0)))
        .collect();
    let _ = write!(
        html,
        "</tbody>\n</table>\n<p class=\"note\">Sorted by {{sorted-by}} RMSE. Per-score columns (@s) are the RMSE of \
         pooled out-of-fold predictions on records scored s ({}); macro is their mean.</p>\n",
        counts.join(", ")
    );
    html
}

fn table_row(
    rank: usize,
    r: &ConfigSummary,
    keys: &[String],
    scores: &[usize],
    probes: bool,
) -> String {
    let folds = if r.folds_failed > 0 {
        format!("{}/{} ({} failed)", r.folds_done, r.folds_total, r.folds_failed)
    } else {
        format!("{}/{}", r.folds_done, r.folds_total)
    };
    let mean_sd = match (r.mean_rmse, r.sd_rmse) {
        (Some(m), Some(s)) => format!("{m:.4} ± {s:.4}"),
        (Some(m), None) => format!("{m:.4}"),
        _ => "-".into(),
    };
    let mut cells = vec![(rank + 1).to_string(), r.id.clone()];
    cells.extend(keys.iter().map(|k| r.varying.get(k).cloned().unwrap_or_default()));
    cells.extend([folds, mean_sd, num(r.oof_rmse, 4), num(r.macro_rmse, 4)]);
    if probes {
        cells.extend([num(r.probe_rmse, 4), num(r.shifted_rmse, 4)]);
    }
    cells.extend(scores.iter().map(|&b| num(r.bin_rmse[b], 2)));
    // Grid-value and id columns are text; rank and everything from the folds column on are numbers.
    let numeric_from = 2 + keys.len();
    let tds: String = cells
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let class = if i == 0 || i >= numeric_from { " class=\"num\"" } else { "" };
            format!("<td{class}>{}</td>", escape(c))
        })
        .collect();
    format!("<tr>{tds}</tr>\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::figures::{score_histograms, GridAxis};

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn grid_axis_orders_numbers_and_keeps_categories_in_grid_order() {
        let axis = GridAxis::new(vec!["0.3".into(), "0".into(), "1".into()]);
        assert!(axis.numeric && !axis.log);
        assert_eq!(axis.labels, ["0", "0.3", "1"]);
        let lr = GridAxis::new(vec!["0.0001".into(), "0.01".into()]);
        assert!(lr.log);
        assert_eq!(lr.positions, [-4.0, -2.0]);
        let cat = GridAxis::new(vec!["standard".into(), "ordinal".into()]);
        assert_eq!((cat.numeric, cat.positions.clone()), (false, vec![0.0, 1.0]));
        assert_eq!(cat.label_at(0.9), "ordinal");
        assert_eq!(cat.x_range(), -0.5..1.5);
        assert!(!GridAxis::new(Vec::new()).numeric, "no values: nothing to parse");
    }

    #[test]
    fn histograms_round_and_clamp() {
        let (p, t) = score_histograms(&[(9.0, 8.6), (10.0, 10.4), (0.0, -0.2)]);
        assert_eq!((p[9], p[10], p[0]), (1, 1, 1));
        assert_eq!((t[9], t[10], t[0]), (1, 1, 1));
    }
}
