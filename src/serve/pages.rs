//! The HTML pages: sweeps list, sweep (live progress, results, charts, verdicts) and config.
//!
//! Every page is rendered on the server from the same data as the API; the only script
//! (assets/app.js) re-fetches the page's `<main>` every few seconds (header
//! `X-Fragment: main`), so there is one rendering path to keep correct. Text from the
//! database is escaped; names in links are percent-encoded.

use std::fmt::Write as _;
use std::path::Path;

use super::api::{sort_key, sweep};
use super::data::{self, ConfigDetail, JobCounts, SweepProgress};
use super::http::{percent_encode, Request, Response, HTML};
use super::{is_config_id, not_found};
use crate::report::compare::CompareReport;
use crate::report::html::{escape, STYLE};
use crate::report::varying_keys;
use crate::results::{ConfigSummary, SortKey};
use crate::sampling::NUM_BINS;
use crate::store::JobStatus;

const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/style.css");

/// The embedded assets; nothing else is ever served from a path.
pub fn asset(name: &str) -> Option<Response> {
    match name {
        "app.js" => Some(Response::new(200, "text/javascript; charset=utf-8", APP_JS)),
        "style.css" => Some(Response::new(200, "text/css; charset=utf-8", APP_CSS)),
        _ => None,
    }
}

pub fn route(db: &Path, segments: &[&str], request: &Request) -> anyhow::Result<Response> {
    let (title, main) = match segments {
        [] => ("sweeps".to_string(), sweeps_page(db)?),
        ["sweeps", name] => {
            let sort = request.query.get("sort").and_then(|text| sort_key(text));
            match sweep_page(db, name, sort)? {
                Some(main) => (format!("sweep {name}"), main),
                None => return Ok(not_found()),
            }
        }
        ["configs", id] if is_config_id(id) => match config_page(db, id)? {
            Some(main) => (format!("config {id}"), main),
            None => return Ok(not_found()),
        },
        _ => return Ok(not_found()),
    };
    if request.header("x-fragment") == Some("main") {
        return Ok(Response::new(200, HTML, main));
    }
    Ok(Response::new(200, HTML, layout(&title, &main)))
}

fn layout(title: &str, main: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>foldsweep: {}</title>\n<style>{STYLE}</style>\n\
         <link rel=\"stylesheet\" href=\"/assets/style.css\">\n\
         <script src=\"/assets/app.js\" defer></script>\n</head>\n<body>\n\
         <nav><a href=\"/\">foldsweep</a> <span id=\"live\" class=\"live\">live</span></nav>\n\
         <main data-poll=\"5000\">\n{main}</main>\n</body>\n</html>\n",
        escape(title)
    )
}

fn num(value: Option<f64>, digits: usize) -> String {
    value.map_or("-".into(), |v| format!("{v:.digits$}"))
}

/// "1h 02m", "3m 05s", "12s".
fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

fn sweep_link(name: &str) -> String {
    format!("<a href=\"/sweeps/{}\">{}</a>", percent_encode(name), escape(name))
}

fn config_link(id: &str) -> String {
    // Ids are validated hex when they come from a request, and hex in the database.
    format!("<a href=\"/configs/{0}\"><code>{0}</code></a>", escape(id))
}

fn progress_bar(jobs: &JobCounts) -> String {
    let pct = |n: usize| if jobs.total == 0 { 0.0 } else { 100.0 * n as f64 / jobs.total as f64 };
    format!(
        "<div class=\"bar\" role=\"img\" aria-label=\"{} of {} jobs done\">\
         <span class=\"done\" style=\"width:{:.1}%\"></span>\
         <span class=\"failed\" style=\"width:{:.1}%\"></span>\
         <span class=\"running\" style=\"width:{:.1}%\"></span></div>",
        jobs.done,
        jobs.total,
        pct(jobs.done),
        pct(jobs.failed),
        pct(jobs.running)
    )
}

