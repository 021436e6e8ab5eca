//! The report's figures, each a titled SVG: score histograms, per-score RMSE, results along
//! each grid axis, learning curves and the probe rows' predictions.

use std::collections::BTreeMap;
use std::ops::Range;

use plotters::prelude::*;

use super::html::escape;
use super::html::{scores_present, TOP};
use super::svg::chart;
use super::svg::color;
use super::svg::css;
use super::svg::grouped_bars;
use super::svg::padded;
use super::svg::render_svg;
use super::svg::Axes;
use super::svg::GroupedBars;
use crate::data::score_bin;
use crate::results::{ConfigSummary, SortKey};
use crate::sampling::NUM_BINS;
use crate::store::Store;

/// Where the best config puts probe rows (a validation text with another metric) next to
/// real validation rows: a model that ignores the metric predicts 9 for both.
pub(super) fn probe_histogram_figure(
    store: &Store,
    best: Option<&ConfigSummary>,
) -> anyhow::Result<Figure> {
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
pub(super) struct GridAxis {
    pub(super) labels: Vec<String>,
    pub(super) positions: Vec<f64>,
    /// Numbers spanning decades (learning rates) are placed by their log10.
    pub(super) log: bool,
    pub(super) numeric: bool,
}

impl GridAxis {
    /// Numbers go on a number line in numeric order; anything else is a category, in grid order.
    pub(super) fn new(mut labels: Vec<String>) -> GridAxis {
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
    pub(super) fn gap(&self) -> f64 {
        self.positions
            .windows(2)
            .map(|w| w[1] - w[0])
            .filter(|d| *d > 0.0)
            .reduce(f64::min)
            .unwrap_or(1.0)
    }

    pub(super) fn x_range(&self) -> Range<f64> {
        let (lo, hi) = (self.positions[0], self.positions[self.positions.len() - 1]);
        // Half a slot either side of categories; on a number line at least 8% of the span.
        let pad = if self.numeric { (0.5 * self.gap()).max(0.08 * (hi - lo)) } else { 0.5 };
        lo - pad..hi + pad
    }

    pub(super) fn label_at(&self, x: f64) -> String {
        let nearest = self
            .positions
            .iter()
            .enumerate()
            .min_by(|a, b| (a.1 - x).abs().total_cmp(&(b.1 - x).abs()));
        nearest.map_or(String::new(), |(i, _)| self.labels[i].clone())
    }
}

/// The distinct values of `key` in grid order.
pub(super) fn key_values(rows: &[ConfigSummary], key: &str) -> Vec<String> {
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
pub(super) type Points = Vec<(f64, f64)>;

/// (x, value by `sort`) of each config with results, and (x, mean) per value of `key`.
pub(super) fn axis_points(
    rows: &[ConfigSummary],
    key: &str,
    axis: &GridAxis,
    sort: SortKey,
) -> (Points, Points) {
    let mut groups: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for r in rows {
        if let (Some(v), Some(value)) = (r.varying.get(key), sort.value(r)) {
            if let Some(i) = axis.labels.iter().position(|l| l == v) {
                groups.entry(i).or_default().push(value);
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

/// What a chart's axis calls the figure a sort key reads.
pub(crate) fn criterion_label(sort: SortKey) -> &'static str {
    match sort {
        SortKey::Oof => "pooled OOF RMSE",
        SortKey::Mean => "mean fold RMSE",
        SortKey::Macro => "macro RMSE",
        SortKey::Probe => "probe RMSE",
        SortKey::Shifted => "shifted RMSE",
    }
}

/// Every config's value by `sort` (the results table's criterion: with probes, the shifted
/// RMSE) against one grid key, with the mean per value.
pub(crate) fn axis_figure(
    rows: &[ConfigSummary],
    key: &str,
    sort: SortKey,
) -> anyhow::Result<Figure> {
    let axis = GridAxis::new(key_values(rows, key));
    let (points, means) = axis_points(rows, key, &axis, sort);
    let label = criterion_label(sort);
    let svg = if points.is_empty() {
        None
    } else {
        Some(axis_chart(&axis, (key, label), &points, &means)?)
    };
    let mean_shape = if axis.numeric { "line" } else { "horizontal line" };
    let scale = if axis.log { " The x axis is logarithmic." } else { "" };
    let mut title = label.to_string();
    title[..1].make_ascii_uppercase();
    Ok(Figure {
        title: format!("{title} by {key}"),
        svg,
        legend: vec![(color(0), "one config".into()), (color(1), format!("mean over the configs with this value ({mean_shape})"))],
        caption: format!(
            "The {label} of every config (the results table's criterion) against its value of {key} (lower is \
             better): one point per config, spread a little sideways where several share a value, and the mean per \
             value.{scale}"
        ),
    })
}

pub(super) fn axis_chart(
    axis: &GridAxis,
    (key, y_desc): (&str, &str),
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
        y_desc,
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
pub(super) fn learning_curves(
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
pub(super) fn score_histograms(oof: &[(f64, f64)]) -> (Vec<usize>, Vec<usize>) {
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
