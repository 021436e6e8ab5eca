//! The report's search section (`foldsweep::report::search_plots`): optimisation history,
//! parameter importance and slice plots, from plain trial data, and its place in the report.

use foldsweep::report::html::{render, render_with_trials};
use foldsweep::report::search_plots::{
    history, importances, render_search_section, slice, space_from_points,
};
use foldsweep::search::{Axis, Domain, Space, TrialPoint};
use foldsweep::store::{NewConfig, Store, SweepDefinition};
use toml::Value;

/// Best-so-far line colour (palette slot 1, as plotters writes it).
const BEST_STROKE: &str = "stroke=\"#F28E2B\"";

fn space() -> Space {
    let axis = |key: &str, domain| Axis { key: key.into(), domain };
    Space::new(vec![
        axis("lr", Domain::Float { min: 1e-4, max: 3e-3, log: true }),
        axis("synthetic.ratio", Domain::Float { min: 0.0, max: 1.0, log: false }),
        axis("model", Domain::Categorical(vec!["standard".into(), "ordinal".into()])),
    ])
    .unwrap()
}

/// A deterministic study of `n` trials on [`space`] whose objective has its minimum near
/// lr = 1e-3, ratio = 0.3, model = standard. Trials scoring above 1.0 on a number divisible
/// by 3 are pruned (with a worse partial value); trial 7 failed.
fn study(n: u64) -> Vec<TrialPoint> {
    let mut state = 0x2545_f491_u64;
    let mut uniform = move || {
        state =
            state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|number| {
            let lr = 1e-4 * 30f64.powf(uniform());
            let ratio = uniform();
            let model = if uniform() < 0.5 { "standard" } else { "ordinal" };
            let objective = 0.8
                + 0.3 * (lr.log10() + 3.0).powi(2)
                + 0.2 * (ratio - 0.3).powi(2)
                + if model == "ordinal" { 0.05 } else { 0.0 }
                + 0.01 * uniform();
            let pruned = objective > 1.0 && number % 3 == 0;
            let value = match (number, pruned) {
                (7, _) => None,
                (_, true) => Some(objective + 0.1),
                _ => Some(objective),
            };
            let point = vec![
                ("lr".to_string(), Value::Float(lr)),
                ("synthetic.ratio".to_string(), Value::Float(ratio)),
                ("model".to_string(), Value::String(model.into())),
            ];
            TrialPoint { number, point, value, pruned }
        })
        .collect()
}

/// The `<figure>` elements of a section, in order.
fn figures(html: &str) -> Vec<&str> {
    html.split("<figure>").skip(1).map(|f| &f[..f.find("</figure>").unwrap()]).collect()
}

