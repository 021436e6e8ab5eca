//! `foldsweep serve` against what a web page, a slow client or a hostile one can send,
//! through the real binary on loopback: the Host allow-list (DNS rebinding), slow clients
//! and the per-client connection limit, thousands of mangled request heads, and request
//! bodies. Every connection goes to 127.0.0.1; "other clients" connect from 127.0.0.2.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::common::Scratch;
use crate::serve::{exchange, tiny_sweep_done, Reply, Served};

/// A connection to the server from another loopback address, which it counts as another
/// client than the tests' own requests from 127.0.0.1.
fn connect_from(ip: [u8; 4], port: u16) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((ip, 0)).into()).expect("bind a second loopback address");
    let server = SocketAddr::from(([127, 0, 0, 1], port));
    socket.connect_timeout(&server.into(), Duration::from_secs(5)).expect("connect to serve");
    socket.into()
}

/// A results database with no sweep: serve starts at once.
fn empty_db() -> Scratch {
    let s = Scratch::new();
    drop(foldsweep::store::Store::open(&s.path("results.db")).unwrap());
    s
}

#[test]
fn serve_answers_only_to_its_own_host_names() {
    let s = tiny_sweep_done();
    let served = Served::start(&s, "127.0.0.1:0", &[]);
    let port = served.port;
    // What a page on a name that resolves to 127.0.0.1 makes the browser send.
    for host in ["evil.example", &format!("evil.example:{port}"), "127.0.0.1.nip.example", "[::2]"]
    {
        for path in ["/api/sweeps", "/", "/sweeps/tiny", "/assets/app.js"] {
            let reply = served.request("GET", path, &[("Host", host)]);
            assert_eq!(reply.status, 403, "Host {host}, {path}: {}", reply.body);
            assert!(!reply.body.contains("tiny"), "{}", reply.body);
        }
    }
    // Before the token: no token at all is 403 too, not 401.
    let bare = crate::serve::http(port, "GET", "/api/sweeps", &[("Host", "evil.example")]);
    assert_eq!(bare.status, 403);
    // An absolute-form target names its host itself.
    let absolute = served.request("GET", "http://evil.example/api/sweeps", &[]);
    assert_eq!(absolute.status, 403, "{}", absolute.body);
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "LocalHost".into(),
        "[::1]".into(),
    ] {
        assert_eq!(served.request("GET", "/api/sweeps", &[("Host", &host)]).status, 200, "{host}");
    }
    // A request without any Host cannot be checked.
    let raw = format!(
        "GET /api/sweeps HTTP/1.1\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        served.token.as_ref().unwrap()
    );
    let reply = Reply::parse(&exchange(port, raw.as_bytes(), Duration::from_secs(10)));
    assert_eq!(reply.status, 400);
}

