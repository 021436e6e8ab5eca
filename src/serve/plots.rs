//! The plots people know from optuna-dashboard, as inline SVG written by hand: a timeline
//! of jobs per device slot, every job's learning curve on one fold, parallel coordinates
//! over the axes, and a contour of the objective over two numeric axes.
//!
//! Pure functions of plain data (no store), so they are tested without a database. No
//! script draws them and nothing comes from the network: they work offline and on a phone
//! (the SVG scales to its box). Every range is taken over finite values only: a diverged
//! job's +inf never reaches an axis (it is drawn up to its last finite epoch and marked).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::report::html::escape;

const WIDTH: f64 = 720.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 34.0;

/// The colour of a job's status, as the pages' tables use it.
pub fn status_color(status: &str) -> &'static str {
    match status {
        "done" => "#59a14f",
        "running" => "#4e79a7",
        "failed" => "#e15759",
        "diverged" => "#b07aa1",
        "pruned" => "#edc948",
        "interrupted" => "#9c755f",
        _ => "#bab0ac",
    }
}

/// Lowest and highest finite value; a single value gets some room around it.
pub fn finite_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    if lo > hi {
        return None;
    }
    if hi > lo {
        return Some((lo, hi));
    }
    let pad = 0.05 * lo.abs().max(1.0);
    Some((lo - pad, hi + pad))
}

/// A linear or logarithmic map from values to pixels.
#[derive(Debug, Clone, Copy)]
struct Scale {
    lo: f64,
    hi: f64,
    log: bool,
    from: f64,
    to: f64,
}

impl Scale {
    fn new((lo, hi): (f64, f64), log: bool, from: f64, to: f64) -> Scale {
        let (lo, hi) = if log { (lo.log10(), hi.log10()) } else { (lo, hi) };
        Scale { lo, hi, log, from, to }
    }

    fn at(&self, value: f64) -> f64 {
        let v = if self.log { value.log10() } else { value };
        let t = if self.hi > self.lo { (v - self.lo) / (self.hi - self.lo) } else { 0.5 };
        self.from + t.clamp(-0.05, 1.05) * (self.to - self.from)
    }

    /// About `n` round values inside the range.
    fn ticks(&self, n: usize) -> Vec<f64> {
        if self.log {
            let (a, b) = (self.lo.floor() as i32, self.hi.ceil() as i32);
            return (a..=b).map(|e| 10f64.powi(e)).filter(|v| self.contains(*v)).collect();
        }
        let raw = (self.hi - self.lo) / n.max(1) as f64;
        if raw <= 0.0 || !raw.is_finite() {
            return vec![self.lo];
        }
        let magnitude = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw);
        let step = step.unwrap_or(10.0 * magnitude);
        let first = (self.lo / step).ceil() as i64;
        let last = (self.hi / step).floor() as i64;
        (first..=last).map(|i| i as f64 * step).collect()
    }

    fn contains(&self, value: f64) -> bool {
        let v = if self.log { value.log10() } else { value };
        v >= self.lo - 1e-9 && v <= self.hi + 1e-9
    }
}

/// A short label for a tick value.
fn tick_label(value: f64) -> String {
    let a = value.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{value:.0e}")
    } else if a >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Blue for the best (lowest) objective through light grey to red for the worst.