fn counts_text(jobs: &JobCounts) -> String {
    let mut text = format!(
        "{} done, {} running, {} failed, {} diverged, {} pruned, {} left of {} jobs",
        jobs.done, jobs.running, jobs.failed, jobs.diverged, jobs.pruned, jobs.left, jobs.total
    );
    if jobs.interrupted > 0 {
        text += &format!(" ({} of them interrupted)", jobs.interrupted);
    }
    text
}

// ---------------------------------------------------------------------------------------------

fn sweeps_page(db: &Path) -> anyhow::Result<String> {
    let store = data::open(db)?;
    let sweeps = data::sweeps(&store)?;
    let mut html = String::from("<h1>Sweeps</h1>\n");
    if sweeps.is_empty() {
        html += "<p class=\"empty\">No sweep in this database yet.</p>\n";
        return Ok(html);
    }
    html += "<div class=\"scroll\"><table>\n<thead><tr><th>sweep</th><th>progress</th>\
             <th>configs × folds</th><th>best config</th><th>RMSE (by)</th></tr></thead>\n<tbody>\n";
    for s in &sweeps {
        let (best, oof) = match &s.best {
            Some(b) => (
                format!("{} {}", config_link(&b.id), escape(&b.label)),
                format!("{:.4} ({})", b.rmse, b.criterion),
            ),
            None => ("-".into(), "-".into()),
        };
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}<div class=\"small\">{}</div></td><td class=\"num\">{} × {}</td>\
             <td>{best}</td><td class=\"num\">{oof}</td></tr>",
            sweep_link(&s.name),
            progress_bar(&s.jobs),
            escape(&counts_text(&s.jobs)),
            s.configs,
            s.folds
        );
    }
    html += "</tbody></table></div>\n";
    Ok(html)
}

/// An unknown `sort`, or one needing probes the sweep lacks, is the sweep's default, as no
/// `sort` is (the API refuses both instead).
fn sweep_page(db: &Path, name: &str, sort: Option<SortKey>) -> anyhow::Result<Option<String>> {
    let store = data::open(db)?;
    let Some(id) = sweep(&store, name)? else { return Ok(None) };
    let progress = data::progress(&store, id, name)?;
    let (mut rows, mut sort) = data::results(&store, id, sort)?;
    if data::needs_probes(sort) && !data::has_probes(&rows) {
        (rows, sort) = data::results(&store, id, None)?;
    }
    let verdicts = data::verdicts(&store, &rows)?;
    let charts = data::sweep_charts(&store, &rows)?;
    drop(store);
    let mut html = format!("<h1>Sweep {}</h1>\n", escape(name));
    html += &progress_section(&progress);
    html += &results_section(name, &rows, sort);
    html += "<h2>Charts</h2>\n<div class=\"charts\">\n";
    html += &charts.concat();
    html += "</div>\n";
    html += &verdicts_section(verdicts.as_ref());
    Ok(Some(html))
}