/// Slow clients (the head of a request, then a byte every 0.4 s, never ending) from another
/// address hold connections, never workers: the tests' own requests are answered within a
/// second meanwhile; past the per-client limit (32) a connection is refused at once; and the
/// head deadline (10 s) closes every slow one.
#[test]
fn serve_answers_within_a_second_while_slow_clients_trickle() {
    let s = empty_db();
    let served = Served::start(&s, "127.0.0.1:0", &[]);
    let port = served.port;
    let started = Instant::now();
    let slow: Vec<TcpStream> = (0..40).map(|_| connect_from([127, 0, 0, 2], port)).collect();
    let writers: Vec<TcpStream> = slow.iter().map(|c| c.try_clone().unwrap()).collect();
    let trickle = std::thread::spawn(move || {
        let mut writers = writers;
        for w in &mut writers {
            let _ = w.write_all(b"GET /api/sweeps HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
        }
        while started.elapsed() < Duration::from_secs(16) {
            for w in &mut writers {
                let _ = w.write_all(b"a");
            }
            std::thread::sleep(Duration::from_millis(400));
        }
    });

    std::thread::sleep(Duration::from_millis(500));
    for i in 0..20 {
        let asked = Instant::now();
        let reply = served.get(if i % 2 == 0 { "/api/sweeps" } else { "/" });
        let took = asked.elapsed();
        assert_eq!(reply.status, 200);
        assert!(took < Duration::from_secs(1), "request {i} took {took:?} beside slow clients");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Every slow connection ends: at once with a 503 past the limit, else at the deadline.
    let (mut refused, mut cut) = (0, 0);
    for mut c in slow {
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut answer = Vec::new();
        let _ = c.read_to_end(&mut answer);
        let ended = started.elapsed();
        let text = String::from_utf8_lossy(&answer);
        if text.contains("too many connections") {
            refused += 1;
        } else {
            assert!(ended < Duration::from_secs(15), "a slow client held on for {ended:?}");
            cut += 1;
        }
    }
    assert_eq!((refused, cut), (8, 32), "32 connections per client, the rest refused");
    assert!(started.elapsed() < Duration::from_secs(16), "the trickle outlived every connection");
    trickle.join().unwrap();
    assert_eq!(served.get("/api/sweeps").status, 200);
}

/// A tiny deterministic generator (xorshift64*), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Pieces a hostile head is made of.
const PIECES: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b"\0",
    b" ",
    b":",
    b"%",
    b"%2e%2e/",
    b"../",
    b"?token=",
    b"Content-Length: 99999999999999999999\r\n",
    b"Content-Length: -1\r\n",
    b"Content-Length: 5\r\nContent-Length: 6\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: chunked, identity\r\n",
    b"Host: evil.example\r\n",
    b"Host: \r\n",
    b"Expect: 100-continue\r\n",
    b"Connection: upgrade\r\nUpgrade: h2c\r\n",
    b"\xff\xfe\xfd",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"GET http://127.0.0.1/ HTTP/1.1\r\n",
    b"X-Fragment: main\r\n",
    b"ffffffffffffffff\r\n",
];

fn mangle(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut head = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(head.len() + 1);
        match rng.below(6) {
            0 if !head.is_empty() => {
                let last = head.len() - 1;
                head[at.min(last)] = rng.next() as u8;
            }
            1 => {
                head.splice(at..at, PIECES[rng.below(PIECES.len())].iter().copied()).for_each(drop)
            }
            2 => head.truncate(at),
            3 => {
                let end = (at + rng.below(16)).min(head.len());
                head.drain(at..end);
            }
            4 => {
                let long = vec![b"aZ/%"[rng.below(4)]; rng.below(12_000)];
                head.splice(at..at, long).for_each(drop);
            }
            _ => {
                let random: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
                head.splice(at..at, random).for_each(drop);
            }
        }
    }
    head
}

