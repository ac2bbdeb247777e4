//! monkey: unmodified blocking code (std::net, std::thread::sleep) cooperates on green
//! threads after `patch_all()`; semantics are kept; plain threads and unpatched calls are
//! untouched. Run with `cargo test --features monkey --test monkey`.
#![cfg(feature = "monkey")]

mod util;

use util::example;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// patch_all is process-wide; tests that need it unpatched take turns with the others.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A plain-thread server that accepts connections, holds each for `hold`, writes one byte
/// and closes; it records how many connections were open at once.
fn holding_server(hold: Duration) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // std listens with a backlog of 128; 200 clients connecting at once need more, or the
    // kernel drops SYNs and those clients retry a second later.
    // SAFETY (test): listen(2) again on our own listening socket raises its backlog.
    assert_eq!(
        unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&listener), 1024) },
        0
    );
    let addr = listener.local_addr().unwrap();
    let peak = Arc::new(AtomicUsize::new(0));
    let live = Arc::new(AtomicUsize::new(0));
    let p = peak.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let (live, peak) = (live.clone(), p.clone());
            std::thread::spawn(move || {
                let now = live.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(hold);
                let _ = conn.write_all(b"x");
                live.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, peak)
}

#[test]
fn two_hundred_std_clients_overlap_on_one_hub() {
    let _t = turn();
    util::raise_fd_limit();
    greenrt::monkey::patch_all();
    let (addr, peak) = holding_server(Duration::from_millis(300));
    let start = Instant::now();
    let clients: Vec<_> = (0..200)
        .map(|_| {
            greenrt::spawn(move || {
                let mut conn = TcpStream::connect(addr).unwrap(); // std, unmodified
                let mut byte = [0u8; 1];
                conn.read_exact(&mut byte).unwrap();
                byte[0]
            })
        })
        .collect();
    let got: Vec<u8> = greenrt::joinall(clients)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(got.iter().all(|&b| b == b'x'));
    assert_eq!(
        peak.load(Ordering::SeqCst),
        200,
        "the server saw all 200 at once"
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn a_thousand_thread_sleeps_overlap() {
    let _t = turn();
    greenrt::monkey::patch_all();
    let start = Instant::now();
    let sleepers: Vec<_> = (0..1000)
        .map(|_| greenrt::spawn(|| std::thread::sleep(Duration::from_millis(200))))
        .collect();
    greenrt::joinall(sleepers);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(2),
        "took {took:?}"
    );
}

#[test]
fn a_user_nonblocking_socket_still_gets_would_block() {
    let _t = turn();
    greenrt::monkey::patch_all();
    let (addr, _) = holding_server(Duration::from_millis(500));
    let h = greenrt::spawn(move || {
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 8];
        conn.read(&mut buf).map_err(|e| e.kind())
    });
    assert_eq!(h.join().unwrap(), Err(ErrorKind::WouldBlock));
}

#[test]
fn so_rcvtimeo_fires_on_a_green_thread() {
    let _t = turn();
    greenrt::monkey::patch_all();
    let (addr, _) = holding_server(Duration::from_secs(5));
    let ticker = util::Ticker::start(10, Duration::from_millis(10));
    let h = greenrt::spawn(move || {
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let start = Instant::now();
        let err = conn.read(&mut [0u8; 8]).unwrap_err().kind();
        (err, start.elapsed())
    });
    let (err, took) = h.join().unwrap();
    assert!(
        matches!(err, ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err:?}"
    );
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(
        ticker.finish(),
        10,
        "the hub kept running while the read waited"
    );
}

#[test]
fn plain_threads_and_unpatched_calls_are_untouched() {
    let _t = turn();
    greenrt::monkey::unpatch_all();
    // Unpatched: a green thread's std sleep blocks the hub, so two of them do not overlap.
    let start = Instant::now();
    let a = greenrt::spawn(|| std::thread::sleep(Duration::from_millis(100)));
    let b = greenrt::spawn(|| std::thread::sleep(Duration::from_millis(100)));
    a.join().unwrap();
    b.join().unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "unpatched sleeps overlapped"
    );
    greenrt::monkey::patch_all();
    // Patched, but on plain OS threads: they block as usual (and still work).
    let start = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(|| std::thread::sleep(Duration::from_millis(50))))
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert!(start.elapsed() >= Duration::from_millis(50));
    // Files are untouched on green threads.
    let h = greenrt::spawn(|| {
        let path = std::env::temp_dir().join(format!("greenrt-monkey-{}", std::process::id()));
        std::fs::write(&path, b"file data").unwrap();
        let back = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        back
    });
    assert_eq!(h.join().unwrap(), b"file data");
}

