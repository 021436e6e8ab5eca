//! The HTML report (`foldsweep::report::html::render`) of a sweep run through the real binary:
//! one self-contained document with the results table and the charts.

use crate::common::{db, Scratch};
use foldsweep::report::html::{escape, render};
use foldsweep::store::{NewConfig, Store, SweepDefinition};

/// The shared tiny sweep (4 configs x 5 folds here) with a name that needs escaping and
/// synthetic.ratio as a numeric grid axis beside the categorical model and loss.
fn sweep_file() -> String {
    let renamed =
        crate::common::TINY_SWEEP.replacen("name = \"tiny\"", "name = \"tiny <report> & co\"", 1);
    assert_ne!(renamed, crate::common::TINY_SWEEP, "TINY_SWEEP's name line changed");
    renamed.replacen("[resources]", "\"synthetic.ratio\" = [0.0, 0.3]\n\n[resources]", 1)
}

/// The only URL a report may hold: the SVG namespace on each inline `<svg>` element.
const SVG_NAMESPACE: &str = r#"xmlns="http://www.w3.org/2000/svg""#;

/// The document with the namespace attribute removed from `<svg ...>` opening tags only.
fn without_svg_namespaces(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(start) = rest.find("<svg") {
        let end = start + rest[start..].find('>').expect("unterminated <svg tag");
        out += &rest[..start];
        out += &rest[start..=end].replacen(SVG_NAMESPACE, "", 1);
        rest = &rest[end + 1..];
    }
    out + rest
}

pub(crate) fn assert_self_contained(html: &str) {
    let stripped = without_svg_namespaces(html);
    for external in
        ["http://", "https://", "<script", "<link", "<img", "<iframe", "url(", "@import"]
    {
        assert!(
            !stripped.contains(external),
            "report refers to something outside itself: {external:?}"
        );
    }
}

#[test]
fn report_of_a_real_sweep_is_one_self_contained_document() {
    let s = Scratch::new();
    s.write("sweep.toml", sweep_file());
    s.run_sweep().expect_success();
    // A grid value with markup in it: text from the database must reach the page escaped.
    db::connection(&s.db()).execute_batch(
        "UPDATE sweep_configs SET varying = replace(varying, '\"standard\"', '\"<standard&co>\"'),
                                  label = replace(label, 'model=standard', 'model=<standard&co>')",
    )
    .unwrap();

    let store = Store::open(&s.path("results.db")).unwrap();
    let (sweep_id, _) = store.resolve_sweep(Some("tiny <report> & co")).unwrap();
    let html = render(&store, sweep_id).unwrap();
    if let Some(path) = std::env::var_os("REPORT_OUT") {
        std::fs::write(path, &html).unwrap();
    }

    assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..80]);
    assert!(html.trim_end().ends_with("</html>"));
    for once in ["<!DOCTYPE", "<html", "<body", "</body>", "</html>"] {
        assert_eq!(html.matches(once).count(), 1, "{once}");
    }
    assert_self_contained(&html);
    // Per-score bars, one chart per grid key (model, loss, synthetic.ratio), learning curves, histogram.
    assert_eq!(html.matches("<svg").count(), 6);
    assert_eq!(html.matches("<figcaption>").count(), 6);
    for axis_text in
        ["true score", "pooled OOF RMSE", "synthetic.ratio", "epoch", "validation RMSE", "records"]
    {
        assert!(html.contains(&format!(">\n{axis_text}\n</text>")), "no axis label {axis_text:?}");
    }
    let ids = db::config_ids(&s.db());
    assert_eq!(ids.len(), 4);
    for id in &ids {
        assert!(html.contains(id.as_str()), "config {id} missing");
    }
    assert!(html.contains("<h1>Sweep tiny &lt;report&gt; &amp; co</h1>"));
    assert!(html.contains("4 configs × 5 folds = 20 jobs: 20 done, 0 failed"));
    assert!(html.contains("&lt;standard&amp;co&gt;"));
    assert!(
        !html.contains("<report>") && !html.contains("<standard&co>"),
        "unescaped text from the database"
    );
}

#[test]
fn a_sweep_without_results_still_renders_with_empty_charts() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("results.db")).unwrap();
    let config = NewConfig {
        id: "0123456789ab",
        params_json: "{}",
        varying_json: r#"{"lr":0.001}"#,
        label: "lr=0.001",
        data_fingerprint: "data",
    };
    let sweep = SweepDefinition {
        name: "empty",
        definition: "",
        data_fingerprint: "data",
        fold_hash: "folds",
        folds: 5,
        keep_trials: false,
    };
    let (sweep_id, _) =
        store.register_sweep(&sweep, &[config], &[("0123456789ab".into(), 0)]).unwrap();
    let html = render(&store, sweep_id).unwrap();
    assert!(
        html.contains("1 config × 5 folds = 1 job: 0 done, 0 failed, 1 not finished"),
        "{html}"
    );
    assert!(html.contains("0123456789ab"));
    assert_eq!(html.matches("<svg").count(), 0);
    assert_eq!(html.matches("No finished results to chart yet.").count(), 4);
    assert!(render(&store, sweep_id + 1).is_err(), "an unknown sweep id is an error");
}

#[test]
fn escape_handles_markup_ampersands_and_quotes() {
    assert_eq!(escape("a<b>&\"c\"'d'"), "a&lt;b&gt;&amp;&quot;c&quot;&#39;d&#39;");
    assert_eq!(escape("model=standard ratio=0.3"), "model=standard ratio=0.3");
}

#[test]
fn namespace_whitelist_is_precise() {
    assert_self_contained(&format!("<svg width=\"1\" {SVG_NAMESPACE}>\n</svg>"));
    let outside = format!("<p {SVG_NAMESPACE}></p>");
    assert!(
        std::panic::catch_unwind(|| assert_self_contained(&outside)).is_err(),
        "the namespace outside <svg> is not whitelisted"
    );
}
