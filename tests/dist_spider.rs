//! The spider with its frontier in Redis (`--frontier`, features `monkey` and `redis`):
//! several spider processes share one crawl against `site_server` and fetch each page once;
//! one killed with `kill -9` mid-crawl loses nothing (its pages are fetched by the others,
//! the extra fetches counted); a Redis restart mid-crawl (append-only file) changes nothing.
//! Needs the examples built with both features (`cargo build --features monkey,redis
//! --examples`; `.ci/run` does).
#![cfg(all(feature = "monkey", feature = "redis"))]

/// What a spider that refuses `--frontier` most likely means.
const BUILT_WITH_REDIS: &str = "(a spider built without the redis feature refuses \
     --frontier: cargo build --features monkey,redis --examples)";

mod util;

use util::example;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use util::redis_server::RedisServer;

/// greenrt's `site_server`: `pages` pages, 6 links each, `delay_ms` per answer.
struct Site {
    child: Child,
    addr: String,
}

impl Site {
    fn start(pages: u32, delay_ms: u32) -> Site {
        let mut child = Command::new(example("site_server"))
            .args(["--addr", "127.0.0.1:0", "--links", "6"])
            .args([
                "--pages",
                &pages.to_string(),
                "--delay-ms",
                &delay_ms.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("site_server (cargo build --features monkey,redis --examples)");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let addr = first.trim().rsplit(' ').next().unwrap().to_string();
        Site { child, addr }
    }

    /// `(requests, distinct pages, most fetches of one page)` as the server counted them.
    fn stats(&self) -> (u64, u64, u64) {
        let text = ureq::get(&format!("http://{}/stats", self.addr))
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        let field = |name: &str| -> u64 {
            text.split_whitespace()
                .find_map(|f| f.strip_prefix(name))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in {text:?}"))
        };
        (
            field("requests="),
            field("distinct="),
            field("max_per_page="),
        )
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A spider process on the shared frontier, its output read line by line on a thread.
struct Spider {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Spider {
    fn start(site: &Site, redis: &str, crawl: &str, lease_s: &str) -> Spider {
        let mut child = Command::new(example("spider"))
            .args(["--start", &format!("http://{}/page/0", site.addr)])
            .args(["--frontier", redis, "--crawl", crawl, "--lease", lease_s])
            .args(["--concurrency", "10", "--timeout", "5"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spider (cargo build --features monkey,redis --examples)");
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Spider {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits until this spider has printed `n` page lines.
    fn wait_for_pages(&mut self, n: usize) {
        let t0 = Instant::now();
        while self
            .seen
            .iter()
            .filter(|l| l.contains("/page/") && !l.starts_with("GET "))
            .count()
            < n
        {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "no progress: {:?}",
                self.seen
            );
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the spider ended before {n} pages: {status} {BUILT_WITH_REDIS}");
            }
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                self.seen.push(line);
            }
        }
    }

    /// Waits for the spider to end (60 s at most); returns its `spider:` and `crawl:` lines.
    fn finish(mut self) -> (String, String) {
        let status = self.wait();
        assert_ne!(
            status.code(),
            Some(2),
            "the spider refused its flags: {BUILT_WITH_REDIS}"
        );
        self.seen.extend(self.lines.iter());
        let find = |prefix: &str| {
            self.seen
                .iter()
                .find(|l| l.starts_with(prefix))
                .cloned()
                .unwrap_or_else(|| panic!("no {prefix} line in {:?}", self.seen))
        };
        (find("spider: "), find("crawl: "))
    }

    /// Waits for the spider to end (60 s at most).
    fn wait(&mut self) -> std::process::ExitStatus {
        let t0 = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "the spider did not end"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `name=value` from a final line.
fn value(line: &str, name: &str) -> i64 {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line:?}"))
}

/// `n` spiders on one frontier: 240 pages, each fetched once in all (the site's count), shared
/// among them, and every spider reports the same crawl totals.
fn spiders_share_a_crawl(n: usize, crawl: &str) {
    let redis = RedisServer::start();
    let site = Site::start(240, 20);
    let spiders: Vec<Spider> = (0..n)
        .map(|_| Spider::start(&site, &redis.url(0), crawl, "10"))
        .collect();
    let lines: Vec<(String, String)> = spiders.into_iter().map(Spider::finish).collect();
    let mine: Vec<i64> = lines.iter().map(|(s, _)| value(s, "pages")).collect();
    assert_eq!(mine.iter().sum::<i64>(), 240, "{lines:?}");
    assert!(
        mine.iter().all(|&n| n > 0),
        "a spider fetched nothing: {lines:?}"
    );
    for (_, crawl) in &lines {
        assert_eq!(value(crawl, "pages"), 240, "{crawl}");
        assert_eq!(
            (value(crawl, "errors"), value(crawl, "requeued")),
            (0, 0),
            "{crawl}"
        );
    }
    assert_eq!(
        site.stats(),
        (240, 240, 1),
        "the site's count (requests, distinct, max)"
    );
}

#[test]
fn two_spiders_fetch_each_page_once_between_them() {
    spiders_share_a_crawl(2, "two");
}

#[test]
fn three_spiders_fetch_each_page_once_between_them() {
    spiders_share_a_crawl(3, "three");
}

/// One of three spiders is killed with SIGKILL after its fifth page: the other two finish the
/// crawl, every page is fetched, and the pages fetched twice are the ones the dead spider
/// held — counted `requeued`, at most its concurrency (10).
#[test]
fn a_spider_killed_mid_crawl_loses_nothing() {
    let redis = RedisServer::start();
    let site = Site::start(240, 50);
    let mut spiders: Vec<Spider> = (0..3)
        .map(|_| Spider::start(&site, &redis.url(0), "killed", "1"))
        .collect();
    spiders[0].wait_for_pages(5);
    assert!(
        site.stats().1 < 200,
        "the crawl was nearly over before the kill"
    );
    let mut victim = spiders.remove(0);
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();
    let lines: Vec<(String, String)> = spiders.into_iter().map(Spider::finish).collect();
    let (requests, distinct, _) = site.stats();
    assert_eq!(distinct, 240, "pages never fetched");
    for (_, crawl) in &lines {
        assert_eq!(value(crawl, "pages"), 240, "each page counts once: {crawl}");
    }
    let requeued = value(&lines[0].1, "requeued");
    assert!((1..=10).contains(&requeued), "{lines:?}");
    assert!(
        requests - distinct <= requeued as u64,
        "{} extra fetches, {requeued} requeued",
        requests - distinct
    );
}

/// Redis is killed and restarted from its append-only file while three spiders crawl: they
/// reconnect and finish, each page fetched once, the totals exact.
#[test]
fn a_redis_restart_mid_crawl_changes_nothing() {
    let mut redis = RedisServer::start_durable();
    let site = Site::start(240, 100);
    let mut spiders: Vec<Spider> = (0..3)
        .map(|_| Spider::start(&site, &redis.url(0), "restart", "10"))
        .collect();
    spiders[0].wait_for_pages(10);
    assert!(
        site.stats().1 < 200,
        "the crawl was nearly over before the restart"
    );
    redis.restart(Duration::from_millis(300));
    let lines: Vec<(String, String)> = spiders.into_iter().map(Spider::finish).collect();
    assert_eq!(
        site.stats(),
        (240, 240, 1),
        "(requests, distinct, max) after the restart"
    );
    for (_, crawl) in &lines {
        assert_eq!(value(crawl, "pages"), 240, "{crawl}");
    }
}
