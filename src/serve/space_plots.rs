//! Where in the grid or search space the good configs are: parallel coordinates over every
//! axis, coloured by the objective, and a contour of the objective over two numeric axes.
//!
//! An axis is numeric when every value it takes parses as a finite number (log-scaled when
//! all are positive and span two decades or more), else categorical in sorted order.

use std::fmt::Write as _;

use super::plots::{finite_range, objective_color};
use crate::report::html::escape;

const WIDTH: f64 = 720.0;

/// One config as the space plots see it: its value on each axis (as shown in the table) and
/// its objective (None: no result yet; drawn grey).
#[derive(Debug, Clone, PartialEq)]
pub struct SpacePoint {
    pub values: Vec<Option<String>>,
    pub objective: Option<f64>,
    pub href: String,
    pub title: String,
}

/// How one axis places its values.
#[derive(Debug, Clone, PartialEq)]
pub enum AxisKind {
    Numeric { lo: f64, hi: f64, log: bool },
    Categorical(Vec<String>),
}

impl AxisKind {
    /// The kind of axis `index` over the points' values.
    pub fn of(points: &[SpacePoint], index: usize) -> AxisKind {
        let values: Vec<&str> =
            points.iter().filter_map(|p| p.values.get(index)?.as_deref()).collect();
        let numbers: Option<Vec<f64>> =
            values.iter().map(|v| v.parse::<f64>().ok().filter(|n| n.is_finite())).collect();
        match numbers.filter(|n| !n.is_empty()).and_then(|n| finite_range(n.into_iter())) {
            Some((lo, hi)) => {
                let log = lo > 0.0 && hi / lo >= 100.0;
                AxisKind::Numeric { lo, hi, log }
            }
            None => {
                let mut names: Vec<String> = values.iter().map(|v| v.to_string()).collect();
                names.sort();
                names.dedup();
                AxisKind::Categorical(names)
            }
        }
    }

    /// Where a value sits, 0 (bottom) to 1 (top); None if it is not one of the axis's.
    pub fn position(&self, value: &str) -> Option<f64> {
        match self {
            AxisKind::Numeric { lo, hi, log } => {
                let v = value.parse::<f64>().ok().filter(|v| v.is_finite())?;
                let (v, lo, hi) =
                    if *log { (v.log10(), lo.log10(), hi.log10()) } else { (v, *lo, *hi) };
                Some(if hi > lo { ((v - lo) / (hi - lo)).clamp(0.0, 1.0) } else { 0.5 })
            }
            AxisKind::Categorical(names) => {
                let i = names.iter().position(|n| n == value)?;
                Some(if names.len() > 1 { i as f64 / (names.len() - 1) as f64 } else { 0.5 })
            }
        }
    }

    fn labels(&self) -> Vec<(f64, String)> {
        match self {
            AxisKind::Numeric { lo, hi, .. } => vec![(0.0, short(*lo)), (1.0, short(*hi))],
            AxisKind::Categorical(names) => {
                names.iter().map(|n| (self.position(n).unwrap_or(0.5), n.clone())).collect()
            }
        }
    }

    pub fn is_numeric(&self) -> bool {
        matches!(self, AxisKind::Numeric { .. })
    }
}