pub fn objective_color(t: f64) -> String {
    let stops = [
        (0x21, 0x66, 0xac),
        (0x92, 0xc5, 0xde),
        (0xe0, 0xe0, 0xe0),
        (0xf4, 0xa5, 0x82),
        (0xb2, 0x18, 0x2b),
    ];
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 1.0 };
    let x = t * (stops.len() - 1) as f64;
    let i = (x.floor() as usize).min(stops.len() - 2);
    let f = x - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (stops[i], stops[i + 1]);
    format!("#{:02x}{:02x}{:02x}", mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn open_svg(height: f64, label: &str) -> String {
    format!(
        "<svg class=\"plot\" viewBox=\"0 0 {WIDTH} {height}\" width=\"100%\" role=\"img\" \
         aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" font-family=\"sans-serif\" \
         font-size=\"11\">\n",
        escape(label)
    )
}

/// Axis lines, ticks and their labels for a plot area.
fn axes(svg: &mut String, x: &Scale, y: &Scale, x_desc: &str, y_desc: &str, height: f64) {
    let (bottom, right) = (height - BOTTOM, WIDTH - RIGHT);
    let _ =
        writeln!(svg, "<path d=\"M{LEFT},{TOP}V{bottom}H{right}\" fill=\"none\" stroke=\"#888\"/>");
    for t in x.ticks(8) {
        let px = x.at(t);
        let _ = writeln!(
            svg,
            "<line x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{bottom}\" y2=\"{:.1}\" stroke=\"#888\"/>\
             <text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            bottom + 4.0,
            bottom + 15.0,
            tick_label(t)
        );
    }
    for t in y.ticks(5) {
        let py = y.at(t);
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{right}\" y1=\"{py:.1}\" y2=\"{py:.1}\" stroke=\"#eee\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 4.0,
            py + 4.0,
            tick_label(t)
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{}</text>\
         <text transform=\"translate(12,{:.1}) rotate(-90)\" text-anchor=\"middle\" \
         fill=\"#555\">{}</text>",
        (LEFT + right) / 2.0,
        height - 4.0,
        escape(x_desc),
        (TOP + bottom) / 2.0,
        escape(y_desc)
    );
}

// ---------------------------------------------------------------------------------------------

/// One job on the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineJob {
    /// The device it ran on, with its host when the sweep spans several.
    pub device: String,
    pub start: f64,
    /// None while it runs (drawn up to now).
    pub end: Option<f64>,
    pub status: String,
    pub title: String,
    pub href: String,
}

/// Jobs per device slot: a device running two jobs at once has two lanes. The slots are
/// not stored, so each job takes the first lane of its device free when it started.
pub fn lanes(jobs: &[TimelineJob], now: f64) -> Vec<(String, Vec<&TimelineJob>)> {
    let mut by_device: BTreeMap<&str, Vec<&TimelineJob>> = BTreeMap::new();
    for job in jobs.iter().filter(|j| j.start.is_finite()) {
        by_device.entry(&job.device).or_default().push(job);
    }
    let mut lanes = Vec::new();
    for (device, mut jobs) in by_device {
        jobs.sort_by(|a, b| a.start.total_cmp(&b.start));
        let mut slots: Vec<(f64, Vec<&TimelineJob>)> = Vec::new();
        for job in jobs {
            let end = job.end.unwrap_or(now).max(job.start);
            match slots.iter_mut().find(|(free_at, _)| *free_at <= job.start) {
                Some(slot) => {
                    slot.0 = end;
                    slot.1.push(job);
                }
                None => slots.push((end, vec![job])),
            }
        }
        for (i, (_, jobs)) in slots.into_iter().enumerate() {
            lanes.push((format!("{device} #{i}"), jobs));
        }
    }
    lanes
}