#[test]
fn vectored_io_and_poll_cooperate() {
    let _t = turn();
    greenrt::monkey::patch_all();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_millis(200)); // the green reader must wait
        let mut buf = [0u8; 11];
        conn.read_exact(&mut buf).unwrap();
        conn.write_all(&buf).unwrap();
    });
    let ticker = util::Ticker::start(10, Duration::from_millis(10));
    let h = greenrt::spawn(move || {
        let mut conn = TcpStream::connect(addr).unwrap();
        let parts = [
            std::io::IoSlice::new(b"hello "),
            std::io::IoSlice::new(b"world"),
        ];
        assert_eq!(conn.write_vectored(&parts).unwrap(), 11); // writev
        let (mut a, mut b) = ([0u8; 6], [0u8; 5]);
        let mut got = 0;
        while got < 11 {
            let mut bufs = [
                std::io::IoSliceMut::new(&mut a[got.min(6)..]),
                std::io::IoSliceMut::new(&mut b[got.saturating_sub(6)..]),
            ];
            got += conn.read_vectored(&mut bufs).unwrap(); // readv
        }
        [&a[..], &b[..]].concat()
    });
    assert_eq!(h.join().unwrap(), b"hello world");
    assert_eq!(ticker.finish(), 10);
    // poll(2) with a timeout parks only the green thread and returns 0 on time.
    let ticker = util::Ticker::start(10, Duration::from_millis(10));
    let h = greenrt::spawn(|| {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut pfd = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&a),
            events: libc::POLLIN,
            revents: 0,
        };
        let start = Instant::now();
        // SAFETY (test): one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 150) };
        (n, start.elapsed())
    });
    let (n, took) = h.join().unwrap();
    assert_eq!(n, 0);
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(ticker.finish(), 10);
}

#[test]
fn name_lookups_run_beside_the_hub() {
    use std::net::ToSocketAddrs;
    let _t = turn();
    greenrt::monkey::patch_all();
    let h = greenrt::spawn(|| ("localhost", 80).to_socket_addrs().map(|a| a.count()));
    assert!(h.join().unwrap().unwrap() > 0, "localhost resolves");
    // It resolved on a helper thread: the resolver's workers exist now.
    let helpers = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("greenrt-worker"))
        .count();
    assert!(
        helpers > 0,
        "the lookup did not go through the helper threads"
    );
    // A lookup that may be slow (no such name: the resolver may time out) must not stall a
    // green thread that ticks meanwhile.
    let start = Instant::now();
    let ticker = greenrt::spawn(move || {
        for _ in 0..10 {
            greenrt::sleep(Duration::from_millis(10));
        }
        start.elapsed()
    });
    let lookup = greenrt::spawn(move || {
        let _ = ("greenrt-no-such-host.invalid", 80).to_socket_addrs();
        start.elapsed()
    });
    let lookup_took = lookup.join().unwrap();
    let ticked_in = ticker.join().unwrap();
    if lookup_took > Duration::from_millis(600) {
        assert!(
            ticked_in < Duration::from_millis(500),
            "the hub stalled: ticks took {ticked_in:?}"
        );
    }
}

/// A blocking HTTP client crate, unmodified, fetching concurrently from green threads.
#[test]
fn ureq_fetches_concurrently_on_green_threads() {
    let _t = turn();
    greenrt::monkey::patch_all();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // A plain-thread HTTP server that answers each request after 200 ms.
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf);
                std::thread::sleep(Duration::from_millis(200));
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            });
        }
    });
    let start = Instant::now();
    let fetches: Vec<_> = (0..20)
        .map(|_| {
            greenrt::spawn(move || {
                ureq::get(&format!("http://{addr}/"))
                    .call()
                    .unwrap()
                    .into_string()
                    .unwrap()
            })
        })
        .collect();
    let bodies: Vec<String> = greenrt::joinall(fetches)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(bodies.iter().all(|b| b == "ok"));
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "20 fetches of 200 ms did not overlap: {:?}",
        start.elapsed()
    );
}