fn short(value: f64) -> String {
    let a = value.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{value:.1e}")
    } else {
        let text = format!("{value:.4}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Where an objective sits between the best (0) and worst (1) finite ones.
fn objective_scale(points: &[SpacePoint]) -> impl Fn(Option<f64>) -> Option<f64> {
    let range = finite_range(points.iter().filter_map(|p| p.objective));
    move |value| {
        let (lo, hi) = range?;
        let v = value.filter(|v| v.is_finite())?;
        Some(if hi > lo { (v - lo) / (hi - lo) } else { 0.5 })
    }
}

fn color_of(t: Option<f64>) -> String {
    t.map_or("#c8c8c8".to_string(), objective_color)
}

/// Parallel coordinates: one vertical axis per name, then the objective; one line per
/// point, best drawn last (on top). None without points or axes.
pub fn parallel_coordinates(
    names: &[String],
    points: &[SpacePoint],
    objective: &str,
) -> Option<String> {
    if names.is_empty() || points.is_empty() {
        return None;
    }
    let kinds: Vec<AxisKind> = (0..names.len()).map(|i| AxisKind::of(points, i)).collect();
    let scale = objective_scale(points);
    let (top, bottom, height) = (28.0, 236.0, 270.0);
    let step = (WIDTH - 120.0) / names.len() as f64;
    let axis_x = |i: usize| 60.0 + step * i as f64;
    let y_of = |t: f64| bottom - t * (bottom - top);
    let mut svg = svg_open(height, "parallel coordinates");
    let mut order: Vec<&SpacePoint> = points.iter().collect();
    // Worst first and results-less first, so the best lines are on top.
    order.sort_by(|a, b| {
        let key = |p: &SpacePoint| scale(p.objective).map_or(f64::INFINITY, |t| t);
        key(b).total_cmp(&key(a))
    });
    for p in order {
        let t = scale(p.objective);
        let mut ys: Vec<Option<f64>> = kinds
            .iter()
            .zip(&p.values)
            .map(|(k, v)| v.as_deref().and_then(|v| k.position(v)))
            .collect();
        ys.push(Some(1.0 - t.unwrap_or(1.0)));
        let coords: Vec<String> = ys
            .iter()
            .enumerate()
            .filter_map(|(i, y)| y.map(|y| format!("{:.1},{:.1}", axis_x(i), y_of(y))))
            .collect();
        let _ = writeln!(
            svg,
            "<a href=\"{}\"><polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.4\" \
             opacity=\"0.8\"><title>{}</title></polyline></a>",
            escape(&p.href),
            coords.join(" "),
            color_of(t),
            escape(&p.title)
        );
    }
    let objective_kind = match finite_range(points.iter().filter_map(|p| p.objective)) {
        // Best at the top: the objective axis runs from worst (bottom) to best.
        Some((lo, hi)) => vec![(0.0, short(hi)), (1.0, short(lo))],
        None => Vec::new(),
    };
    let all_labels: Vec<(String, Vec<(f64, String)>)> = names
        .iter()
        .zip(&kinds)
        .map(|(n, k)| (n.clone(), k.labels()))
        .chain(std::iter::once((format!("{objective} (best on top)"), objective_kind)))
        .collect();
    let last = all_labels.len() - 1;
    for (i, (name, labels)) in all_labels.iter().enumerate() {
        let x = axis_x(i);
        // The outer axes' names grow inwards: centred, the objective's ran past the edge.
        let anchor = match i {
            0 => "start",
            i if i == last => "end",
            _ => "middle",
        };
        let _ = writeln!(
            svg,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top}\" y2=\"{bottom}\" stroke=\"#444\"/>\
             <text x=\"{x:.1}\" y=\"16\" text-anchor=\"{anchor}\" font-weight=\"600\">{}</text>",
            escape(name)
        );
        for (t, label) in labels.iter().take(12) {
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#333\" stroke=\"#fff\" stroke-width=\"3\" \
                 paint-order=\"stroke\">{}</text>",
                x + 4.0,
                y_of(*t) + 4.0,
                escape(label)
            );
        }
    }
    svg += "</svg>\n";
    Some(svg)
}

/// The objective over two numeric axes: each cell of a 24x24 grid coloured by the points
/// near it (inverse squared distance in the plot's own scale), the points on top. None unless
/// both axes are numeric and three points with a finite objective differ on both.
pub fn contour(names: [&str; 2], points: &[SpacePoint], objective: &str) -> Option<String> {
    let kinds = [AxisKind::of(points, 0), AxisKind::of(points, 1)];
    if !kinds.iter().all(AxisKind::is_numeric) {
        return None;
    }
    let placed: Vec<(f64, f64, f64, &SpacePoint)> = points
        .iter()
        .filter_map(|p| {
            let x = kinds[0].position(p.values.first()?.as_deref()?)?;
            let y = kinds[1].position(p.values.get(1)?.as_deref()?)?;
            Some((x, y, p.objective.filter(|v| v.is_finite())?, p))
        })
        .collect();
    let distinct = |f: fn(&(f64, f64, f64, &SpacePoint)) -> f64| {
        let mut v: Vec<f64> = placed.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v.dedup();
        v.len()
    };
    if placed.len() < 3 || distinct(|p| p.0) < 2 || distinct(|p| p.1) < 2 {
        return None;
    }
    let scale = objective_scale(points);
    let (left, top, size) = (70.0, 12.0, 240.0);
    let cells = 24;
    let cell = size / cells as f64;
    let mut svg = svg_open(size + 60.0, "contour of the objective");
    for i in 0..cells {
        for j in 0..cells {
            let (cx, cy) = ((i as f64 + 0.5) / cells as f64, (j as f64 + 0.5) / cells as f64);
            let (mut weight, mut sum) = (0.0, 0.0);
            for (x, y, value, _) in &placed {
                let d2 = (x - cx).powi(2) + (y - cy).powi(2);
                let w = 1.0 / (d2 + 1e-4);
                weight += w;
                sum += w * value;
            }
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"{}\"/>",
                left + i as f64 * cell,
                top + size - (j + 1) as f64 * cell,
                cell + 0.3,
                cell + 0.3,
                color_of(scale(Some(sum / weight)))
            );
        }
    }
    svg.push('\n');
    for (x, y, _, p) in &placed {
        let _ = writeln!(
            svg,
            "<a href=\"{}\"><circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"#222\" stroke=\"#fff\">\
             <title>{}</title></circle></a>",
            escape(&p.href),
            left + x * size,
            top + size - y * size,
            escape(&p.title)
        );
    }
    for (k, (kind, name)) in kinds.iter().zip(names).enumerate() {
        for (t, label) in kind.labels() {
            let (x, y, anchor) = if k == 0 {
                (left + t * size, top + size + 14.0, "middle")
            } else {
                (left - 4.0, top + size - t * size + 4.0, "end")
            };
            let _ = writeln!(
                svg,
                "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\">{}</text>",
                escape(&label)
            );
        }
        let _ = if k == 0 {
            writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
                left + size / 2.0,
                top + size + 30.0,
                escape(name)
            )
        } else {
            writeln!(svg, "<text transform=\"translate(14,{:.1}) rotate(-90)\" text-anchor=\"middle\" fill=\"#555\">{}</text>", top + size / 2.0, escape(name))
        };
    }
    legend(&mut svg, points, objective, left + size + 40.0, top);
    svg += "</svg>\n";
    Some(svg)
}