/// The timeline; None before any job started.
pub fn timeline(jobs: &[TimelineJob], now: f64) -> Option<String> {
    let lanes = lanes(jobs, now);
    let started = jobs.iter().map(|j| j.start).filter(|s| s.is_finite());
    let first = started.fold(f64::INFINITY, f64::min);
    if lanes.is_empty() || !first.is_finite() {
        return None;
    }
    let last =
        jobs.iter().map(|j| j.end.unwrap_or(now)).filter(|t| t.is_finite()).fold(first, f64::max);
    let lane_height = 18.0;
    let height = TOP + BOTTOM + lane_height * lanes.len() as f64;
    let span = (last - first).max(1.0);
    let (unit, unit_name) = if span > 7200.0 {
        (3600.0, "hours")
    } else if span > 120.0 {
        (60.0, "minutes")
    } else {
        (1.0, "seconds")
    };
    let x = Scale::new((0.0, span / unit), false, LEFT + 40.0, WIDTH - RIGHT);
    let mut svg = open_svg(height, "timeline of jobs per device slot");
    let bottom = height - BOTTOM;
    for t in x.ticks(8) {
        let px = x.at(t);
        let _ = writeln!(
            svg,
            "<line x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{TOP}\" y2=\"{bottom}\" stroke=\"#eee\"/>\
             <text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            bottom + 15.0,
            tick_label(t)
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{unit_name} since \
         the first job started</text>",
        (LEFT + WIDTH) / 2.0,
        height - 4.0
    );
    for (i, (name, jobs)) in lanes.iter().enumerate() {
        let y = TOP + lane_height * i as f64;
        let _ = writeln!(
            svg,
            "<text x=\"4\" y=\"{:.1}\">{}</text>",
            y + lane_height * 0.7,
            escape(name)
        );
        for job in jobs {
            let (x0, x1) =
                (x.at((job.start - first) / unit), x.at((job.end.unwrap_or(now) - first) / unit));
            let _ = writeln!(
                svg,
                "<a href=\"{}\"><rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
                 fill=\"{}\" stroke=\"#fff\" stroke-width=\"0.5\"><title>{}</title></rect></a>",
                escape(&job.href),
                y + 2.0,
                (x1 - x0).max(1.5),
                lane_height - 4.0,
                status_color(&job.status),
                escape(&job.title)
            );
        }
    }
    svg += "</svg>\n";
    Some(svg)
}

// ---------------------------------------------------------------------------------------------

/// How a learning curve ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CurveEnd {
    Running,
    Finished,
    Pruned,
    /// Its loss or RMSE at this epoch (1-based) was not finite.
    Diverged(usize),
}

/// One job's validation values, epoch 1 first (non-finite ones included as stored).
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub label: String,
    pub color: String,
    pub values: Vec<f64>,
    pub end: CurveEnd,
}

impl Curve {
    /// The epochs to draw: up to, not including, the first value that is not finite.
    pub fn finite_prefix(&self) -> &[f64] {
        let n = self.values.iter().position(|v| !v.is_finite()).unwrap_or(self.values.len());
        &self.values[..n]
    }
}