fn progress_section(p: &SweepProgress) -> String {
    let eta = match p.eta_seconds {
        _ if p.jobs.left + p.jobs.running == 0 => "Finished".to_string(),
        Some(s) => format!("ETA about {}", duration(s)),
        None => "ETA after the first finished job".into(),
    };
    let mut html = format!(
        "<h2>Progress</h2>\n{}<p class=\"facts\" id=\"counts\">{}. {}.</p>\n",
        progress_bar(&p.jobs),
        escape(&counts_text(&p.jobs)),
        escape(&eta)
    );
    if p.running.is_empty() {
        return html;
    }
    // A shifted column only when the sweep's jobs report one (a sweep with probes).
    let shifted = p.running.iter().any(|r| r.shifted_rmse.is_some());
    html += "<div class=\"scroll\"><table>\n<thead><tr><th>config</th><th>fold</th><th>device</th>\
             <th>host</th><th>attempt</th><th>epoch</th><th>val RMSE</th>";
    if shifted {
        html += "<th>shifted</th>";
    }
    html += "<th>running for</th><th>heartbeat</th></tr></thead>\n<tbody>\n";
    for r in &p.running {
        let since =
            |t: Option<f64>| t.map_or("-".into(), |t| format!("{} ago", duration(p.now - t)));
        let _ = write!(
            html,
            "<tr><td>{} {}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td>",
            config_link(&r.config_id),
            escape(&r.label),
            r.fold,
            escape(r.device.as_deref().unwrap_or("-")),
            escape(r.host.as_deref().unwrap_or("-")),
            r.attempt,
            r.epoch.map_or("-".into(), |e| e.to_string()),
            num(r.val_rmse, 4),
        );
        if shifted {
            let _ = write!(html, "<td class=\"num\">{}</td>", num(r.shifted_rmse, 4));
        }
        let _ = writeln!(
            html,
            "<td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            r.started_at.map_or("-".into(), |t| duration(p.now - t)),
            since(r.heartbeat)
        );
    }
    html += "</tbody></table></div>\n";
    html
}

fn results_section(name: &str, rows: &[ConfigSummary], sort: SortKey) -> String {
    let keys = varying_keys(rows);
    let probes = data::has_probes(rows);
    let scores: Vec<usize> =
        (0..NUM_BINS).filter(|&b| rows.iter().any(|r| r.bin_count[b] > 0)).collect();
    let sort_link = |key: &str, label: &str, this: SortKey| {
        let mark = if this == sort { " ▲" } else { "" };
        format!(
            "<a href=\"/sweeps/{}?sort={key}\" title=\"sort by {label}\">{label}{mark}</a>",
            percent_encode(name)
        )
    };
    let mut html = String::from(
        "<h2>Results</h2>\n<div class=\"scroll\"><table>\n<thead><tr><th>#</th><th>config</th>",
    );
    for k in &keys {
        let _ = write!(html, "<th>{}</th>", escape(k));
    }
    let _ = write!(
        html,
        "<th>folds</th><th>{}</th><th>{}</th><th>{}</th>",
        sort_link("mean", "mean ± sd", SortKey::Mean),
        sort_link("oof", "OOF RMSE", SortKey::Oof),
        sort_link("macro", "macro", SortKey::Macro)
    );
    if probes {
        let _ = write!(
            html,
            "<th>{}</th><th>{}</th>",
            sort_link("probe", "probe RMSE", SortKey::Probe),
            sort_link("shifted", "shifted RMSE", SortKey::Shifted)
        );
    }
    for b in &scores {
        let _ = write!(html, "<th>@{b}</th>");
    }
    html += "</tr></thead>\n<tbody>\n";
    for (rank, r) in rows.iter().enumerate() {
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
        let _ =
            write!(html, "<tr><td class=\"num\">{}</td><td>{}</td>", rank + 1, config_link(&r.id));
        for k in &keys {
            let _ =
                write!(html, "<td>{}</td>", escape(r.varying.get(k).map_or("", String::as_str)));
        }
        let _ = write!(
            html,
            "<td class=\"num\">{folds}</td><td class=\"num\">{mean_sd}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td>",
            num(r.oof_rmse, 4),
            num(r.macro_rmse, 4)
        );
        if probes {
            let _ = write!(
                html,
                "<td class=\"num\">{}</td><td class=\"num\">{}</td>",
                num(r.probe_rmse, 4),
                num(r.shifted_rmse, 4)
            );
        }
        for &b in &scores {
            let _ = write!(html, "<td class=\"num\">{}</td>", num(r.bin_rmse[b], 2));
        }
        html += "</tr>\n";
    }
    html += "</tbody></table></div>\n<p class=\"note\">Click a column title to sort by it \
             (configs without results last). Per-score columns (@s) are the RMSE of pooled \
             out-of-fold predictions on records scored s.</p>\n";
    if probes {
        html +=
            "<p class=\"note\">Probe RMSE: the validation probes (validation texts paired with \
                 another metric's scores); shifted RMSE weighs them in as the test set's shift \
                 expects. With probes the sweep is judged on shifted RMSE.</p>\n";
    }
    html
}

