//! `foldsweep serve` through the real binary on an ephemeral loopback port: the JSON API over
//! a tiny sweep, the token off loopback, 404 for paths that climb, and a running sweep's
//! results appearing while serve reads (with no "database is locked" on either side).
//! HTTP is spoken with std::net::TcpStream, and only ever to 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStderr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::child::{interrupt, wait_exit, StdoutLines};
use crate::common::{assert_bad_input, stderr, stdout, Scratch, TINY_SWEEP};
use serde_json::Value;

/// A running `foldsweep serve`, killed when dropped.
pub struct Served {
    child: Child,
    pub port: u16,
    /// The token from the printed link (None with `--no-token`).
    pub token: Option<String>,
    stderr: Option<ChildStderr>,
}

impl Served {
    /// Starts serve on `addr` (port 0) and reads the bound port from its first stdout line
    /// and the token from the printed link on the second (there is none with `--no-token`).
    pub fn start(s: &Scratch, addr: &str, extra: &[&str]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_foldsweep"))
            .args(["serve", "--db", "results.db", "--addr", addr])
            .args(extra)
            .current_dir(s.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start foldsweep serve");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("serve printed nothing").unwrap();
        let url = first.split_whitespace().find(|w| w.starts_with("http://")).expect(&first);
        let port = url.trim_end_matches('/').rsplit(':').next().unwrap().parse().expect(url);
        let token = if extra.contains(&"--no-token") {
            None
        } else {
            let link = lines.next().expect("no link with a token").unwrap();
            Some(link.split("?token=").nth(1).expect(&link).trim().to_string())
        };
        let stderr = child.stderr.take();
        Served { child, port, token, stderr }
    }

    /// A GET with the token as a Bearer header.
    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[])
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        let bearer = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(bearer) = &bearer {
            all.push(("Authorization", bearer));
        }
        http(self.port, method, path, &all)
    }

    pub fn json(&self, path: &str) -> Value {
        let reply = self.get(path);
        assert_eq!(reply.status, 200, "GET {path}: {}", reply.body);
        assert!(reply.header("content-type").unwrap().starts_with("application/json"));
        serde_json::from_str(&reply.body).expect("JSON body")
    }

    /// Whether the server process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops serve and returns what it wrote on stderr (errors it met while serving).
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut text = String::new();
        if let Some(mut err) = self.stderr.take() {
            let _ = err.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }

    pub fn parse(raw: &[u8]) -> Reply {
        let raw = String::from_utf8_lossy(raw);
        let (head, body) = raw.split_once("\r\n\r\n").expect("a response head");
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect(head);
        Reply { status, head: head.to_string(), body: body.to_string() }
    }
}

/// One request to 127.0.0.1:port, the raw target sent as given (no normalisation), with
/// `Host: 127.0.0.1` unless the headers name another.
pub fn http(port: u16, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = format!("{method} {target} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request += "Host: 127.0.0.1\r\n";
    }
    for (k, v) in headers {
        request += &format!("{k}: {v}\r\n");
    }
    request += "Connection: close\r\n\r\n";
    Reply::parse(&exchange(port, request.as_bytes(), Duration::from_secs(60)))
}

/// Sends raw bytes to 127.0.0.1:port and reads until the server closes (or `wait` passes).
pub fn exchange(port: u16, bytes: &[u8], wait: Duration) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to serve");
    stream.set_read_timeout(Some(wait)).unwrap();
    stream.write_all(bytes).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    raw
}

