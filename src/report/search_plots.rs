//! The report's search section (issue 12): how a random or TPE study went (optimisation
//! history), which axes mattered (PED-ANOVA importance) and where on each axis the good
//! trials sit (slice plots).
//!
//! Everything here is a pure function of plain trial data ([`TrialPoint`]) and the search
//! space, not of the store: the report reads the trials once and hands them in, so these
//! charts are tested without a database and do not care how the trials were stored.

use std::ops::Range;

use plotters::prelude::*;
use toml::Value;

use super::figures::Figure;
use super::html::escape;
use super::svg::{chart, color, grouped_bars, padded, render_svg, Axes, Chart, GroupedBars};
use crate::search::importance::ped_anova;
use crate::search::TrialPoint;
use crate::search::{Axis, Domain, Space, Trial};

/// Palette slots: the same meaning on every chart of the section.
const COMPLETE: usize = 0;
const BEST: usize = 1;
const PRUNED: usize = 2;
/// Marker sizes in pixels.
const DOT: u32 = 5;
const TRIANGLE: u32 = 7;

/// The search section of the report: a heading, a line of facts and the charts (history,
/// importance, one slice plot per axis). Empty when there are no trials. `space` is the
/// sweep's search space; without one (a grid sweep) each key the trials' points vary is
/// taken as a categorical axis of the values seen.
pub fn render_search_section(
    trials: &[TrialPoint],
    space: Option<&Space>,
) -> anyhow::Result<String> {
    if trials.is_empty() {
        return Ok(String::new());
    }
    let derived = space_from_points(trials);
    let space = space.or(derived.as_ref());
    let mut figures = vec![history_figure(trials)?, importance_figure(trials, space)?];
    for axis in space.map_or(&[][..], |s| &s.axes[..]) {
        figures.push(slice_figure(trials, axis)?);
    }
    let mut html = format!(
        "<h2>Search</h2>\n<p class=\"facts\">{}</p>\n<div class=\"charts\">\n",
        escape(&facts(trials))
    );
    for (figure, empty) in figures {
        html += &figure.html_or(&empty);
    }
    html += "</div>\n";
    Ok(html)
}

/// "40 trials: 31 complete, 7 pruned, 2 without a value. Best: trial 17 (0.8123)".
/// "Without a value" rather than "failed": the caller may hand in running or diverged
/// trials with no value, and this module cannot tell them apart.
fn facts(trials: &[TrialPoint]) -> String {
    let complete = trials.iter().filter(|t| t.is_complete()).count();
    let pruned = trials.iter().filter(|t| t.pruned).count();
    let other = trials.len() - complete - pruned;
    let mut text = format!("{} trials: {complete} complete, {pruned} pruned", trials.len());
    if other > 0 {
        text += &format!(", {other} without a value (failed, diverged or not finished)");
    }
    if let Some(best) = best_trial(trials) {
        text += &format!(". Best: trial {} ({:.4})", best.number, best.value.unwrap_or(f64::NAN));
    }
    text
}

/// The complete trial with the lowest objective (the earliest on ties).
fn best_trial(trials: &[TrialPoint]) -> Option<&TrialPoint> {
    let mut complete: Vec<&TrialPoint> = trials.iter().filter(|t| t.is_complete()).collect();
    complete.sort_by_key(|t| t.number);
    complete.into_iter().reduce(|best, t| if t.value < best.value { t } else { best })
}

/// A categorical axis per key of the trials' points, in first-seen order, with its values in
/// first-seen order (numeric order when all are numbers); `None` when no point has a key.
pub fn space_from_points(trials: &[TrialPoint]) -> Option<Space> {
    let mut axes: Vec<(String, Vec<Value>)> = Vec::new();
    for (key, value) in trials.iter().flat_map(|t| &t.point) {
        let index = match axes.iter().position(|(k, _)| k == key) {
            Some(i) => i,
            None => {
                axes.push((key.clone(), Vec::new()));
                axes.len() - 1
            }
        };
        if !axes[index].1.contains(value) {
            axes[index].1.push(value.clone());
        }
    }
    let axes = axes
        .into_iter()
        .map(|(key, mut values)| {
            if let Some(numbers) = values.iter().map(number).collect::<Option<Vec<f64>>>() {
                let mut order: Vec<usize> = (0..values.len()).collect();
                order.sort_by(|&a, &b| numbers[a].total_cmp(&numbers[b]));
                values = order.into_iter().map(|i| values[i].clone()).collect();
            }
            Axis { key, domain: Domain::Categorical(values) }
        })
        .collect();
    Space::new(axes).ok()
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Float(x) => Some(*x),
        Value::Integer(i) => Some(*i as f64),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Optimisation history

/// The points of the optimisation history chart: (trial number, objective).
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// Complete trials.
    pub complete: Vec<(f64, f64)>,
    /// Pruned trials with a last value.
    pub pruned: Vec<(f64, f64)>,
    /// The best objective among the complete trials so far, at each complete trial. Pruned
    /// trials do not count: their value covers fewer epochs or folds than a complete one's.
    pub best_so_far: Vec<(f64, f64)>,
}