fn verdicts_section(report: Option<&CompareReport>) -> String {
    let mut html = String::from("<h2>Compare</h2>\n");
    let Some(report) = report else {
        html += "<p class=\"empty\">No config has a result to compare yet.</p>\n";
        return html;
    };
    let _ = writeln!(
        html,
        "<p class=\"facts\">Against the best, {} {}, on {} per fold (Nadeau-Bengio corrected \
         resampled t-test, Holm-adjusted p).</p>",
        config_link(&report.reference),
        escape(&report.reference_label),
        escape(&report.metric)
    );
    html +=
        "<div class=\"scroll\"><table>\n<thead><tr><th>config</th><th>folds</th><th>mean diff</th>\
             <th>95% CI</th><th>p (Holm)</th><th>verdict</th></tr></thead>\n<tbody>\n";
    for c in &report.comparisons {
        let verdict = if c.p_holm >= 0.05 {
            "not distinguishable"
        } else if c.mean_diff > 0.0 {
            "really worse"
        } else {
            "really better"
        };
        let _ = writeln!(
            html,
            "<tr><td>{} {}</td><td class=\"num\">{}</td><td class=\"num\">{:+.4}</td>\
             <td class=\"num\">[{:+.4}, {:+.4}]</td><td class=\"num\">{:.3}</td><td>{verdict}</td></tr>",
            config_link(&c.config),
            escape(&c.label),
            c.folds,
            c.mean_diff,
            c.ci_low,
            c.ci_high,
            c.p_holm
        );
    }
    for (id, why) in &report.refused {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td colspan=\"5\" class=\"note\">{}</td></tr>",
            config_link(id),
            escape(why)
        );
    }
    html += "</tbody></table></div>\n";
    html
}

// ---------------------------------------------------------------------------------------------

fn config_page(db: &Path, id: &str) -> anyhow::Result<Option<String>> {
    let store = data::open(db)?;
    let Some(detail) = data::config(&store, id)? else { return Ok(None) };
    let charts = data::config_charts(&store, &detail)?;
    drop(store);
    let mut html = format!("<h1>Config <code>{}</code></h1>\n", escape(id));
    let sweeps: Vec<String> = detail.sweeps.iter().map(|s| sweep_link(s)).collect();
    let _ = writeln!(
        html,
        "<p class=\"facts\">{} · in {}</p>",
        escape(&detail.label),
        if sweeps.is_empty() { "no sweep".into() } else { sweeps.join(", ") }
    );
    html += &summary_section(&detail);
    html += &folds_section(&detail);
    html += "<h2>Charts</h2>\n<div class=\"charts\">\n";
    html += &charts.concat();
    html += "</div>\n";
    let params = serde_json::to_string_pretty(&detail.params).unwrap_or_default();
    let _ = writeln!(
        html,
        "<details><summary>Resolved config (JSON)</summary><pre>{}</pre></details>",
        escape(&params)
    );
    Ok(Some(html))
}

