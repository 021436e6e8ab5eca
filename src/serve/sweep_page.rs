//! The sweep page: live progress, the results table (filtered, paged), the plots and the
//! verdicts. What it shows is in the URL ([`View`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::api::{self, sort_key};
use super::data::{self, SweepProgress};
use super::http::percent_encode;
use super::pages::{config_link, counts_text, duration, num, progress_bar};
use super::space_plots::{contour, parallel_coordinates, AxisKind, SpacePoint};
use super::view::{state, View, STATES};
use crate::report::compare::CompareReport;
use crate::report::html::escape;
use crate::report::varying_keys;
use crate::results::{ConfigSummary, SortKey};
use crate::sampling::NUM_BINS;

/// At most this many configs' lines in the parallel coordinates (the best ones): past that
/// the plot is a solid block and the page megabytes.
const MAX_LINES: usize = 1000;

/// The page's `<main>`; None if there is no such sweep. An unknown `sort`, or one needing
/// probes the sweep lacks, is the sweep's default, as no `sort` is (the API refuses both).
/// The page is a function of the database and the query: one rendered for the database as it
/// is now (same size and modification time of the file and its WAL) is served again, so many
/// readers of a finished or quiet sweep cost one render (its charts over 1000 configs are most
/// of a 10,000-config page's time), and any write makes the next request render afresh.
pub fn render(db: &Path, name: &str, query: &super::http::Query) -> anyhow::Result<Option<String>> {
    let key = (db.to_path_buf(), name.to_string(), query.clone());
    data::per_stamp(&PAGES, key, db, || render_now(db, name, query))
}

/// The last pages rendered, per database, sweep and query (a 10,000-config page is about a
/// megabyte; at most 8 are kept).
static PAGES: data::StampCache<(PathBuf, String, super::http::Query), Option<String>> =
    OnceLock::new();

fn render_now(db: &Path, name: &str, query: &super::http::Query) -> anyhow::Result<Option<String>> {
    let view = View::from_query(query);
    let sort = view.sort.as_deref().and_then(sort_key);
    let store = data::open(db)?;
    let Some(id) = api::sweep(&store, name)? else { return Ok(None) };
    let progress = data::progress(&store, id, name)?;
    let (mut rows, mut sort) = data::results(&store, id, sort)?;
    if data::needs_probes(sort) && !crate::results::has_probes(&rows) {
        (rows, sort) = data::results(&store, id, None)?;
    }
    let kept: Vec<(usize, &ConfigSummary)> =
        rows.iter().enumerate().filter(|(_, r)| view.keeps(r)).collect();
    let (page, pages) = view.page_of(&kept);
    let page_rows: Vec<ConfigSummary> = page.iter().map(|(_, r)| (*r).clone()).collect();
    let verdicts = data::verdicts(&store, &page_rows)?;
    // The report's charts over the best configs the view keeps (all of them up to 1000).
    let charted: Vec<ConfigSummary> =
        kept.iter().take(MAX_LINES).map(|(_, r)| (*r).clone()).collect();
    let charts = data::sweep_charts(&store, &charted)?;
    drop(store);

    let mut html = format!("<h1>Sweep {}</h1>\n", escape(name));
    html += &progress_section(&progress);
    html += &filter_section(name, &rows, &view, kept.len());
    html += &results_section(name, page, &rows, sort, &view);
    html += &pager(name, &view, pages);
    html += &space_section(name, &rows, &kept, sort, &view);
    html += "<h2>Charts</h2>\n<div class=\"charts\">\n";
    html += &charts.concat();
    html += "</div>\n";
    html += &verdicts_section(verdicts.as_ref());
    Ok(Some(html))
}

/// Links that set or clear each filter, with how many configs each keeps.
fn filter_section(name: &str, rows: &[ConfigSummary], view: &View, kept: usize) -> String {
    let base = format!("/sweeps/{}", percent_encode(name));
    let link = |changes: &[(&str, Option<&str>)], text: &str, on: bool| {
        let class = if on { " class=\"on\"" } else { "" };
        format!(
            "<a{class} href=\"{base}{}\">{}</a>",
            escape(&view.link(&[changes, &[("page", None)]].concat())),
            escape(text)
        )
    };
    let mut html = format!(
        "<h2>Results</h2>\n<div class=\"filters\"><p><b>state</b> {}",
        link(&[("state", None)], "all", view.state.is_none())
    );
    for s in STATES {
        let n = rows.iter().filter(|r| state(r) == s).count();
        if n > 0 {
            let on = view.state.as_deref() == Some(s);
            html += &format!(" {}", link(&[("state", Some(s))], &format!("{s} ({n})"), on));
        }
    }
    html += "</p>\n";
    for key in varying_keys(rows) {
        let mut values: Vec<&str> =
            rows.iter().filter_map(|r| r.varying.get(&key).map(String::as_str)).collect();
        values.sort();
        values.dedup();
        if values.len() > 40 {
            continue; // a continuous search axis: filter it on the plots instead
        }
        let param = format!("f.{key}");
        let current = view.axes.get(&key).map(String::as_str);
        let _ = write!(
            html,
            "<p><b>{}</b> {}",
            escape(&key),
            link(&[(&param, None)], "all", current.is_none())
        );
        for v in values {
            html += &format!(" {}", link(&[(&param, Some(v))], v, current == Some(v)));
        }
        html += "</p>\n";
    }
    let _ = writeln!(html, "<p class=\"small\">{kept} of {} configs shown.</p></div>", rows.len());
    html
}