/// The colour ramp with the best and worst objective.
fn legend(svg: &mut String, points: &[SpacePoint], objective: &str, x: f64, y: f64) {
    let Some((lo, hi)) = finite_range(points.iter().filter_map(|p| p.objective)) else { return };
    for i in 0..20 {
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"14\" height=\"8\" fill=\"{}\"/>",
            y + i as f64 * 8.0,
            objective_color(i as f64 / 19.0)
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\">{} (best)</text><text x=\"{:.1}\" y=\"{:.1}\">{}</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#555\">{}</text>",
        x + 20.0,
        y + 8.0,
        short(lo),
        x + 20.0,
        y + 160.0,
        short(hi),
        x,
        y + 180.0,
        escape(objective)
    );
}

fn svg_open(height: f64, label: &str) -> String {
    format!(
        "<svg class=\"plot\" viewBox=\"0 0 {WIDTH} {height}\" width=\"100%\" role=\"img\" \
         aria-label=\"{label}\" xmlns=\"http://www.w3.org/2000/svg\" font-family=\"sans-serif\" \
         font-size=\"11\">\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(values: [&str; 2], objective: Option<f64>) -> SpacePoint {
        SpacePoint {
            values: values.iter().map(|v| Some(v.to_string())).collect(),
            objective,
            href: "/configs/x".into(),
            title: "t".into(),
        }
    }

    #[test]
    fn axes_are_numeric_log_or_categorical() {
        let points = [point(["1e-4", "a"], Some(1.0)), point(["1e-2", "b"], None)];
        assert_eq!(AxisKind::of(&points, 0), AxisKind::Numeric { lo: 1e-4, hi: 1e-2, log: true });
        let cat = AxisKind::of(&points, 1);
        assert_eq!(cat, AxisKind::Categorical(vec!["a".into(), "b".into()]));
        assert_eq!(AxisKind::of(&points, 0).position("1e-3"), Some(0.5));
        assert_eq!(cat.position("b"), Some(1.0));
        assert_eq!(cat.position("c"), None);
        assert_eq!(AxisKind::of(&points, 0).position("inf"), None);
    }

    #[test]
    fn an_infinite_objective_is_grey_and_never_a_range() {
        let points = [
            point(["1", "1"], Some(1.0)),
            point(["2", "3"], Some(2.0)),
            point(["3", "2"], Some(f64::INFINITY)),
            point(["4", "4"], Some(1.5)),
        ];
        let svg = contour(["a", "b"], &points, "rmse").unwrap();
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        assert_eq!(svg.matches("<circle").count(), 3, "the infinite one is not placed");
        let pc = parallel_coordinates(&["a".into(), "b".into()], &points, "rmse").unwrap();
        assert!(!pc.contains("NaN") && pc.contains("#c8c8c8"), "{pc}");
        assert!(contour(["a", "b"], &points[..2], "rmse").is_none(), "two points are no contour");
    }
}
