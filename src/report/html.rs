//! `foldsweep report`: one self-contained HTML file per sweep: the results table and inline SVG
//! charts (plotters' SVG backend). Nothing is fetched when the file is opened (no scripts,
//! stylesheets or fonts from elsewhere), so it can be mailed, archived and read offline.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::search_plots::render_search_section;
use super::varying_keys;
use crate::data::score_bin;
use crate::results::{has_probes, summaries_by, ConfigSummary, Criterion, Retired};
use crate::sampling::NUM_BINS;
use crate::search::Space;
use crate::search::TrialPoint;
use crate::store::{JobStatus, Store};

/// How many of the best configs the per-score chart compares: more bars per score stop being readable.
const TOP: usize = 5;
/// Two charts side by side fit a 1400-pixel-wide window.
const CHART_SIZE: (u32, u32) = (620, 400);
/// Tableau 10: colours that stay apart for the common colour-vision deficiencies.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xba, 0xb0, 0xac),
];

type Area<'s> = DrawingArea<SVGBackend<'s>, Shift>;
/// Every chart uses one coordinate type: f64 on both axes, x ticks only where we put them
/// (category centres, grid values, epochs), so one helper sets up all of them.
pub(super) type Chart<'a, 's> =
    ChartContext<'a, SVGBackend<'s>, Cartesian2d<TickedAxis, RangedCoordf64>>;

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
    for key in &keys {
        figures.push(axis_figure(&rows, key)?);
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

/// Where the best config puts probe rows (a validation text with another metric) next to
/// real validation rows: a model that ignores the metric predicts 9 for both.
fn probe_histogram_figure(store: &Store, best: Option<&ConfigSummary>) -> anyhow::Result<Figure> {
    let (real, probes) = match best {
        Some(b) => super::show::prediction_histograms(store, &b.id)?,
        None => Default::default(),
    };
    let share = |counts: &[usize; NUM_BINS]| {
        let total = counts.iter().sum::<usize>().max(1) as f64;
        counts.iter().map(|&n| Some(n as f64 / total)).collect::<Vec<_>>()
    };
    let svg = if real.iter().sum::<usize>() == 0 {
        None
    } else {
        Some(grouped_bars(&GroupedBars {
            categories: (0..NUM_BINS).map(|s| s.to_string()).collect(),
            series: vec![share(&real), share(&probes)],
            counts: false,
            x_desc: "predicted score (rounded)",
            y_desc: "share of rows",
        })?)
    };
    let who = best.map_or(String::new(), |b| format!(" {}", b.id));
    Ok(Figure {
        title: "Predictions on probe rows and real rows".into(),
        svg,
        legend: vec![
            (color(0), "real validation rows".into()),
            (color(1), "probe rows (text with another metric)".into()),
        ],
        caption: format!(
            "Where the best config{who} puts its out-of-fold predictions of real validation rows \
             and of probe rows (a validation text paired with another metric). A model that \
             ignores the metric predicts the same for both."
        ),
    })
}

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

/// One chart with its legend and caption; `svg` is None when there is nothing to draw yet.
pub(crate) struct Figure {
    pub(crate) title: String,
    pub(crate) svg: Option<String>,
    pub(crate) legend: Vec<(RGBColor, String)>,
    pub(crate) caption: String,
}

impl Figure {
    pub(crate) fn html(&self) -> String {
        self.html_or("No finished results to chart yet.")
    }

    /// The figure, with `empty` (plain text) in place of a chart when `svg` is None.
    pub(crate) fn html_or(&self, empty: &str) -> String {
        let body =
            self.svg.clone().unwrap_or_else(|| format!("<p class=\"empty\">{}</p>", escape(empty)));
        let legend: String = self
            .legend
            .iter()
            .map(|(c, text)| {
                format!(
                    "<li><span class=\"swatch\" style=\"background:{}\"></span>{}</li>",
                    css(*c),
                    escape(text)
                )
            })
            .collect();
        let legend = if legend.is_empty() {
            String::new()
        } else {
            format!("<ul class=\"legend\">{legend}</ul>")
        };
        format!(
            "<figure>\n<h3>{}</h3>\n{body}{legend}\n<figcaption>{}</figcaption>\n</figure>\n",
            escape(&self.title),
            escape(&self.caption)
        )
    }
}

fn css(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

pub(crate) fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
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
fn scores_present(rows: &[&ConfigSummary]) -> Vec<usize> {
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

// ---------------------------------------------------------------------------------------------
// Chart plumbing

/// Draws one chart into an SVG string (the backend borrows the string, so it lives in here).
pub(super) fn render_svg(draw: impl FnOnce(&Area) -> anyhow::Result<()>) -> anyhow::Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, CHART_SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    Ok(out)
}

/// An f64 axis with ticks only at the given values. (plotters' own `with_key_points` does
/// the same but loses the f64 value formatter that drawing the mesh needs.)
pub(super) struct TickedAxis {
    inner: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ranged for TickedAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Light (minor) grid lines would sit between categories and mean nothing.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

impl ValueFormatter<f64> for TickedAxis {
    fn format(value: &f64) -> String {
        value.to_string()
    }
}

/// What one chart's axes show: ranges, where the x ticks go and how they read.
pub(super) struct Axes<'f> {
    pub(super) x: Range<f64>,
    pub(super) x_ticks: Vec<f64>,
    pub(super) x_label: &'f dyn Fn(f64) -> String,
    pub(super) y: Range<f64>,
    /// Whole numbers on the y axis (counts); otherwise plotters' own number format.
    pub(super) y_whole: bool,
    pub(super) x_desc: &'f str,
    pub(super) y_desc: &'f str,
}

pub(super) fn chart<'a, 's>(root: &'a Area<'s>, axes: &Axes) -> anyhow::Result<Chart<'a, 's>> {
    let mut chart = ChartBuilder::on(root)
        .margin(14)
        .margin_right(24)
        .x_label_area_size(54)
        .y_label_area_size(70)
        .build_cartesian_2d(
            TickedAxis { inner: axes.x.clone().into(), ticks: axes.x_ticks.clone() },
            axes.y.clone(),
        )?;
    let x_label = |v: &f64| (axes.x_label)(*v);
    let whole = |v: &f64| format!("{v:.0}");
    let mut mesh = chart.configure_mesh();
    if axes.y_whole {
        mesh.y_label_formatter(&whole);
    }
    mesh.disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(0xe4, 0xe4, 0xe4))
        .y_labels(8)
        .x_label_formatter(&x_label)
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .x_desc(axes.x_desc)
        .y_desc(axes.y_desc)
        .draw()?;
    Ok(chart)
}

/// The label of the category nearest to x (category i sits at x = i).
fn category_label(categories: &[String], x: f64) -> String {
    let i = x.round();
    if i >= 0.0 && (i as usize) < categories.len() {
        categories[i as usize].clone()
    } else {
        String::new()
    }
}

/// A y range from 0 to a little above the largest value, so bars start at zero.
fn zero_based(values: impl Iterator<Item = f64>) -> Range<f64> {
    let top = values.fold(0.0f64, f64::max);
    0.0..if top > 0.0 { top * 1.08 } else { 1.0 }
}

/// A y range around the values with some air, so small differences between configs show.
pub(super) fn padded(values: impl Iterator<Item = f64>) -> Range<f64> {
    let (lo, hi) =
        values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    let pad = if hi > lo { (hi - lo) * 0.12 } else { 0.05 * hi.abs().max(1.0) };
    (lo - pad).max(0.0)..hi + pad
}

/// Bars grouped by category: `series[s][c]` is series s's bar in category c (None: no bar).
pub(super) struct GroupedBars<'a> {
    pub(super) categories: Vec<String>,
    pub(super) series: Vec<Vec<Option<f64>>>,
    pub(super) counts: bool,
    pub(super) x_desc: &'a str,
    pub(super) y_desc: &'a str,
}