/// The spider against site_server fetches every page exactly once.
#[test]
fn spider_fetches_every_page_exactly_once() {
    use std::io::BufRead;
    let mut server = std::process::Command::new(example("site_server"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--pages",
            "120",
            "--links",
            "4",
            "--delay-ms",
            "20",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("site_server (built by cargo test --features monkey)");
    let mut out = std::io::BufReader::new(server.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let addr = first.trim().rsplit(' ').next().unwrap().to_string();
    let spider = std::process::Command::new(example("spider"))
        .args([
            "--start",
            &format!("http://{addr}/page/0"),
            "--concurrency",
            "20",
            "--max-pages",
            "1000",
        ])
        .output()
        .expect("spider");
    let stdout = String::from_utf8_lossy(&spider.stdout);
    let last = stdout.lines().last().unwrap_or("");
    assert!(last.starts_with("spider: pages=120 errors=0 "), "{last}");
    assert!(last.ends_with("mode=green"), "{last}");
    let urls: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("/page/") && !l.starts_with("GET "))
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    let starts = stdout.lines().filter(|l| l.starts_with("GET ")).count();
    assert_eq!(starts, 120, "a GET line as each fetch starts");
    let most_in_flight = stdout
        .lines()
        .scan(0i32, |open, l| {
            *open += if l.starts_with("GET ") {
                1
            } else if l.contains("/page/") {
                -1
            } else {
                0
            };
            Some(*open)
        })
        .max()
        .unwrap_or(0);
    assert!(
        most_in_flight >= 5,
        "fetches never overlapped in the output ({most_in_flight} at most in flight)"
    );
    let distinct: std::collections::HashSet<&&str> = urls.iter().collect();
    assert_eq!(
        (urls.len(), distinct.len()),
        (120, 120),
        "each page printed once"
    );
    let stats = ureq::get(&format!("http://{addr}/stats"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert_eq!(
        stats.trim(),
        "requests=120 distinct=120 max_per_page=1",
        "the server's view"
    );
    let _ = server.kill();
    let _ = server.wait();
}

/// Starts Python's `ThreadingHTTPServer` site (`examples/python/site.py`); python3 is part of
/// the test machine (a missing one fails here, with this message).
fn python_site(args: &[&str]) -> (std::process::Child, String) {
    use std::io::BufRead;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/python/site.py");
    let mut site = std::process::Command::new("python3")
        .arg(script)
        .args(["--port", "0"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("these tests need python3 on the PATH (it serves the reference site)");
    let mut line = String::new();
    std::io::BufReader::new(site.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().trim_start_matches("listening on ").to_string();
    (site, addr)
}

fn spider_last_line(args: &[&str]) -> String {
    let out = std::process::Command::new(example("spider"))
        .args(args)
        .output()
        .expect("spider");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .to_string()
}

fn secs_of(line: &str) -> f64 {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("secs="))
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::MAX)
}

/// Python's `http.server` writes headers and body separately; on a reused keep-alive
/// connection Nagle (server) and delayed ACK (client) then cost 40 ms a page. 30 pages with
/// no server delay, one at a time: well under a second (it took 1.3 s with keep-alive).
#[test]
fn the_spider_does_not_wait_for_delayed_acks() {
    let (mut site, addr) = python_site(&["--delay-ms", "0"]);
    let start = format!("http://{addr}/page/0");
    let last = spider_last_line(&["--start", &start, "--mode", "serial", "--max-pages", "30"]);
    let _ = site.kill();
    let _ = site.wait();
    assert!(last.starts_with("spider: pages=30 errors=0 "), "{last}");
    assert!(
        secs_of(&last) < 0.8,
        "30 pages one at a time took {} s: ~40 ms of delayed ACK each? ({last})",
        secs_of(&last)
    );
}

/// Against a server with Python's default listen backlog (5), a burst of 100 connects
/// overflows it; the spider still fetches every page exactly once, with no error, in bounded
/// time (connect timeout, a deadline per attempt, retries with backoff). Before: 17 errors and
/// 50 s, stuck behind a 30 s read timeout.
#[test]
fn the_spider_finishes_against_a_small_listen_backlog() {
    let (mut site, addr) = python_site(&["--backlog", "5", "--pages", "150", "--delay-ms", "20"]);
    let start = format!("http://{addr}/page/0");
    let last = spider_last_line(&["--start", &start, "--timeout", "3"]);
    let stats = ureq::get(&format!("http://{addr}/stats"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let _ = site.kill();
    let _ = site.wait();
    assert!(last.starts_with("spider: pages=150 errors=0 "), "{last}");
    assert!(secs_of(&last) < 30.0, "{last}");
    assert!(
        stats.contains("distinct=150"),
        "the site did not see every page: {stats}"
    );
}