fn summary_section(detail: &ConfigDetail) -> String {
    let Some(s) = &detail.summary else {
        return String::new();
    };
    let shifted = match (s.probe_rmse, s.shifted_rmse) {
        (None, None) => String::new(),
        (probe, shifted) => format!(", probe {}, shifted {}", num(probe, 4), num(shifted, 4)),
    };
    let mut html = format!(
        "<p class=\"facts\">{}/{} folds done{}. Pooled OOF RMSE {}, macro {}{shifted}, mean ± sd of folds {} ± {}.</p>\n",
        s.folds_done,
        s.folds_total,
        if s.folds_failed > 0 { format!(", {} failed", s.folds_failed) } else { String::new() },
        num(s.oof_rmse, 4),
        num(s.macro_rmse, 4),
        num(s.mean_rmse, 4),
        num(s.sd_rmse, 4)
    );
    let scores: Vec<usize> = (0..NUM_BINS).filter(|&b| s.bin_count[b] > 0).collect();
    if scores.is_empty() {
        return html;
    }
    html += "<h2>Per-score RMSE</h2>\n<div class=\"scroll\"><table>\n<thead><tr><th>score</th>";
    for b in &scores {
        let _ = write!(html, "<th>{b}</th>");
    }
    html += "</tr></thead>\n<tbody>\n<tr><th>RMSE</th>";
    for &b in &scores {
        let _ = write!(html, "<td class=\"num\">{}</td>", num(s.bin_rmse[b], 3));
    }
    html += "</tr>\n<tr><th>records</th>";
    for &b in &scores {
        let _ = write!(html, "<td class=\"num\">{}</td>", s.bin_count[b]);
    }
    html += "</tr>\n</tbody></table></div>\n";
    html
}

fn folds_section(detail: &ConfigDetail) -> String {
    // Probe columns only when some fold was judged on validation probes.
    let probes =
        detail.folds.iter().any(|f| f.job.outcome.as_ref().is_some_and(|o| o.probe_rmse.is_some()));
    let mut html = String::from(
        "<h2>Folds</h2>\n<div class=\"scroll\"><table>\n<thead><tr><th>fold</th><th>status</th>\
         <th>attempt</th><th>device</th><th>best/epochs</th><th>RMSE</th><th>rounded</th>\
         <th>macro</th><th>mean-pred</th>",
    );
    if probes {
        html += "<th>probe</th><th>shifted</th>";
    }
    html += "<th>seconds</th></tr></thead>\n<tbody>\n";
    for f in &detail.folds {
        let o = f.job.outcome.as_ref();
        let best = o.map_or_else(
            || f.epochs.last().map_or("-".into(), |e| format!("-/{} so far", e.epoch)),
            |o| format!("{}/{}", o.best_epoch, o.epochs_run),
        );
        let status = f.job.status.as_str();
        let _ = write!(
            html,
            "<tr><td class=\"num\">{}</td><td class=\"status-{status}\">{status}</td><td class=\"num\">{}</td><td>{}</td>\
             <td class=\"num\">{best}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td>",
            f.job.fold,
            f.job.attempt,
            escape(f.job.device.as_deref().unwrap_or("-")),
            num(o.map(|o| o.rmse), 4),
            num(o.map(|o| o.rounded_rmse), 4),
            num(o.map(|o| o.macro_rmse), 4),
            num(o.map(|o| o.mean_predictor_rmse), 4),
        );
        if probes {
            let _ = write!(
                html,
                "<td class=\"num\">{}</td><td class=\"num\">{}</td>",
                num(o.and_then(|o| o.probe_rmse), 4),
                num(o.and_then(|o| o.shifted_rmse), 4)
            );
        }
        let _ =
            writeln!(html, "<td class=\"num\">{}</td></tr>", num(o.map(|o| o.train_seconds), 1));
    }
    html += "</tbody></table></div>\n";
    for f in detail.folds.iter().filter(|f| f.job.status != JobStatus::Done) {
        if let Some(epoch) = f.job.diverged_epoch {
            let _ = writeln!(
                html,
                "<p class=\"facts\">Fold {} diverged at epoch {epoch} (a loss or RMSE that was not \
                 finite).</p>",
                f.job.fold
            );
        }
        if let Some(error) = f.job.error.as_deref().filter(|e| !e.is_empty()) {
            let _ = writeln!(
                html,
                "<h3>Fold {} ({}): error of attempt {}</h3>\n<pre class=\"error\">{}</pre>",
                f.job.fold,
                f.job.status.as_str(),
                f.job.attempt,
                escape(error)
            );
        }
    }
    html
}