/// The history of a study, in trial order.
pub fn history(trials: &[TrialPoint]) -> History {
    let mut ordered: Vec<&TrialPoint> = trials.iter().collect();
    ordered.sort_by_key(|t| t.number);
    let at = |t: &TrialPoint| (t.number as f64, t.value.unwrap_or(f64::NAN));
    let complete: Vec<(f64, f64)> =
        ordered.iter().filter(|t| t.is_complete()).map(|t| at(t)).collect();
    let pruned = ordered.iter().filter(|t| t.is_pruned_with_value()).map(|t| at(t)).collect();
    let mut best = f64::INFINITY;
    let best_so_far = complete
        .iter()
        .map(|&(x, y)| {
            best = best.min(y);
            (x, best)
        })
        .collect();
    History { complete, pruned, best_so_far }
}

/// A figure and the note shown instead of its chart when there is nothing to draw.
type NotedFigure = (Figure, String);

fn history_figure(trials: &[TrialPoint]) -> anyhow::Result<NotedFigure> {
    let history = history(trials);
    let unplotted = trials.len() - history.complete.len() - history.pruned.len();
    let svg = if history.complete.is_empty() && history.pruned.is_empty() {
        None
    } else {
        Some(history_chart(&history)?)
    };
    let unplotted = match unplotted {
        0 => String::new(),
        1 => " 1 trial without a value (failed, not finished, or pruned before it had one) is \
               not shown."
            .into(),
        n => format!(
            " {n} trials without a value (failed, not finished, or pruned before they had one) \
             are not shown."
        ),
    };
    let figure = Figure {
        title: "Optimisation history".into(),
        svg,
        legend: vec![
            (color(COMPLETE), "complete trial (dot)".into()),
            (color(PRUNED), "pruned trial, its last value (triangle)".into()),
            (color(BEST), "best complete trial so far (line)".into()),
        ],
        caption: format!(
            "The objective of each trial in the order they started (lower is better), and the best \
             objective among the complete trials up to each one. A pruned trial's value covers only \
             the epochs or folds it ran, so it does not count towards the best.{unplotted}"
        ),
    };
    Ok((figure, "No trial has a value yet.".into()))
}

fn history_chart(history: &History) -> anyhow::Result<String> {
    let xs = || history.complete.iter().chain(&history.pruned).map(|p| p.0);
    let (first, last) =
        xs().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| (l.min(x), h.max(x)));
    let step = ((last - first) / 12.0).ceil().max(1.0);
    let ticks: Vec<f64> =
        (0..).map(|i| first + step * i as f64).take_while(|&t| t <= last).collect();
    let label = |x: f64| format!("{}", x.round());
    let axes = Axes {
        x: first - 0.5..last + 0.5,
        x_ticks: ticks,
        x_label: &label,
        y: padded(history.complete.iter().chain(&history.pruned).map(|p| p.1)),
        y_whole: false,
        x_desc: "trial",
        y_desc: "objective",
    };
    render_svg(|root| {
        let mut chart = chart(root, &axes)?;
        chart.draw_series(LineSeries::new(
            stepped(&history.best_so_far),
            color(BEST).stroke_width(3),
        ))?;
        draw_markers(&mut chart, &history.complete, &history.pruned)
    })
}

/// A line that holds each value until the next point (the best so far changes in steps).
fn stepped(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(points.len() * 2);
    for &(x, y) in points {
        if let Some(&(_, previous)) = out.last() {
            out.push((x, previous));
        }
        out.push((x, y));
    }
    out
}