/// The pixel points of the SVG polyline drawn with `stroke`.
fn polyline_points(svg: &str, stroke: &str) -> Vec<(f64, f64)> {
    let line = svg.split("<polyline").find(|l| l.contains(stroke)).expect("no such polyline");
    let points = line.split("points=\"").nth(1).unwrap().split('"').next().unwrap();
    points
        .split_whitespace()
        .map(|p| {
            let (x, y) = p.split_once(',').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect()
}

#[test]
fn history_has_one_marker_per_trial_and_pruned_trials_are_triangles() {
    let trials = study(40);
    let complete = trials.iter().filter(|t| !t.pruned && t.value.is_some()).count();
    let pruned = trials.iter().filter(|t| t.pruned).count();
    assert!(complete > 10 && pruned > 3, "the study should have both: {complete}, {pruned}");

    let html = render_search_section(&trials, Some(&space())).unwrap();
    let history_figure = figures(&html)[0];
    assert!(history_figure.contains("<h3>Optimisation history</h3>"));
    assert_eq!(history_figure.matches("<circle").count(), complete);
    assert_eq!(history_figure.matches("<polygon").count(), pruned);
    assert!(history_figure.contains("pruned trial, its last value (triangle)"));
    assert!(history_figure.contains("1 trial without a value"), "trial 7 failed");
    assert!(html.contains(&format!(
        "40 trials: {complete} complete, {pruned} pruned, 1 without a value (failed, diverged \
         or not finished)"
    )));
}

#[test]
fn best_so_far_is_monotone_and_ignores_pruned_trials() {
    let mut trials = study(40);
    // A pruned trial far better than any complete one must not lower the best so far.
    let pruned = trials.iter().position(|t| t.pruned).expect("the study prunes some trials");
    trials[pruned].value = Some(0.01);
    let history = history(&trials);
    let mut best = f64::INFINITY;
    for (&(x, y), &(bx, by)) in history.complete.iter().zip(&history.best_so_far) {
        best = best.min(y);
        assert_eq!((bx, by), (x, best));
    }
    assert_eq!(history.best_so_far.len(), history.complete.len());
    assert!(history.best_so_far.iter().all(|p| p.1 > 0.5));

    // On the chart: SVG y grows downwards, so a non-increasing objective never goes up.
    let html = render_search_section(&trials, Some(&space())).unwrap();
    let line = polyline_points(figures(&html)[0], BEST_STROKE);
    assert!(line.len() >= history.best_so_far.len());
    assert!(line.windows(2).all(|w| w[1].0 >= w[0].0 && w[1].1 >= w[0].1), "{line:?}");
    assert!(line.first().unwrap().1 < line.last().unwrap().1, "the best improves in this study");
}

#[test]
fn importance_bars_sum_to_one_and_need_two_complete_trials() {
    let trials = study(40);
    let bars = importances(&trials, &space()).unwrap();
    assert_eq!(bars.len(), 3);
    assert!((bars.iter().map(|b| b.1).sum::<f64>() - 1.0).abs() < 1e-9, "{bars:?}");
    assert!(bars.windows(2).all(|w| w[0].1 >= w[1].1), "largest first: {bars:?}");
    assert_eq!(bars[0].0, "lr", "the planted objective depends most on lr: {bars:?}");
    let html = render_search_section(&trials, Some(&space())).unwrap();
    let importance = figures(&html)[1];
    assert!(importance.contains("<h3>Parameter importance</h3>") && importance.contains("<svg"));

    let few: Vec<TrialPoint> = trials.into_iter().filter(|t| t.pruned || t.number == 1).collect();
    assert_eq!(importances(&few, &space()), None);
    let html = render_search_section(&few, Some(&space())).unwrap();
    let importance = figures(&html)[1];
    assert!(!importance.contains("<svg"));
    assert!(importance.contains("Needs at least 2 complete trials (1 so far)."), "{importance}");
}

#[test]
fn slice_plots_put_log_axes_on_log10_and_categories_at_even_spacing() {
    let trials = study(40);
    let space = space();
    let lr = slice(&trials, &space.axes[0]);
    assert!(lr.log);
    let lrs: Vec<f64> = trials
        .iter()
        .filter(|t| !t.pruned && t.value.is_some())
        .map(|t| t.point[0].1.as_float().unwrap().log10())
        .collect();
    assert_eq!(lr.complete.len(), lrs.len());
    for (&(x, _), expected) in lr.complete.iter().zip(&lrs) {
        assert!((x - expected).abs() < 1e-12, "{x} is not log10(lr) = {expected}");
    }
    let tick_labels: Vec<&str> = lr.ticks.iter().map(|t| t.1.as_str()).collect();
    assert_eq!(tick_labels, ["1e-4", "2e-4", "5e-4", "0.001", "0.002"]);
    assert!((lr.ticks[0].0 - -4.0).abs() < 1e-12);

    let ratio = slice(&trials, &space.axes[1]);
    assert!(!ratio.log);
    let model = slice(&trials, &space.axes[2]);
    assert_eq!(model.ticks, [(0.0, "standard".into()), (1.0, "ordinal".into())]);
    assert_eq!(model.x, -0.5..1.5);
    for (&(x, _), t) in
        model.complete.iter().zip(trials.iter().filter(|t| !t.pruned && t.value.is_some()))
    {
        let index = if t.point[2].1.as_str() == Some("ordinal") { 1.0 } else { 0.0 };
        assert!((x - index).abs() <= 0.2, "trial {} at {x}", t.number);
    }

    let html = render_search_section(&trials, Some(&space)).unwrap();
    let figures = figures(&html);
    assert_eq!(figures.len(), 5, "history, importance, one slice per axis");
    assert!(figures[2].contains("<h3>Objective by lr</h3>"));
    assert!(figures[2].contains("The x axis is logarithmic."));
    assert!(!figures[3].contains("logarithmic"));
    assert!(figures[4].contains(">\nordinal\n</text>"), "categories are tick labels");
}

#[test]
fn names_and_values_are_html_escaped() {
    let axis = Axis {
        key: "<b>&key".into(),
        domain: Domain::Categorical(vec!["<x>".into(), "y&'z'".into()]),
    };
    let space = Space::new(vec![axis]).unwrap();
    let trials: Vec<TrialPoint> = (0..6)
        .map(|number| TrialPoint {
            number,
            point: vec![("<b>&key".into(), if number % 2 == 0 { "<x>" } else { "y&'z'" }.into())],
            value: Some(1.0 + number as f64 / 10.0),
            pruned: false,
        })
        .collect();
    let html = render_search_section(&trials, Some(&space)).unwrap();
    assert!(html.contains("Objective by &lt;b&gt;&amp;key"));
    assert!(html.contains("&lt;x&gt;"));
    assert!(!html.contains("<b>") && !html.contains("<x>"), "unescaped text: {html}");
}

#[test]
fn without_a_space_the_keys_of_the_points_become_categorical_axes() {
    let trials: Vec<TrialPoint> = [(64, "standard"), (16, "ordinal"), (32, "standard")]
        .into_iter()
        .zip(0..)
        .map(|((hidden, model), number)| TrialPoint {
            number,
            point: vec![
                ("bilinear_rank".into(), Value::Integer(hidden)),
                ("model".into(), model.into()),
            ],
            value: Some(1.0 + number as f64),
            pruned: false,
        })
        .collect();
    let space = space_from_points(&trials).unwrap();
    let keys: Vec<&str> = space.axes.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(keys, ["bilinear_rank", "model"]);
    assert_eq!(space.axes[0].domain, Domain::Categorical(vec![16.into(), 32.into(), 64.into()]));
    assert_eq!(
        space.axes[1].domain,
        Domain::Categorical(vec!["standard".into(), "ordinal".into()])
    );
    let html = render_search_section(&trials, None).unwrap();
    assert_eq!(figures(&html).len(), 4);
    assert!(html.contains("<h3>Objective by bilinear_rank</h3>"));
    assert_eq!(render_search_section(&[], None).unwrap(), "");
}

/// A sweep registered in a fresh store (no results), as the report's own tests do.
fn empty_sweep(dir: &std::path::Path) -> (Store, i64) {
    let mut store = Store::open(&dir.join("results.db")).unwrap();
    let config = NewConfig {
        id: "0123456789ab",
        params_json: "{}",
        varying_json: r#"{"lr":0.001}"#,
        label: "lr=0.001",
        data_fingerprint: "data",
    };
    let sweep = SweepDefinition {
        name: "search",
        definition: "",
        data_fingerprint: "data",
        fold_hash: "folds",
        folds: 5,
        keep_trials: false,
    };
    let (sweep_id, _) =
        store.register_sweep(&sweep, &[config], &[("0123456789ab".into(), 0)]).unwrap();
    (store, sweep_id)
}

/// Also writes the report to `$SEARCH_REPORT_OUT` when set, for
/// `scripts/check_search_report.sh` to screenshot.
#[test]
fn render_with_trials_adds_the_search_section_after_the_results_table() {
    let dir = tempfile::tempdir().unwrap();
    let (store, sweep_id) = empty_sweep(dir.path());
    let html = render_with_trials(&store, sweep_id, &study(60), Some(&space())).unwrap();
    if let Some(path) = std::env::var_os("SEARCH_REPORT_OUT") {
        std::fs::write(path, &html).unwrap();
    }
    assert_eq!(html.matches("<h2>Search</h2>").count(), 1);
    crate::report_html::assert_self_contained(&html);
    let (results, search, charts) = (
        html.find("<h2>Results</h2>").unwrap(),
        html.find("<h2>Search</h2>").unwrap(),
        html.find("<h2>Charts</h2>").unwrap(),
    );
    assert!(results < search && search < charts);
    // The sweep's own charts are still there (empty: no results), after the search section.
    assert_eq!(html[charts..].matches("No finished results to chart yet.").count(), 4);
    assert_eq!(html[search..charts].matches("<svg").count(), 5);
    assert!(!render(&store, sweep_id).unwrap().contains("<h2>Search</h2>"));
}