/// A few thousand random and mangled request heads, each given 5 s: none hangs the server or
/// panics it, and it answers a normal request after.
#[test]
fn serve_survives_thousands_of_mangled_request_heads() {
    let s = empty_db();
    let mut served = Served::start(&s, "127.0.0.1:0", &[]);
    let token = served.token.clone().unwrap();
    let seeds: Vec<Vec<u8>> = [
        format!("GET /api/sweeps HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"),
        format!("GET /sweeps/a%2Fb?sort=oof&token={token} HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        format!("GET /configs/0123456789ab HTTP/1.1\r\nHost: [::1]\r\nCookie: foldsweep_token_{}={token}; a=b\r\n\r\n", served.port),
        "HEAD / HTTP/1.0\r\n\r\n".into(),
        "POST /api/sweeps HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello".into(),
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".into(),
    ]
    .map(String::into_bytes)
    .into();
    let mut rng = Rng(0x5eed_f01d_5eed_f01d);
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    let tries = 3000;
    for i in 0..tries {
        let head = if i % 6 == 5 {
            (0..rng.below(300)).map(|_| rng.next() as u8).collect()
        } else {
            let seed = seeds[rng.below(seeds.len())].clone();
            mangle(&mut rng, &seed)
        };
        let asked = Instant::now();
        let mut c = TcpStream::connect(("127.0.0.1", served.port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = c.write_all(&head);
        let _ = c.shutdown(Shutdown::Write);
        let mut answer = Vec::new();
        let read = c.read_to_end(&mut answer);
        let took = asked.elapsed();
        assert!(
            took < Duration::from_secs(5)
                && !matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "head {i} was not answered or closed in 5 s: {:?}",
            String::from_utf8_lossy(&head)
        );
        let status = String::from_utf8_lossy(answer.get(9..12).unwrap_or(b"---")).into_owned();
        *statuses.entry(status).or_default() += 1;
    }
    assert!(served.alive(), "serve died");
    assert_eq!(served.get("/api/sweeps").status, 200, "after {statuses:?}");
    // The mix really reached the server's parsers and its routes.
    for status in ["400", "200", "404", "403"] {
        assert!(statuses.contains_key(status), "no {status} among {statuses:?}");
    }
    let err = served.stop();
    assert!(!err.contains("panicked"), "serve panicked:\n{err}");
}

/// A GET with a body is read to its end (no reset that could lose the answer) and the
/// connection serves the next request; a body over the limit is 413.
#[test]
fn serve_reads_request_bodies_to_their_end() {
    let s = empty_db();
    let served = Served::start(&s, "127.0.0.1:0", &[]);
    let token = served.token.clone().unwrap();
    let auth = format!("Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n");
    let body = "x".repeat(20_000);
    let two = format!(
        "GET /api/sweeps HTTP/1.1\r\n{auth}Content-Length: {}\r\n\r\n{body}\
         GET /api/sweeps HTTP/1.1\r\n{auth}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n\
         GET / HTTP/1.1\r\n{auth}Connection: close\r\n\r\n",
        body.len()
    );
    let answer =
        String::from_utf8(exchange(served.port, two.as_bytes(), Duration::from_secs(10))).unwrap();
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 3, "{answer}");

    let big = format!("GET /api/sweeps HTTP/1.1\r\n{auth}Content-Length: 100000\r\n\r\n");
    let reply = Reply::parse(&exchange(served.port, big.as_bytes(), Duration::from_secs(10)));
    assert_eq!(reply.status, 413);
    assert_eq!(served.get("/api/sweeps").status, 200);
}

/// The tiny sweep with a second learning rate of 1e30, whose every job diverges at epoch 1
/// (its loss and RMSE stored as +inf).
fn diverging_sweep_done() -> Scratch {
    let s = Scratch::new();
    let sweep = crate::common::TINY_SWEEP
        .replace("lr = 3e-3\n", "")
        .replace("[resources]", "lr = [3e-3, 1e30]\n\n[resources]");
    s.write("sweep.toml", sweep);
    let out = s.run(&["run", "sweep.toml", "--db", "results.db"]);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    s
}

/// Before, +inf reached a chart's range and the config page spun a worker forever.
#[test]
fn serve_answers_a_diverged_configs_page_in_milliseconds() {
    let s = diverging_sweep_done();
    let served = Served::start(&s, "127.0.0.1:0", &[]);
    let results = served.json("/api/sweeps/tiny/results");
    let rows = results["results"].as_array().unwrap();
    let diverged: Vec<&str> = rows
        .iter()
        .filter(|r| r["diverged"].as_u64() > Some(0))
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(diverged.len(), 2, "the two lr=1e30 configs");
    for id in diverged {
        for _ in 0..3 {
            let asked = Instant::now();
            let page = served.get(&format!("/configs/{id}"));
            let took = asked.elapsed();
            assert_eq!(page.status, 200);
            assert!(took < Duration::from_secs(1), "config page took {took:?}");
            assert!(page.body.contains("diverged at epoch 1"), "marked");
            for svg in page.body.split("<svg").skip(1) {
                let svg = svg.split("</svg>").next().unwrap();
                assert!(!svg.contains("NaN") && !svg.contains("inf"), "a chart with NaN: {svg}");
            }
        }
        assert_eq!(served.json(&format!("/api/configs/{id}"))["folds"][0]["status"], "diverged");
    }
    let asked = Instant::now();
    assert_eq!(served.get("/sweeps/tiny").status, 200);
    assert!(asked.elapsed() < Duration::from_secs(2), "sweep page took {:?}", asked.elapsed());
    let err = served.stop();
    assert!(err.is_empty(), "serve reported errors:\n{err}");
}

/// A fold that trained for two epochs and diverged at the third is drawn to epoch 2 and
/// marked there (written through the store, as the coordinator would).
#[test]
fn serve_draws_a_diverged_fold_to_its_last_finite_epoch() {
    use foldsweep::store::{NewConfig, Store, SweepDefinition};
    use foldsweep::train::EpochLog;
    let s = Scratch::new();
    let mut store = Store::open(&s.path("results.db")).unwrap();
    let sweep = SweepDefinition {
        name: "made",
        definition: "",
        data_fingerprint: "fp",
        fold_hash: "fh",
        folds: 1,
        keep_trials: false,
    };
    let config = NewConfig {
        id: "0123456789ab",
        params_json: "{}",
        varying_json: "{}",
        label: "lr=1e30",
        data_fingerprint: "fp",
    };
    let sweep_id =
        store.register_sweep(&sweep, &[config], &[("0123456789ab".into(), 0)]).unwrap().0;
    let job = store.claim_next(sweep_id, "cpu", &|_, _| true, false).unwrap().unwrap();
    let epoch = |epoch, rmse: f64| EpochLog {
        epoch,
        train_loss: rmse,
        val_rmse: rmse,
        lr: 1e30,
        seconds: 0.1,
        probe_rmse: None,
        shifted_rmse: None,
    };
    let log = [epoch(1, 2.5), epoch(2, 1.5), epoch(3, f64::INFINITY)];
    store.record_diverged(job.id, 3, &log, "training diverged at epoch 3").unwrap();
    drop(store);

    let served = Served::start(&s, "127.0.0.1:0", &[]);
    let asked = Instant::now();
    let page = served.get("/configs/0123456789ab");
    assert!(asked.elapsed() < Duration::from_secs(1), "took {:?}", asked.elapsed());
    assert_eq!(page.status, 200);
    let svg = page.body.split("Learning curves").nth(1).expect("the learning curves figure");
    let line = svg.split("<polyline points=\"").nth(1).expect("the fold's line");
    let points = line.split('"').next().unwrap().split(' ').count();
    assert_eq!(points, 2, "epochs 1 and 2, not the infinite third: {line}");
    assert!(svg.contains("diverged at epoch 3"), "marked where it diverged");
}

#[test]
fn serve_answers_a_host_named_by_allow_host_and_still_refuses_others() {
    let s = tiny_sweep_done();
    let served = Served::start(&s, "127.0.0.1:0", &["--allow-host", "Results.LAN."]);
    let port = served.port;
    for host in ["results.lan", &format!("results.lan:{port}"), "RESULTS.lan"] {
        let reply = served.request("GET", "/api/sweeps", &[("Host", host)]);
        assert_eq!(reply.status, 200, "Host {host}: {}", reply.body);
    }
    for host in ["other.lan", "results.lan.evil.example", "evil.example"] {
        assert_eq!(served.request("GET", "/api/sweeps", &[("Host", host)]).status, 403, "{host}");
    }
}

#[test]
fn serve_no_token_opens_loopback_only_and_keeps_the_host_check() {
    let s = tiny_sweep_done();
    let served = Served::start(&s, "127.0.0.1:0", &["--no-token"]);
    let port = served.port;
    // No Authorization header, no cookie: answered.
    let reply = crate::serve::http(port, "GET", "/api/sweeps", &[]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.contains("tiny"), "{}", reply.body);
    // A page on another name still reads nothing (DNS rebinding needs no token to try).
    let rebound = crate::serve::http(port, "GET", "/api/sweeps", &[("Host", "evil.example")]);
    assert_eq!(rebound.status, 403);
    drop(served);

    // Anywhere but loopback it refuses to start: bad input naming the flag, before binding.
    let refused = s.run(&["serve", "--db", "results.db", "--addr", "0.0.0.0:0", "--no-token"]);
    crate::common::assert_bad_input(&refused, &["--no-token", "loopback only"]);
    let both = s.run(&["serve", "--db", "results.db", "--no-token", "--token", &"t".repeat(32)]);
    crate::common::assert_bad_input(&both, &["--no-token", "--token"]);
}