/// Dots for complete trials, triangles for pruned ones (also told apart by colour, so the
/// chart reads in grey print and for colour-blind readers).
fn draw_markers(
    chart: &mut Chart,
    complete: &[(f64, f64)],
    pruned: &[(f64, f64)],
) -> anyhow::Result<()> {
    let dot = color(COMPLETE).mix(0.8).filled();
    chart.draw_series(complete.iter().map(|&p| Circle::new(p, DOT, dot)))?;
    let triangle = color(PRUNED).mix(0.8).filled();
    chart.draw_series(pruned.iter().map(|&p| TriangleMarker::new(p, TRIANGLE, triangle)))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Parameter importance

/// PED-ANOVA importance of each axis from the complete trials, largest first, summing to 1;
/// `None` with fewer than 2 complete trials.
pub fn importances(trials: &[TrialPoint], space: &Space) -> Option<Vec<(String, f64)>> {
    let trials: Vec<Trial> = trials
        .iter()
        .map(|t| Trial { point: t.point.clone(), value: t.value, pruned: t.pruned })
        .collect();
    let mut importance = ped_anova(space, &trials)?;
    importance.sort_by(|a, b| b.1.total_cmp(&a.1));
    Some(importance)
}

fn importance_figure(trials: &[TrialPoint], space: Option<&Space>) -> anyhow::Result<NotedFigure> {
    let importance = space.and_then(|s| importances(trials, s));
    let svg = match &importance {
        None => None,
        Some(bars) => Some(grouped_bars(&GroupedBars {
            categories: bars.iter().map(|(key, _)| key.clone()).collect(),
            series: vec![bars.iter().map(|(_, v)| Some(*v)).collect()],
            counts: false,
            x_desc: "axis",
            y_desc: "importance (sums to 1)",
        })?),
    };
    let complete = trials.iter().filter(|t| t.is_complete()).count();
    let figure = Figure {
        title: "Parameter importance".into(),
        svg,
        legend: Vec::new(),
        caption: "PED-ANOVA (Watanabe et al. 2023): how differently the best 10% of the complete \
                  trials are spread over each axis than all complete trials; the shares sum to 1. \
                  Pruned and failed trials are left out."
            .into(),
    };
    let note = format!("Needs at least 2 complete trials ({complete} so far).");
    Ok((figure, note))
}

// ---------------------------------------------------------------------------------------------
// Slice plots

/// One axis's slice plot: where each trial sits on the axis and what it scored.
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    /// (x, objective) of complete trials; x is the value, its log10 on a log axis, the
    /// choice's index (spread a little sideways by trial number) on a categorical one.
    pub complete: Vec<(f64, f64)>,
    pub pruned: Vec<(f64, f64)>,
    /// Tick positions and their labels.
    pub ticks: Vec<(f64, String)>,
    pub x: Range<f64>,
    pub log: bool,
}

/// The slice plot of `axis`. Trials whose value lies outside the axis's domain (run before
/// the space changed) are left out.
pub fn slice(trials: &[TrialPoint], axis: &Axis) -> Slice {
    let place = |t: &TrialPoint| {
        let (_, value) = t.point.iter().find(|(k, _)| *k == axis.key)?;
        let x = position(&axis.domain, value)?;
        let x = match axis.domain {
            // Golden-ratio offsets spread trials sharing a choice evenly and the same way on
            // every render.
            Domain::Categorical(_) => x + ((t.number as f64 * 0.618_034).fract() - 0.5) * 0.4,
            _ => x,
        };
        Some((x, t.value?))
    };
    let complete = trials.iter().filter(|t| t.is_complete()).filter_map(place).collect();
    let pruned = trials.iter().filter(|t| t.is_pruned_with_value()).filter_map(place).collect();
    let (ticks, x, log) = match &axis.domain {
        Domain::Categorical(choices) => {
            let ticks = choices.iter().enumerate().map(|(i, c)| (i as f64, label(c))).collect();
            (ticks, -0.5..choices.len() as f64 - 0.5, false)
        }
        Domain::Float { min, max, log } => numeric_axis(*min, *max, *log),
        Domain::Int { min, max, log } => numeric_axis(*min as f64, *max as f64, *log),
    };
    Slice { complete, pruned, ticks, x, log }
}

/// Where `value` goes on the x axis of a slice plot; `None` outside the domain.
fn position(domain: &Domain, value: &Value) -> Option<f64> {
    let x = domain.to_internal(value)?;
    Some(match domain {
        Domain::Float { log: true, .. } | Domain::Int { log: true, .. } => x / 10f64.ln(),
        _ => x,
    })
}

/// Ticks, x range and scale of a numeric axis; a log axis is drawn on log10 of the value.
fn numeric_axis(min: f64, max: f64, log: bool) -> (Vec<(f64, String)>, Range<f64>, bool) {
    let to_x = |v: f64| if log { v.log10() } else { v };
    let values = if log { log_ticks(min, max) } else { linear_ticks(min, max) };
    let ticks = values.into_iter().map(|v| (to_x(v), short(v))).collect();
    let (lo, hi) = (to_x(min), to_x(max));
    let pad = 0.04 * (hi - lo);
    (ticks, lo - pad..hi + pad, log)
}