/// The curves on one chart; pruned ones end in a square, diverged ones in a cross at their
/// last finite epoch (or above the chart's first epoch if none was). None if nothing to draw.
pub fn curves(curves: &[Curve], y_desc: &str) -> Option<String> {
    let epochs = curves.iter().map(|c| c.values.len()).max().filter(|&n| n > 0)?;
    let finite: Vec<f64> = curves.iter().flat_map(|c| c.finite_prefix().iter().copied()).collect();
    let (lo, hi) = finite_range(finite.iter().copied()).unwrap_or((0.0, 1.0));
    // A curve that exploded before it diverged would flatten every other one: cap the top
    // at a multiple of the typical value (what lies above is drawn at the top edge).
    let mut sorted = finite.clone();
    sorted.sort_by(f64::total_cmp);
    let typical = sorted.get(sorted.len() * 9 / 10).copied().unwrap_or(hi);
    let hi =
        if hi > lo + 4.0 * (typical - lo).max(1e-9) { typical + 0.5 * (typical - lo) } else { hi };
    let height = 260.0;
    let pad = 0.06 * (hi - lo);
    let y = Scale::new(((lo - pad).max(0.0), hi + pad), false, height - BOTTOM, TOP);
    let x = Scale::new((1.0, epochs.max(2) as f64), false, LEFT, WIDTH - RIGHT);
    let mut svg = open_svg(height, "learning curves");
    axes(&mut svg, &x, &y, "epoch", y_desc, height);
    for curve in curves {
        let points = curve.finite_prefix();
        let path: Vec<String> = points
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x.at((i + 1) as f64), y.at(*v)))
            .collect();
        let title = escape(&curve.label);
        if path.len() > 1 {
            let _ = writeln!(
                svg,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" \
                 stroke-width=\"1.3\" opacity=\"0.85\"><title>{title}</title></polyline>",
                path.join(" "),
                curve.color
            );
        }
        let (last_x, last_y) = match points.last() {
            Some(v) => (x.at(points.len() as f64), y.at(*v)),
            None => (x.at(1.0), TOP + 4.0),
        };
        let mark = match curve.end {
            CurveEnd::Diverged(epoch) => format!(
                "<path d=\"M{:.1},{:.1}l8,8m0,-8l-8,8\" stroke=\"#b00\" stroke-width=\"2\"><title>{title}: \
                 diverged at epoch {epoch}</title></path>",
                last_x - 4.0,
                last_y - 4.0
            ),
            CurveEnd::Pruned => format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"6\" height=\"6\" fill=\"{}\" stroke=\"#333\"><title>{title}: \
                 pruned after epoch {}</title></rect>",
                last_x - 3.0,
                last_y - 3.0,
                curve.color,
                points.len()
            ),
            CurveEnd::Running | CurveEnd::Finished if path.len() == 1 => format!(
                "<circle cx=\"{last_x:.1}\" cy=\"{last_y:.1}\" r=\"2.5\" fill=\"{}\"><title>{title}</title></circle>",
                curve.color
            ),
            CurveEnd::Running | CurveEnd::Finished => String::new(),
        };
        svg += &mark;
        svg.push('\n');
    }
    svg += "</svg>\n";
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(device: &str, start: f64, end: Option<f64>) -> TimelineJob {
        TimelineJob {
            device: device.into(),
            start,
            end,
            status: if end.is_some() { "done" } else { "running" }.into(),
            title: String::new(),
            href: "/configs/x".into(),
        }
    }

    #[test]
    fn jobs_take_the_first_free_slot_of_their_device() {
        let jobs = [
            job("cpu", 0.0, Some(10.0)),
            job("cpu", 1.0, Some(5.0)),
            job("cpu", 6.0, Some(9.0)),
            job("cpu", 10.0, None),
            job("cuda:0", 2.0, Some(3.0)),
        ];
        let lanes = lanes(&jobs, 20.0);
        let shape: Vec<(String, Vec<f64>)> =
            lanes.iter().map(|(n, js)| (n.clone(), js.iter().map(|j| j.start).collect())).collect();
        assert_eq!(
            shape,
            [
                ("cpu #0".to_string(), vec![0.0, 10.0]),
                ("cpu #1".to_string(), vec![1.0, 6.0]),
                ("cuda:0 #0".to_string(), vec![2.0])
            ]
        );
        let svg = timeline(&jobs, 20.0).unwrap();
        assert_eq!(svg.matches("<rect").count(), 5);
        assert!(timeline(&[], 1.0).is_none());
    }

    #[test]
    fn a_diverged_curve_is_drawn_to_its_last_finite_epoch_and_marked() {
        let curve =
            |values: Vec<f64>, end| Curve { label: "c".into(), color: "#000".into(), values, end };
        let set = [
            curve(vec![1.0, 0.8, 0.7], CurveEnd::Finished),
            curve(vec![1.2, 0.9, f64::INFINITY], CurveEnd::Diverged(3)),
            curve(vec![f64::INFINITY], CurveEnd::Diverged(1)),
            curve(vec![1.1, f64::NAN], CurveEnd::Pruned),
        ];
        assert_eq!(set[1].finite_prefix(), &[1.2, 0.9]);
        let svg = curves(&set, "RMSE").unwrap();
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("diverged at epoch").count(), 2);
        assert!(svg.contains("pruned after epoch 1"));
        // Only non-finite values: still an answer, with a default range.
        assert!(curves(&[curve(vec![f64::INFINITY], CurveEnd::Diverged(1))], "RMSE").is_some());
        assert_eq!(finite_range([f64::INFINITY, f64::NAN].into_iter()), None);
    }
}