pub(super) fn grouped_bars(bars: &GroupedBars) -> anyhow::Result<String> {
    let n = bars.categories.len();
    let label = |x: f64| category_label(&bars.categories, x);
    let axes = Axes {
        x: -0.5..n as f64 - 0.5,
        x_ticks: (0..n).map(|i| i as f64).collect(),
        x_label: &label,
        y: zero_based(bars.series.iter().flatten().flatten().copied()),
        y_whole: bars.counts,
        x_desc: bars.x_desc,
        y_desc: bars.y_desc,
    };
    // The group fills 80% of its slot; each bar leaves a sliver so neighbours stay apart.
    let width = 0.8 / bars.series.len().max(1) as f64;
    render_svg(|root| {
        let mut chart = chart(root, &axes)?;
        for (s, values) in bars.series.iter().enumerate() {
            let fill = color(s).filled();
            chart.draw_series(values.iter().enumerate().filter_map(|(c, v)| {
                let x0 = c as f64 - 0.4 + s as f64 * width;
                v.map(|v| Rectangle::new([(x0 + width * 0.06, 0.0), (x0 + width * 0.94, v)], fill))
            }))?;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// The charts

/// Per-score RMSE of the best configs, side by side for each score.
pub(crate) fn per_score_figure(rows: &[ConfigSummary]) -> anyhow::Result<Figure> {
    let top: Vec<&ConfigSummary> = rows.iter().filter(|r| r.oof_rmse.is_some()).take(TOP).collect();
    let scores = scores_present(&top);
    let svg = if top.is_empty() || scores.is_empty() {
        None
    } else {
        Some(grouped_bars(&GroupedBars {
            categories: scores.iter().map(usize::to_string).collect(),
            series: top.iter().map(|r| scores.iter().map(|&b| r.bin_rmse[b]).collect()).collect(),
            counts: false,
            x_desc: "true score",
            y_desc: "RMSE of pooled OOF predictions",
        })?)
    };
    Ok(Figure {
        title: match top.len() {
            0 => "Per-score RMSE of the best configs".into(),
            n => format!("Per-score RMSE of the {n} best configs"),
        },
        svg,
        legend: top.iter().enumerate().map(|(i, r)| (color(i), format!("#{} {} {}", i + 1, r.id, r.label))).collect(),
        caption: "RMSE of the pooled out-of-fold predictions on the records of each true score, for the best configs in \
                  the results table's order (lower is better). Scores without any training record are left out."
            .into(),
    })
}

/// Where each distinct value of one grid key sits on the x axis, and how it reads.
struct GridAxis {
    labels: Vec<String>,
    positions: Vec<f64>,
    /// Numbers spanning decades (learning rates) are placed by their log10.
    log: bool,
    numeric: bool,
}

impl GridAxis {
    /// Numbers go on a number line in numeric order; anything else is a category, in grid order.
    fn new(mut labels: Vec<String>) -> GridAxis {
        let numbers: Option<Vec<f64>> =
            labels.iter().map(|l| l.parse::<f64>().ok().filter(|v| v.is_finite())).collect();
        let Some(mut numbers) = numbers.filter(|n| !n.is_empty()) else {
            let positions = (0..labels.len()).map(|i| i as f64).collect();
            return GridAxis { labels, positions, log: false, numeric: false };
        };
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.sort_by(|&a, &b| numbers[a].total_cmp(&numbers[b]));
        labels = order.iter().map(|&i| labels[i].clone()).collect();
        numbers = order.iter().map(|&i| numbers[i]).collect();
        let (lo, hi) = (numbers[0], numbers[numbers.len() - 1]);
        let log = lo > 0.0 && hi / lo >= 20.0;
        let positions = numbers.iter().map(|&v| if log { v.log10() } else { v }).collect();
        GridAxis { labels, positions, log, numeric: true }
    }

    /// The smallest distance between neighbouring values (1 with a single value).
    fn gap(&self) -> f64 {
        self.positions
            .windows(2)
            .map(|w| w[1] - w[0])
            .filter(|d| *d > 0.0)
            .reduce(f64::min)
            .unwrap_or(1.0)
    }

    fn x_range(&self) -> Range<f64> {
        let (lo, hi) = (self.positions[0], self.positions[self.positions.len() - 1]);
        // Half a slot either side of categories; on a number line at least 8% of the span.
        let pad = if self.numeric { (0.5 * self.gap()).max(0.08 * (hi - lo)) } else { 0.5 };
        lo - pad..hi + pad
    }

    fn label_at(&self, x: f64) -> String {
        let nearest = self
            .positions
            .iter()
            .enumerate()
            .min_by(|a, b| (a.1 - x).abs().total_cmp(&(b.1 - x).abs()));
        nearest.map_or(String::new(), |(i, _)| self.labels[i].clone())
    }
}

/// The distinct values of `key` in grid order.
fn key_values(rows: &[ConfigSummary], key: &str) -> Vec<String> {
    let mut by_position: Vec<&ConfigSummary> = rows.iter().collect();
    by_position.sort_by_key(|r| r.position);
    let mut values: Vec<String> = Vec::new();
    for v in by_position.iter().filter_map(|r| r.varying.get(key)) {
        if !values.contains(v) {
            values.push(v.clone());
        }
    }
    values
}

/// Points of a chart, (x, y).
type Points = Vec<(f64, f64)>;

/// (x, OOF RMSE) of each config with results, and (x, mean) per value of `key`.
fn axis_points(rows: &[ConfigSummary], key: &str, axis: &GridAxis) -> (Points, Points) {
    let mut groups: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for r in rows {
        if let (Some(v), Some(oof)) = (r.varying.get(key), r.oof_rmse) {
            if let Some(i) = axis.labels.iter().position(|l| l == v) {
                groups.entry(i).or_default().push(oof);
            }
        }
    }
    // Configs sharing a value are spread a little sideways so equal RMSEs do not hide each other;
    // less on a number line, where the x position itself carries meaning.
    let spread = if axis.numeric { 0.12 } else { 0.3 } * axis.gap();
    let mut points = Vec::new();
    let mut means = Vec::new();
    for (i, values) in &groups {
        let x = axis.positions[*i];
        let step = if values.len() > 1 { spread / (values.len() - 1) as f64 } else { 0.0 };
        let first = x - step * (values.len() - 1) as f64 / 2.0;
        points.extend(values.iter().enumerate().map(|(j, &y)| (first + step * j as f64, y)));
        means.push((x, values.iter().sum::<f64>() / values.len() as f64));
    }
    (points, means)
}

/// Pooled OOF RMSE of every config against one grid key, with the mean per value.
pub(crate) fn axis_figure(rows: &[ConfigSummary], key: &str) -> anyhow::Result<Figure> {
    let axis = GridAxis::new(key_values(rows, key));
    let (points, means) = axis_points(rows, key, &axis);
    let svg = if points.is_empty() { None } else { Some(axis_chart(&axis, key, &points, &means)?) };
    let mean_shape = if axis.numeric { "line" } else { "horizontal line" };
    let scale = if axis.log { " The x axis is logarithmic." } else { "" };
    Ok(Figure {
        title: format!("Pooled OOF RMSE by {key}"),
        svg,
        legend: vec![(color(0), "one config".into()), (color(1), format!("mean over the configs with this value ({mean_shape})"))],
        caption: format!(
            "Pooled out-of-fold RMSE of every config against its value of {key} (lower is better): one point per \
             config, spread a little sideways where several share a value, and the mean per value.{scale}"
        ),
    })
}

fn axis_chart(
    axis: &GridAxis,
    key: &str,
    points: &[(f64, f64)],
    means: &[(f64, f64)],
) -> anyhow::Result<String> {
    let label = |x: f64| axis.label_at(x);
    let axes = Axes {
        x: axis.x_range(),
        x_ticks: axis.positions.clone(),
        x_label: &label,
        y: padded(points.iter().map(|p| p.1)),
        y_whole: false,
        x_desc: key,
        y_desc: "pooled OOF RMSE",
    };
    let half = 0.3 * axis.gap();
    render_svg(|root| {
        let mut chart = chart(root, &axes)?;
        let mean_style = ShapeStyle::from(color(1)).stroke_width(3);
        if axis.numeric {
            chart.draw_series(LineSeries::new(means.iter().copied(), mean_style))?;
        } else {
            chart.draw_series(
                means.iter().map(|&(x, y)| {
                    PathElement::new(vec![(x - half, y), (x + half, y)], mean_style)
                }),
            )?;
        }
        let dot = color(0).mix(0.75).filled();
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 5, dot)))?;
        Ok(())
    })
}

/// Validation RMSE per epoch of each finished fold of one config.
fn learning_curves(
    store: &Store,
    config_id: &str,
) -> anyhow::Result<BTreeMap<usize, Vec<(f64, f64)>>> {
    let mut curves: BTreeMap<usize, Vec<(f64, f64)>> = BTreeMap::new();
    for (fold, epoch, rmse) in store.learning_curves(config_id)? {
        curves.entry(fold).or_default().push((epoch as f64, rmse));
    }
    Ok(curves)
}

pub(crate) fn learning_curve_figure(
    store: &Store,
    best: Option<&ConfigSummary>,
) -> anyhow::Result<Figure> {
    let curves = match best {
        Some(b) => learning_curves(store, &b.id)?,
        None => BTreeMap::new(),
    };
    let svg = if curves.is_empty() { None } else { Some(learning_curve_chart(&curves)?) };
    let who = best.map_or(String::new(), |b| format!(" {} ({})", b.id, b.label));
    Ok(Figure {
        title: "Learning curves of the best config".into(),
        svg,
        legend: curves.keys().map(|&fold| (color(fold), format!("fold {fold}"))).collect(),
        caption: format!(
            "Validation RMSE after each epoch of the best config{who} (the first of the results table), one line per fold. \
             Early stopping can end a fold's line before the others."
        ),
    })
}

pub(crate) fn learning_curve_chart(
    curves: &BTreeMap<usize, Vec<(f64, f64)>>,
) -> anyhow::Result<String> {
    let all = || curves.values().flatten();
    let (first, last) =
        all().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), p| (l.min(p.0), h.max(p.0)));
    // At most about a dozen epoch ticks, on whole epochs.
    let step = ((last - first) / 12.0).ceil().max(1.0);
    let ticks: Vec<f64> =
        (0..).map(|i| first + step * i as f64).take_while(|&e| e <= last).collect();
    let label = |x: f64| format!("{}", x.round());
    let axes = Axes {
        x: first - 0.3..last + 0.3,
        x_ticks: ticks,
        x_label: &label,
        y: padded(all().map(|p| p.1)),
        y_whole: false,
        x_desc: "epoch",
        y_desc: "validation RMSE",
    };
    render_svg(|root| {
        let mut chart = chart(root, &axes)?;
        for (&fold, points) in curves {
            let c = color(fold);
            chart.draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))?;
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
        }
        Ok(())
    })
}