/// About six round values (1, 2, 2.5 or 5 times a power of ten apart) in `[min, max]`.
fn linear_ticks(min: f64, max: f64) -> Vec<f64> {
    let raw = (max - min) / 6.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (min / step).ceil() as i64;
    let last = (max / step).floor() as i64;
    // Through a decimal string, so 3 * 0.1 reads 0.3 and not 0.30000000000000004.
    let digits = (-step.log10().floor()).max(0.0) as usize + 1;
    (first..=last).map(|k| format!("{:.digits$}", k as f64 * step).parse().unwrap()).collect()
}

/// 1, 2 and 5 times each power of ten in `[min, max]` (min > 0); linear ticks when that
/// gives fewer than three (a range within one decade).
fn log_ticks(min: f64, max: f64) -> Vec<f64> {
    let (low, high) = (min.log10().floor() as i32, max.log10().ceil() as i32);
    let ticks: Vec<f64> = (low..=high)
        .flat_map(|e| [1, 2, 5].map(|m| format!("{m}e{e}").parse::<f64>().unwrap()))
        .filter(|&v| v >= min * (1.0 - 1e-9) && v <= max * (1.0 + 1e-9))
        .collect();
    if ticks.len() >= 3 {
        ticks
    } else {
        linear_ticks(min, max)
    }
}

/// A number as short as it reads well: `0.3`, `64`, `1e-4`.
fn short(v: f64) -> String {
    if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e6) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// A categorical value as written in the sweep file, strings without their quotes.
fn label(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Float(x) => short(*x),
        other => other.to_string(),
    }
}

fn slice_figure(trials: &[TrialPoint], axis: &Axis) -> anyhow::Result<NotedFigure> {
    let slice = slice(trials, axis);
    let svg = if slice.complete.is_empty() && slice.pruned.is_empty() {
        None
    } else {
        Some(slice_chart(&slice, &axis.key)?)
    };
    let scale = if slice.log { " The x axis is logarithmic." } else { "" };
    let spread = match axis.domain {
        Domain::Categorical(_) => " Trials sharing a value are spread a little sideways.",
        _ => "",
    };
    let figure = Figure {
        title: format!("Objective by {}", axis.key),
        svg,
        legend: vec![
            (color(COMPLETE), "complete trial (dot)".into()),
            (color(PRUNED), "pruned trial, its last value (triangle)".into()),
        ],
        caption: format!(
            "The objective of each trial against its value of {} (lower is better).{spread}{scale}",
            axis.key
        ),
    };
    Ok((figure, "No trial has a value yet.".into()))
}

fn slice_chart(slice: &Slice, key: &str) -> anyhow::Result<String> {
    let label = |x: f64| {
        let nearest = slice.ticks.iter().min_by(|a, b| (a.0 - x).abs().total_cmp(&(b.0 - x).abs()));
        nearest.map_or(String::new(), |t| t.1.clone())
    };
    let axes = Axes {
        x: slice.x.clone(),
        x_ticks: slice.ticks.iter().map(|t| t.0).collect(),
        x_label: &label,
        y: padded(slice.complete.iter().chain(&slice.pruned).map(|p| p.1)),
        y_whole: false,
        x_desc: key,
        y_desc: "objective",
    };
    render_svg(|root| {
        let mut chart = chart(root, &axes)?;
        draw_markers(&mut chart, &slice.complete, &slice.pruned)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_are_round_and_inside() {
        assert_eq!(linear_ticks(0.0, 0.5), [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]);
        assert_eq!(linear_ticks(8.0, 64.0), [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]);
    }

    #[test]
    fn log_ticks_use_one_two_five_and_fall_back_within_a_decade() {
        assert_eq!(log_ticks(1e-4, 3e-3), [1e-4, 2e-4, 5e-4, 1e-3, 2e-3]);
        assert_eq!(short(2e-4), "2e-4");
        assert_eq!(log_ticks(2.0, 4.0), linear_ticks(2.0, 4.0));
    }

    #[test]
    fn stepped_holds_each_value_until_the_next_point() {
        let line = stepped(&[(0.0, 3.0), (2.0, 1.0), (5.0, 1.0)]);
        assert_eq!(line, [(0.0, 3.0), (2.0, 3.0), (2.0, 1.0), (5.0, 1.0), (5.0, 1.0)]);
    }
}