pub fn tiny_sweep_done() -> Scratch {
    let s = Scratch::new();
    s.write("sweep.toml", TINY_SWEEP);
    let out = s.run(&["run", "sweep.toml", "--db", "results.db"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    s
}

/// `foldsweep results --format json`'s config ids, in its order.
fn cli_order(s: &Scratch, sort: &str) -> Vec<String> {
    let out = s.run(&["results", "--db", "results.db", "--sort", sort, "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Value = serde_json::from_str(&stdout(&out)).unwrap();
    rows.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

fn ids(rows: &Value) -> Vec<String> {
    rows.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn serve_api_reports_a_finished_sweep() {
    let s = tiny_sweep_done();
    let served = Served::start(&s, "127.0.0.1:0", &[]);

    let sweeps = served.json("/api/sweeps");
    let tiny = &sweeps["sweeps"][0];
    assert_eq!(sweeps["sweeps"].as_array().unwrap().len(), 1);
    assert_eq!(tiny["name"], "tiny");
    assert_eq!(
        (tiny["jobs"]["done"].as_u64(), tiny["jobs"]["total"].as_u64()),
        (Some(10), Some(10))
    );
    let best = cli_order(&s, "oof")[0].clone();
    assert_eq!(tiny["best"]["id"].as_str(), Some(best.as_str()));

    assert_eq!(tiny["best"]["criterion"], "oof");

    // Every sort the CLI offers gives the CLI's order; without one, the sweep's default.
    for sort in ["oof", "mean", "macro"] {
        let results = served.json(&format!("/api/sweeps/tiny/results?sort={sort}"));
        assert_eq!(results["sort"], sort);
        assert_eq!(ids(&results["results"]), cli_order(&s, sort), "sort {sort}");
        assert_eq!(results["results"][0]["folds_done"], 5);
    }
    assert_eq!(served.json("/api/sweeps/tiny/results")["sort"], "oof");
    assert_eq!(served.get("/api/sweeps/tiny/results?sort=rmse").status, 400);
    // As `results --sort probe` refuses it: this sweep has no validation probes.
    for sort in ["probe", "shifted"] {
        let reply = served.get(&format!("/api/sweeps/tiny/results?sort={sort}"));
        assert_eq!(reply.status, 400, "{sort}");
        assert!(reply.body.contains("no validation probes"), "{}", reply.body);
    }

    let progress = served.json("/api/sweeps/tiny/progress");
    assert_eq!(progress["jobs"]["done"], 10);
    assert_eq!(progress["jobs"]["left"], 0);
    assert_eq!(progress["running"].as_array().unwrap().len(), 0);
    assert_eq!(progress["eta_seconds"], 0.0);

    let config = served.json(&format!("/api/configs/{best}"));
    assert_eq!(config["id"].as_str(), Some(best.as_str()));
    assert_eq!(config["sweeps"][0], "tiny");
    let folds = config["folds"].as_array().unwrap();
    assert_eq!(folds.len(), 5);
    for f in folds {
        assert_eq!(f["status"], "done");
        assert_eq!(f["epochs"].as_array().unwrap().len(), 3, "3 epochs per fold: {f}");
        assert!(f["outcome"]["rmse"].as_f64().unwrap() > 0.0);
    }

    // Pages: phone viewport, the report's inline SVG charts, nothing from elsewhere.
    for page in ["/", "/sweeps/tiny", "/sweeps/tiny?sort=macro", &format!("/configs/{best}")] {
        let reply = served.get(page);
        assert_eq!(reply.status, 200, "{page}");
        assert!(reply.body.contains("name=\"viewport\""), "{page}");
        assert!(!reply.body.contains("https://"), "{page} refers to the network");
    }
    let sweep_page = served.get("/sweeps/tiny").body;
    assert!(sweep_page.matches("<svg").count() >= 4, "the report's charts");
    assert!(sweep_page.contains("not distinguishable") || sweep_page.contains("really "));
    assert!(served.get("/assets/app.js").body.contains("X-Fragment"));

    // Unknown things are 404, ids are validated, and nothing writes.
    for missing in [
        "/sweeps/nope",
        "/api/sweeps/nope/progress",
        "/configs/0123456789ab",
        "/configs/XYZ",
        "/api/configs/1;DROP",
        "/results.db",
        "/nothing",
    ] {
        assert_eq!(served.get(missing).status, 404, "{missing}");
    }
    assert_eq!(served.request("POST", "/api/sweeps", &[]).status, 405);
    let err = served.stop();
    assert!(err.is_empty(), "serve reported errors:\n{err}");
}

/// The tiny sweep judged on validation probes: 35% mismatched pairs scored 0-3 expected.
fn probe_sweep_done() -> Scratch {
    let s = Scratch::new();
    let sweep = format!(
        "{TINY_SWEEP}\n[validation]\nprobe = {{ fraction = 0.35, score_min = 0, score_max = 3 }}\n"
    );
    s.write("sweep.toml", sweep);
    let out = s.run(&["run", "sweep.toml", "--db", "results.db"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    s
}

#[test]
fn serve_sorts_a_probe_sweep_by_every_criterion_and_judges_it_by_shifted_rmse() {
    let s = probe_sweep_done();
    let served = Served::start(&s, "127.0.0.1:0", &[]);

    // The default of a sweep with probes is shifted RMSE, for the best config too.
    let shifted_order = cli_order(&s, "shifted");
    let sweeps = served.json("/api/sweeps");
    assert_eq!(sweeps["sweeps"][0]["best"]["criterion"], "shifted");
    assert_eq!(sweeps["sweeps"][0]["best"]["id"].as_str(), Some(shifted_order[0].as_str()));
    let default = served.json("/api/sweeps/tiny/results");
    assert_eq!(default["sort"], "shifted");
    assert_eq!(ids(&default["results"]), shifted_order);
    for sort in ["oof", "mean", "macro", "probe", "shifted"] {
        let results = served.json(&format!("/api/sweeps/tiny/results?sort={sort}"));
        assert_eq!(results["sort"], sort);
        assert_eq!(ids(&results["results"]), cli_order(&s, sort), "sort {sort}");
        let top = &results["results"][0];
        assert!(top["probe_rmse"].as_f64().is_some() && top["shifted_rmse"].as_f64().is_some());
    }

    // The sweep page: probe and shifted columns, sortable, and verdicts on shifted RMSE.
    let page = served.get("/sweeps/tiny").body;
    assert!(page.contains("?sort=probe") && page.contains("?sort=shifted"), "sortable columns");
    assert!(page.contains("shifted RMSE ▲"), "sorted by shifted RMSE by default");
    assert!(page.contains("per fold (Nadeau-Bengio"), "verdicts shown");
    assert!(page.contains("on shifted RMSE per fold"), "verdicts on shifted RMSE");
    // Regression (issue 20): the charts re-sorted by OOF RMSE, so the "best configs" chart
    // showed configs the table did not rank there, and the axis charts plotted OOF RMSE while
    // the table was sorted by shifted. Now the legend follows the table's order and the axis
    // charts plot the table's criterion.
    let legend: Vec<usize> = shifted_order
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let entry = format!("#{} {id}", i + 1);
            page.find(&entry).unwrap_or_else(|| panic!("no legend entry {entry:?}"))
        })
        .collect();
    assert!(legend.windows(2).all(|w| w[0] < w[1]), "the table's order: {shifted_order:?}");
    assert!(page.contains("Shifted RMSE by model"), "axis charts by the criterion");
    assert!(!page.contains("Pooled OOF RMSE by"), "no axis chart by OOF RMSE");

    // The config page: each fold's probe and shifted RMSE.
    let best = &shifted_order[0];
    let config = served.json(&format!("/api/configs/{best}"));
    for f in config["folds"].as_array().unwrap() {
        assert!(f["outcome"]["shifted_rmse"].as_f64().is_some(), "{f}");
        let last = f["epochs"].as_array().unwrap().last().cloned().unwrap();
        assert!(last["shifted_rmse"].as_f64().is_some(), "{last}");
    }
    let page = served.get(&format!("/configs/{best}")).body;
    assert!(page.contains("<th>probe</th><th>shifted</th>"), "per-fold probe columns");
    let err = served.stop();
    assert!(err.is_empty(), "serve reported errors:\n{err}");
}

/// On loopback as anywhere else (as Jupyter does): the printed link's token, as a query, a
/// Bearer header, or the cookie the link sets, named with the port.
#[test]
fn serve_needs_a_token_on_every_address() {
    let s = tiny_sweep_done();
    for addr in ["127.0.0.1:0", "0.0.0.0:0"] {
        // Bound to every interface, but the test only ever connects through 127.0.0.1.
        let served = Served::start(&s, addr, &[]);
        let token = served.token.clone().expect("a generated token");
        assert_eq!(token.len(), 32);
        let port = served.port;

        assert_eq!(http(port, "GET", "/api/sweeps", &[]).status, 401, "{addr}");
        assert_eq!(http(port, "GET", "/sweeps/tiny", &[]).status, 401, "{addr}");
        assert_eq!(http(port, "GET", "/?token=wrong-token-of-some-length", &[]).status, 401);
        let bearer = format!("Bearer {token}");
        assert_eq!(http(port, "GET", "/api/sweeps", &[("Authorization", &bearer)]).status, 200);

        // The printed link sets a cookie and redirects to the page without the token.
        let opened = http(port, "GET", &format!("/sweeps/tiny?token={token}"), &[]);
        assert_eq!(opened.status, 303);
        assert_eq!(opened.header("location"), Some("/sweeps/tiny"));
        let set_cookie = opened.header("set-cookie").unwrap();
        let cookie = set_cookie.split(';').next().unwrap().to_string();
        assert_eq!(cookie, format!("foldsweep_token_{port}={token}"), "named with the port");
        assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"));
        let page = http(port, "GET", "/sweeps/tiny", &[("Cookie", &cookie)]);
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Sweep tiny"));
        // Another port's cookie, or the old unnamed one, is no key to this server.
        for other in
            [format!("foldsweep_token_{}={token}", port + 1), format!("foldsweep_token={token}")]
        {
            assert_eq!(http(port, "GET", "/api/sweeps", &[("Cookie", &other)]).status, 401);
        }
    }
}

/// Checked by clap where the arguments are read (the library names no flags), before the
/// database is opened: a usage error naming the flag, exit code 2.
#[test]
fn serve_refuses_a_bad_address_token_or_worker_count_naming_the_flag() {
    let s = tiny_sweep_done();
    for (args, fragments) in [
        (["--addr", "localhost"], ["--addr", "localhost"]),
        (["--token", "short"], ["--token", "16 to 256 characters"]),
        (["--workers", "0"], ["--workers", "1..=64"]),
    ] {
        let out = s.run(&[&["serve", "--db", "results.db"][..], &args[..]].concat());
        assert_bad_input(&out, &fragments);
    }
}

#[test]
fn serve_answers_404_for_paths_that_climb() {
    let s = tiny_sweep_done();
    let served = Served::start(&s, "127.0.0.1:0", &[]);
    for target in [
        "/../results.db",
        "/../../../../etc/passwd",
        "/assets/../../Cargo.toml",
        "/assets/..%2f..%2fCargo.toml",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/sweeps/..",
        "/sweeps/tiny/../../results.db",
        "/api/sweeps/..%2F..%2Fresults.db/results",
        "/assets/%5c..%5cCargo.toml",
        "/assets/Cargo.toml",
    ] {
        let reply = served.get(target);
        assert_eq!(reply.status, 404, "{target}");
        assert!(!reply.body.contains("SQLite format") && !reply.body.contains("[package]"));
    }
}

#[test]
fn serve_shows_a_running_sweeps_new_results_and_never_locks_it() {
    let s = Scratch::new();
    s.write(
        "sweep.toml",
        TINY_SWEEP
            .replace("epochs = 3", "epochs = 150\npatience = 0")
            .replace("jobs_per_device = 2", "jobs_per_device = 1"),
    );
    // An empty results database first, so serve is up before the sweep's first job.
    drop(foldsweep::store::Store::open(&s.path("results.db")).unwrap());
    let served = Served::start(&s, "127.0.0.1:0", &[]);
    let sweep = s.command().args(["run", "sweep.toml", "--db", "results.db"]).spawn();

    // Meanwhile a second client keeps loading the heaviest page (results, charts, verdicts).
    let (port, bearer) = (served.port, format!("Bearer {}", served.token.clone().unwrap()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut statuses = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let auth = [("Authorization", bearer.as_str())];
                statuses.push(http(port, "GET", "/sweeps/tiny", &auth).status);
            }
            statuses
        })
    };

    let deadline = Instant::now() + Duration::from_secs(300);
    let mut seen: Vec<(u64, u64)> = Vec::new(); // (done, total) while jobs were still to run
    loop {
        assert!(Instant::now() < deadline, "no new results seen: {seen:?}");
        let reply = served.get("/api/sweeps/tiny/progress");
        if reply.status == 200 {
            let p: Value = serde_json::from_str(&reply.body).unwrap();
            let (done, total) =
                (p["jobs"]["done"].as_u64().unwrap(), p["jobs"]["total"].as_u64().unwrap());
            let unfinished =
                p["jobs"]["left"].as_u64().unwrap() + p["jobs"]["running"].as_u64().unwrap();
            if unfinished > 0 {
                seen.push((done, total));
            }
            if seen.first().is_some_and(|first| done > first.0) {
                let results = served.json("/api/sweeps/tiny/results");
                let folds: u64 = results["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["folds_done"].as_u64().unwrap())
                    .sum();
                assert!(folds >= done, "results lag progress: {folds} folds for {done} done jobs");
                break;
            }
        } else {
            // Before the sweep registers itself it is simply not there yet.
            assert_eq!(reply.status, 404, "{}", reply.body);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(seen[0].0 < seen[0].1, "saw the sweep before it finished: {seen:?}");

    let out = sweep.wait_with_output().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let statuses = hammer.join().unwrap();
    let (out_text, err_text) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{out_text}\n{err_text}");
    assert!(!format!("{out_text}{err_text}").contains("locked"), "{out_text}\n{err_text}");
    assert!(statuses.iter().all(|&s| s == 200 || s == 404), "{statuses:?}");
    assert!(statuses.iter().filter(|&&s| s == 200).count() >= 3, "{statuses:?}");
    let final_progress = served.json("/api/sweeps/tiny/progress");
    assert_eq!(final_progress["jobs"]["done"], 10);
    let err = served.stop();
    assert!(err.is_empty(), "serve reported errors:\n{err}");
}

/// Jobs of minutes each (epochs of a millisecond on the sample data): the coordinator writes
/// epochs about once a second, and the test ends the sweep with Ctrl-C twice.
#[test]
fn serve_shows_a_running_jobs_epochs_while_it_trains() {
    let s = Scratch::new();
    s.write(
        "sweep.toml",
        TINY_SWEEP
            .replace("epochs = 3", "epochs = 200000\npatience = 0")
            .replace("jobs_per_device = 2", "jobs_per_device = 1"),
    );
    drop(foldsweep::store::Store::open(&s.path("results.db")).unwrap());
    let served = Served::start(&s, "127.0.0.1:0", &[]);
    let mut sweep = s.command().args(["run", "sweep.toml", "--db", "results.db"]).spawn();
    let mut sweep_stdout = StdoutLines::of(&mut sweep);

    let deadline = Instant::now() + Duration::from_secs(60);
    let job = loop {
        assert!(Instant::now() < deadline, "never saw a running job's epoch");
        let reply = served.get("/api/sweeps/tiny/progress");
        if reply.status == 200 {
            let p: Value = serde_json::from_str(&reply.body).unwrap();
            let live =
                p["running"].as_array().unwrap().iter().find(|j| j["epoch"].is_u64()).cloned();
            if let Some(job) = live {
                break job;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(job["val_rmse"].as_f64().unwrap() > 0.0, "{job}");
    let config = served.json(&format!("/api/configs/{}", job["config"].as_str().unwrap()));
    let fold = &config["folds"][job["fold"].as_u64().unwrap() as usize];
    assert!(!fold["epochs"].as_array().unwrap().is_empty(), "{fold}");
    let page = served.get(&format!("/configs/{}", job["config"].as_str().unwrap())).body;
    assert!(page.contains("Learning curves") && page.contains("<svg"), "no live curve");

    // Regression (issue 22): this said "marks them interrupted" but asserted nothing, and
    // waited for the sweep without a timeout. Ctrl-C twice, the second once the first has
    // shown; then serve shows the job interrupted and none running.
    interrupt(&sweep);
    sweep_stdout.wait_for(&mut sweep, "no new jobs will start", Duration::from_secs(30));
    interrupt(&sweep);
    let status = wait_exit(&mut sweep, Duration::from_secs(60));
    let lines = sweep_stdout.finish();
    assert_eq!(status.code(), Some(1), "stopped early: exit 1\n{}", lines.join("\n"));
    let progress = served.json("/api/sweeps/tiny/progress");
    assert_eq!(progress["jobs"]["interrupted"], 1, "{progress}");
    assert_eq!(progress["running"].as_array().map(Vec::len), Some(0), "{progress}");
    assert_eq!(progress["jobs"]["done"], 0, "{progress}");
    let err = served.stop();
    assert!(err.is_empty(), "serve reported errors:\n{err}");
}

/// A sweep's name is any string: one with `/`, `?`, `#` and spaces is listed with a link that
/// opens its page, and the API finds it under the same percent-encoded name.
#[test]
fn serve_opens_a_sweep_whose_name_has_a_slash() {
    let s = Scratch::new();
    let name = "team/tiny #2? ok";
    s.write("sweep.toml", TINY_SWEEP.replace("name = \"tiny\"", &format!("name = \"{name}\"")));
    let out = s.run(&["run", "sweep.toml", "--db", "results.db"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let served = Served::start(&s, "127.0.0.1:0", &[]);
    let encoded = "team%2Ftiny%20%232%3F%20ok";
    let index = served.get("/").body;
    assert!(index.contains(&format!("href=\"/sweeps/{encoded}\"")), "{index}");
    let page = served.get(&format!("/sweeps/{encoded}"));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Sweep team/tiny #2? ok"));
    let results = served.json(&format!("/api/sweeps/{encoded}/results?sort=macro"));
    assert_eq!(results["sweep"], name);
    assert_eq!(results["results"].as_array().unwrap().len(), 2);
    assert_eq!(served.json(&format!("/api/sweeps/{encoded}/progress"))["jobs"]["done"], 10);
    // Unencoded, the slash is a path separator: no such page.
    assert_eq!(served.get("/sweeps/team/tiny").status, 404);
}

/// Reads server-sent events from a stream until `count` events arrived or `within` passed:
/// (event name, data as JSON, seconds between the event's `written_at` and its arrival).
fn read_events(
    stream: &mut TcpStream,
    count: usize,
    within: Duration,
) -> Vec<(String, Value, f64)> {
    let deadline = Instant::now() + within;
    let mut buffer = String::new();
    let mut events = Vec::new();
    let mut chunk = [0u8; 4096];
    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    while events.len() < count && Instant::now() < deadline {
        let n = match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) => continue,
        };
        buffer += &String::from_utf8_lossy(&chunk[..n]);
        let arrived = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let field = |name: &str| {
                block.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
            };
            if let (Some(event), Some(data)) = (field("event:"), field("data:")) {
                let data: Value = serde_json::from_str(&data).expect("event data is JSON");
                let lag = arrived - data["written_at"].as_f64().expect("written_at");
                events.push((event, data, lag));
            }
        }
    }
    events
}

/// The sweep page listens to server-sent events: a `progress` event follows each write of
/// the running sweep (epochs about once a second) within a second, with running jobs' epochs.
#[test]
fn serve_streams_a_running_sweeps_progress_as_events() {
    let s = Scratch::new();
    s.write(
        "sweep.toml",
        TINY_SWEEP
            .replace("epochs = 3", "epochs = 5000\npatience = 0")
            .replace("jobs_per_device = 2", "jobs_per_device = 1"),
    );
    drop(foldsweep::store::Store::open(&s.path("results.db")).unwrap());
    let served = Served::start(&s, "127.0.0.1:0", &[]);
    assert_eq!(served.get("/api/events?sweep=tiny").status, 404, "no such sweep yet");
    let mut sweep = s.command().args(["run", "sweep.toml", "--db", "results.db"]).spawn_quiet();
    let deadline = Instant::now() + Duration::from_secs(60);
    while served.get("/api/sweeps/tiny/progress").status != 200 {
        assert!(Instant::now() < deadline, "the sweep never appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    let page = served.get("/sweeps/tiny").body;
    assert!(page.contains("data-events=\"/api/events?sweep=tiny\""), "the page listens");

    let mut stream = TcpStream::connect(("127.0.0.1", served.port)).unwrap();
    let head = format!(
        "GET /api/events?sweep=tiny HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Accept: text/event-stream\r\n\r\n",
        served.token.as_ref().unwrap()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let events = read_events(&mut stream, 6, Duration::from_secs(30));
    for _ in 0..2 {
        // SAFETY: sends SIGINT to our own child process.
        unsafe { libc::kill(sweep.id() as libc::pid_t, libc::SIGINT) };
        std::thread::sleep(Duration::from_millis(300));
    }
    sweep.wait().unwrap();

    assert!(events.len() >= 6, "{} events in 30 s: {events:?}", events.len());
    assert!(events.iter().all(|(name, _, _)| name == "progress"));
    // The first tells where the store stands; each later one answers a write.
    for (_, data, lag) in &events[1..] {
        assert!(*lag < 1.0, "an event {lag:.3} s after the write: {data}");
    }
    let epochs: Vec<u64> =
        events.iter().filter_map(|(_, d, _)| d["running"][0]["epoch"].as_u64()).collect();
    assert!(epochs.windows(2).any(|w| w[1] > w[0]), "running epochs advance: {epochs:?}");
}