/// Counts per whole score 0..10 of the rounded pooled OOF predictions and of their true scores.
fn score_histograms(oof: &[(f64, f64)]) -> (Vec<usize>, Vec<usize>) {
    let (mut predicted, mut truth) = (vec![0; NUM_BINS], vec![0; NUM_BINS]);
    for &(t, p) in oof {
        truth[score_bin(t as f32)] += 1;
        predicted[score_bin(p as f32)] += 1;
    }
    (predicted, truth)
}

pub(crate) fn histogram_figure(
    store: &Store,
    best: Option<&ConfigSummary>,
) -> anyhow::Result<Figure> {
    let oof = match best {
        Some(b) => store.oof_predictions(&b.id)?,
        None => Vec::new(),
    };
    let (predicted, truth) = score_histograms(&oof);
    let count = |c: &Vec<usize>| c.iter().map(|&n| Some(n as f64)).collect::<Vec<_>>();
    let svg = if oof.is_empty() {
        None
    } else {
        Some(grouped_bars(&GroupedBars {
            categories: (0..NUM_BINS).map(|s| s.to_string()).collect(),
            series: vec![count(&predicted), count(&truth)],
            counts: true,
            x_desc: "score (predictions rounded to whole scores)",
            y_desc: "records",
        })?)
    };
    let who = best.map_or(String::new(), |b| format!(" {}", b.id));
    Ok(Figure {
        title: "Predicted and training scores".into(),
        svg,
        legend: vec![(color(0), "out-of-fold prediction, rounded".into()), (color(1), "training score".into())],
        caption: format!(
            "How often each score is predicted by the best config{who} (its pooled out-of-fold predictions, rounded to \
             0..10) next to how often it occurs in the training data ({} records, each once).",
            oof.len()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