fn pager(name: &str, view: &View, pages: usize) -> String {
    if pages <= 1 {
        return String::new();
    }
    let page = view.page.min(pages);
    let base = format!("/sweeps/{}", percent_encode(name));
    let to = |p: usize, text: &str| {
        let value = p.to_string();
        format!("<a href=\"{base}{}\">{text}</a>", escape(&view.link(&[("page", Some(&value))])))
    };
    let mut html = format!("<p class=\"pager\">page {page} of {pages}");
    if page > 1 {
        html += &format!(" · {} · {}", to(1, "first"), to(page - 1, "previous"));
    }
    if page < pages {
        html += &format!(" · {} · {}", to(page + 1, "next"), to(pages, "last"));
    }
    html + "</p>\n"
}

/// Parallel coordinates over the filtered configs, and a contour over two numeric axes
/// (`cx`, `cy`; the first two by default), both coloured by the sweep's criterion.
fn space_section(
    name: &str,
    rows: &[ConfigSummary],
    kept: &[(usize, &ConfigSummary)],
    sort: SortKey,
    view: &View,
) -> String {
    let keys = varying_keys(rows);
    if keys.is_empty() || kept.is_empty() {
        return String::new();
    }
    let point = |r: &ConfigSummary, axes: &[&String]| SpacePoint {
        values: axes.iter().map(|k| r.varying.get(*k).cloned()).collect(),
        objective: sort.value(r),
        href: format!("/configs/{}", r.id),
        title: format!("{} {}: {} {}", r.id, r.label, sort.name(), num(sort.value(r), 4)),
    };
    let all_axes: Vec<&String> = keys.iter().collect();
    let lines: Vec<SpacePoint> =
        kept.iter().take(MAX_LINES).map(|(_, r)| point(r, &all_axes)).collect();
    let mut html = format!(
        "<h2>Where the good configs are</h2>\n<figure class=\"wide\"><figcaption>Parallel \
         coordinates: one line per config{}, coloured by {} RMSE (blue best, red worst, grey: no \
         result yet). Click a line for its config.</figcaption>\n",
        if kept.len() > MAX_LINES {
            format!(" (the best {MAX_LINES} of {})", kept.len())
        } else {
            String::new()
        },
        sort.name()
    );
    html +=
        &parallel_coordinates(&keys, &lines, &format!("{} RMSE", sort.name())).unwrap_or_default();
    html += "</figure>\n";
    let numeric: Vec<&String> = keys
        .iter()
        .enumerate()
        .filter(|(i, _)| AxisKind::of(&lines, *i).is_numeric())
        .map(|(_, k)| k)
        .collect();
    if numeric.len() < 2 {
        return html;
    }
    fn pick<'a>(
        numeric: &[&'a String],
        chosen: &Option<String>,
        fallback: &'a String,
    ) -> &'a String {
        chosen.as_ref().and_then(|c| numeric.iter().find(|k| **k == c).copied()).unwrap_or(fallback)
    }
    let (cx, cy) =
        (pick(&numeric, &view.contour.0, numeric[0]), pick(&numeric, &view.contour.1, numeric[1]));
    let points: Vec<SpacePoint> =
        kept.iter().take(MAX_LINES).map(|(_, r)| point(r, &[cx, cy])).collect();
    let base = format!("/sweeps/{}", percent_encode(name));
    let choose = |param: &str, current: &String| {
        numeric
            .iter()
            .map(|k| {
                let text = escape(k);
                if *k == current {
                    format!("<b>{text}</b>")
                } else {
                    format!(
                        "<a href=\"{base}{}\">{text}</a>",
                        escape(&view.link(&[(param, Some(k))]))
                    )
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let _ = write!(
        html,
        "<figure class=\"wide\"><figcaption>Contour of {} RMSE over {} and {} (each cell \
         coloured by the configs near it; dots are configs). x: {} · y: {}</figcaption>\n{}</figure>\n",
        sort.name(),
        escape(cx),
        escape(cy),
        choose("cx", cx),
        choose("cy", cy),
        contour([cx, cy], &points, &format!("{} RMSE", sort.name()))
            .unwrap_or_else(|| "<p class=\"empty\">Not enough configs with a result yet.</p>".into())
    );
    html
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

fn results_section(
    name: &str,
    rows: &[(usize, &ConfigSummary)],
    all: &[ConfigSummary],
    sort: SortKey,
    view: &View,
) -> String {
    let keys = varying_keys(all);
    let probes = crate::results::has_probes(all);
    let scores: Vec<usize> =
        (0..NUM_BINS).filter(|&b| all.iter().any(|r| r.bin_count[b] > 0)).collect();
    let sort_link = |key: &str, label: &str, this: SortKey| {
        let mark = if this == sort { " ▲" } else { "" };
        format!(
            "<a href=\"/sweeps/{}{}\" title=\"sort by {label}\">{label}{mark}</a>",
            percent_encode(name),
            escape(&view.link(&[("sort", Some(key)), ("page", None)]))
        )
    };
    let mut html =
        String::from("<div class=\"scroll\"><table>\n<thead><tr><th>#</th><th>config</th>");
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
    for &(rank, r) in rows {
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
