//! The HTML pages: sweeps list, sweep (live progress, results, charts, verdicts) and config.
//!
//! Every page is rendered on the server from the same data as the API; the only script
//! (assets/app.js) re-fetches the page's `<main>` every few seconds (header
//! `X-Fragment: main`), so there is one rendering path to keep correct. Text from the
//! database is escaped; names in links are percent-encoded.

use std::fmt::Write as _;
use std::path::Path;

use super::data::{self, ConfigDetail, JobCounts};
use super::http::{percent_encode, Query, Response, HTML};
use super::{is_config_id, not_found};
use crate::report::html::{escape, STYLE};
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

/// `GET /`: every sweep.
pub fn index(db: &Path, fragment: bool) -> anyhow::Result<Response> {
    Ok(page("sweeps", &sweeps_page(db)?, fragment, "/api/events"))
}

/// `GET /sweeps/{name}`; 404 if there is no such sweep.
pub fn sweep(db: &Path, name: &str, query: &Query, fragment: bool) -> anyhow::Result<Response> {
    Ok(match super::sweep_page::render(db, name, query)? {
        Some(main) => {
            let events = format!("/api/events?sweep={}", percent_encode(name));
            page(&format!("sweep {name}"), &main, fragment, &events)
        }
        None => not_found(),
    })
}

/// `GET /configs/{id}`; 404 if the id is not one.
pub fn config(db: &Path, id: &str, fragment: bool) -> anyhow::Result<Response> {
    if !is_config_id(id) {
        return Ok(not_found());
    }
    Ok(match config_page(db, id)? {
        Some(main) => page(&format!("config {id}"), &main, fragment, "/api/events"),
        None => not_found(),
    })
}

/// The whole page, or only its `<main>` for the live refresh (header `X-Fragment: main`);
/// `events` is the event stream that tells the page to refresh.
fn page(title: &str, main: &str, fragment: bool, events: &str) -> Response {
    if fragment {
        return Response::new(200, HTML, main.to_string());
    }
    Response::new(200, HTML, layout(title, main, events))
}

fn layout(title: &str, main: &str, events: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>foldsweep: {}</title>\n<style>{STYLE}</style>\n\
         <link rel=\"stylesheet\" href=\"/assets/style.css\">\n\
         <script src=\"/assets/app.js\" defer></script>\n</head>\n<body>\n\
         <nav><a href=\"/\">foldsweep</a> <span id=\"live\" class=\"live\">live</span></nav>\n\
         <main data-poll=\"5000\" data-events=\"{}\">\n{main}</main>\n</body>\n</html>\n",
        escape(title),
        escape(events)
    )
}

pub(super) fn num(value: Option<f64>, digits: usize) -> String {
    value.map_or("-".into(), |v| format!("{v:.digits$}"))
}

/// "1h 02m", "3m 05s", "12s".
pub(super) fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

pub(super) fn sweep_link(name: &str) -> String {
    format!("<a href=\"/sweeps/{}\">{}</a>", percent_encode(name), escape(name))
}

pub(super) fn config_link(id: &str) -> String {
    // Ids are validated hex when they come from a request, and hex in the database.
    format!("<a href=\"/configs/{0}\"><code>{0}</code></a>", escape(id))
}

pub(super) fn progress_bar(jobs: &JobCounts) -> String {
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

pub(super) fn counts_text(jobs: &JobCounts) -> String {
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
