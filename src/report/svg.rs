//! The chart kit of the report and the live view: plotters' SVG backend with the project's
//! size, palette and axes, and the guard that keeps non-finite values out of a chart's range.

use std::ops::Range;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Two charts side by side fit a 1400-pixel-wide window.
pub(super) const CHART_SIZE: (u32, u32) = (620, 400);

/// Tableau 10: colours that stay apart for the common colour-vision deficiencies.
pub(super) const PALETTE: [RGBColor; 10] = [
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

pub(super) type Area<'s> = DrawingArea<SVGBackend<'s>, Shift>;

/// Every chart uses one coordinate type: f64 on both axes, x ticks only where we put them
/// (category centres, grid values, epochs), so one helper sets up all of them.
pub(super) type Chart<'a, 's> =
    ChartContext<'a, SVGBackend<'s>, Cartesian2d<TickedAxis, RangedCoordf64>>;

pub(crate) fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
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
    pub(super) inner: RangedCoordf64,
    pub(super) ticks: Vec<f64>,
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
pub(super) fn category_label(categories: &[String], x: f64) -> String {
    let i = x.round();
    if i >= 0.0 && (i as usize) < categories.len() {
        categories[i as usize].clone()
    } else {
        String::new()
    }
}

/// A y range from 0 to a little above the largest value, so bars start at zero. Non-finite
/// values are left out: an infinite range makes plotters loop forever (issue 20).
pub(super) fn zero_based(values: impl Iterator<Item = f64>) -> Range<f64> {
    let top = values.filter(|v| v.is_finite()).fold(0.0f64, f64::max);
    0.0..if top > 0.0 { top * 1.08 } else { 1.0 }
}

/// A y range around the values with some air, so small differences between configs show.
/// Non-finite values (a diverged epoch is stored as +inf) are left out, as in [`zero_based`];
/// with no finite value at all the range is 0..1.
pub(super) fn padded(values: impl Iterator<Item = f64>) -> Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    if lo > hi {
        return 0.0..1.0;
    }
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

pub(super) fn css(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_ranges_leave_out_non_finite_values() {
        let values = [1.0, f64::INFINITY, 2.0, f64::NAN, f64::NEG_INFINITY];
        let range = padded(values.into_iter());
        assert!(range.start.is_finite() && range.end.is_finite(), "{range:?}");
        assert!(range.start < 1.0 && range.end > 2.0 && range.end < 2.5, "{range:?}");
        assert_eq!(padded([f64::INFINITY, f64::NAN].into_iter()), 0.0..1.0);
        assert_eq!(padded(std::iter::empty()), 0.0..1.0);
        let bars = zero_based([3.0, f64::INFINITY].into_iter());
        assert!(bars.end.is_finite() && bars.end > 3.0, "{bars:?}");
    }
}
