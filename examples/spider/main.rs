//! A web crawler on an unmodified blocking HTTP client (`ureq`): with `monkey::patch_all()`,
//! its blocking sockets park only the green thread that fetches, so N fetches overlap on one
//! OS thread — gevent's spider, in Rust. Run it against `site_server` (or Python's
//! `examples/python/site.py`; `spider_compare` runs both spiders against it).
//!
//! `cargo run --release --features monkey --example spider -- --start http://127.0.0.1:8800/page/0 [--concurrency 100] [--max-pages 1000] [--mode green|serial|threads] [--timeout 10]`
//!
//! **Many processes, one crawl** (built with `--features monkey,redis`): add
//! `--frontier redis://HOST:PORT/DB --crawl NAME [--lease 10]` and start the same command on
//! as many machines as you like; they share the frontier in Redis (see `redis_frontier.rs`).
//! Each prints its own final line, then the crawl's totals across processes:
//! `crawl: name=<NAME> pages=<n> errors=<n> bytes=<n> requeued=<n> redis_round_trips_here=<n>`
//! (the last is this process's requests to Redis). Use a new `NAME` for a
//! new crawl (a name remembers every URL it saw).
//!
//! It fetches each page once, follows same-host `<a href>` links (relative and absolute),
//! skips fragments, other hosts and non-HTTP schemes, prints `GET <url>` as a fetch starts
//! and a line when it ends (status, bytes, URL) — with N green threads the starts run ahead
//! of the ends, which is the overlap to see — and ends with exactly one line:
//! `spider: pages=<n> errors=<n> bytes=<n> secs=<s> mode=<mode>`.
//! Modes: `green` (N green threads), `serial` (one at a time), `threads` (N OS threads).
//!
//! **A continuous frontier**, not level by level: N workers take URLs from one queue and put
//! the new links they find straight back, so a slow page holds back nobody (crawling level by
//! level, every level waited for its slowest page). The crawl ends when the queue is empty and
//! no fetch is in flight.
//!
//! **Robust fetching.** A connection per request, as Python's `urllib` does: a server that
//! writes its headers and body with separate writes (Python's `http.server`) has Nagle hold
//! the body until the client ACKs the headers, and on a reused keep-alive connection the
//! client delays that ACK by 40 ms — every page then cost 40 ms more (a fresh connection ACKs
//! at once). A connect timeout (3 s), a deadline per attempt (`--timeout`, 10 s) and up to 4 attempts with
//! backoff (100, 200, 400 ms, with jitter) on transport errors: against a server whose listen
//! backlog overflows, a connection the server never took is retried instead of waiting
//! 30 s for an answer that never comes.

#[path = "../common/args.rs"]
mod args;
#[cfg(feature = "redis")]
mod redis_frontier;

use std::collections::HashSet;
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use greenrt::sync::Queue;

/// The outcome of one fetch: (status or 0 for an error, body bytes, links found).
pub type Fetched = (u16, usize, Vec<String>);

/// Resolves `href` against the page at `base` (RFC 3986 rules, by the `url` crate: relative,
/// root-relative, `..`, scheme-relative); None for links a crawler of this site skips: other
/// schemes (`mailto:`, `https:`), other hosts or ports, and fragments of the page itself.
fn resolve(base: &str, href: &str) -> Option<String> {
    let href = href.trim();
    if href.is_empty() || href.starts_with('#') {
        return None; // this very page
    }
    let base = url::Url::parse(base).ok()?;
    let mut link = base.join(href).ok()?;
    link.set_fragment(None);
    let same_site = link.scheme() == "http"
        && link.host_str() == base.host_str()
        && link.port_or_known_default() == base.port_or_known_default();
    same_site.then(|| link.into())
}

/// Every `href="..."` value in an `<a ...>` tag.
fn hrefs(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find("<a ") {
        rest = &rest[at + 3..];
        let tag_end = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..tag_end];
        if let Some(h) = tag.find("href=\"") {
            let value = &tag[h + 6..];
            if let Some(end) = value.find('"') {
                found.push(value[..end].to_string());
            }
        }
    }
    found
}

/// How many times a page is tried when the transport fails (not on an HTTP status).
const ATTEMPTS: u32 = 4;

/// One attempt at `url`: `Err` for a transport failure worth retrying.
fn fetch_once(agent: &ureq::Agent, url: &str) -> Result<Fetched, Box<ureq::Transport>> {
    match agent.get(url).call() {
        Ok(response) => {
            let status = response.status();
            let mut body = String::new();
            if response
                .into_reader()
                .take(10 << 20)
                .read_to_string(&mut body)
                .is_err()
            {
                return Ok((0, 0, Vec::new()));
            }
            let links = hrefs(&body)
                .iter()
                .filter_map(|h| resolve(url, h))
                .collect();
            Ok((status, body.len(), links))
        }
        Err(ureq::Error::Status(code, _)) => Ok((code, 0, Vec::new())),
        Err(ureq::Error::Transport(t)) => Err(Box::new(t)),
    }
}

/// Fetches `url`, retrying transport failures with exponential backoff and jitter.
fn fetch(agent: &ureq::Agent, url: &str) -> Fetched {
    println!("GET {url}"); // as the fetch starts: in green mode these lines run ahead of the answers
    let mut backoff = Duration::from_millis(100);
    for attempt in 1..=ATTEMPTS {
        match fetch_once(agent, url) {
            Ok(fetched) => return fetched,
            Err(e) if attempt == ATTEMPTS => {
                eprintln!("spider: {url}: giving up after {ATTEMPTS} attempts: {e}");
            }
            Err(e) => {
                if std::env::var_os("SPIDER_DEBUG").is_some() {
                    eprintln!("spider: {url}: attempt {attempt}: {e}");
                }
                let jitter = Duration::from_micros(u64::from(jitter_source()) % 50_000);
                std::thread::sleep(backoff + jitter); // monkey-patched: parks only this fetch
                backoff *= 2;
            }
        }
    }
    (0, 0, Vec::new())
}

/// A few random bits (the low bits of the clock) for backoff jitter.
fn jitter_source() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

/// The crawl's shared state: the frontier, the URLs ever admitted, the totals.
struct Crawl {
    frontier: Queue<String>,
    seen: Mutex<HashSet<String>>,
    /// Admitted and not yet done (queued or being fetched): 0 means the crawl is over.
    pending: AtomicUsize,
    max_pages: usize,
    totals: Mutex<(usize, usize, usize)>,
}

impl Crawl {
    fn new(start: String, max_pages: usize) -> Crawl {
        let crawl = Crawl {
            frontier: Queue::new(0),
            seen: Mutex::new(HashSet::new()),
            pending: AtomicUsize::new(0),
            max_pages,
            totals: Mutex::new((0, 0, 0)),
        };
        crawl.admit(start);
        crawl
    }

    /// Queues `url` if it is new and the page budget allows.
    fn admit(&self, url: String) {
        let mut seen = self.seen.lock().expect("no panics while held");
        if seen.len() < self.max_pages && seen.insert(url.clone()) {
            self.pending.fetch_add(1, Ordering::AcqRel);
            let _ = self.frontier.put(url);
        }
    }

    /// One worker: fetch what the frontier gives until the crawl is over.
    fn work(&self, agent: &ureq::Agent) {
        while let Ok(url) = self.frontier.get() {
            let (status, size, links) = fetch(agent, &url);
            println!("{status:>3} {size:>7} {url}");
            {
                let mut t = self.totals.lock().expect("no panics while held");
                t.0 += 1;
                t.1 += usize::from(status != 200);
                t.2 += size;
            }
            for link in links {
                self.admit(link);
            }
            if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
                self.frontier.close(); // nothing queued, nothing in flight: done
            }
        }
    }
}

fn main() {
    let args = args::Cli::new(
        "spider",
        "a web crawler on the blocking ureq client made cooperative by monkey::patch_all",
    )
    .mirrors("the gevent spider (monkey.patch_all + urllib), course note 1 (pools, callbacks, gevent, asyncio)")
    .flag("start", "URL", "http://127.0.0.1:8800/page/0", "the first page")
    .flag("concurrency", "N", 100usize, "fetches at once")
    .flag("max-pages", "N", 1000, "stop after this many pages")
    .flag("mode", "MODE", "green", "green, serial or threads")
    .flag("timeout", "S", 10.0, "per-request deadline")
    .flag("frontier", "URL", "", "redis://HOST:PORT/DB: share the crawl (features monkey,redis)")
    .flag("crawl", "NAME", "", "the shared crawl's name")
    .flag("lease", "S", 10.0f64, "how long a task may go without a heartbeat")
    .parse();
    let start_url: String = match url::Url::parse(args.raw("start")) {
        Ok(start) if start.scheme() == "http" => start.into(), // normalised as links will be
        _ => {
            eprintln!(
                "error: --start must be an http:// URL, not {:?}",
                args.raw("start")
            );
            std::process::exit(2);
        }
    };
    let concurrency: usize = args.get::<usize>("concurrency").max(1);
    let max_pages: usize = args.get("max-pages");
    let mode: String = args.get("mode");
    let timeout: f64 = args.get("timeout");
    let frontier: String = args.get("frontier");
    if !["green", "serial", "threads"].contains(&mode.as_str()) {
        eprintln!("error: --mode must be green, serial or threads");
        std::process::exit(2);
    }
    greenrt::monkey::patch_all();
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(3))
        .timeout(Duration::from_secs_f64(timeout.max(0.001)))
        .max_idle_connections(0)
        .max_idle_connections_per_host(0)
        .build();
    if !frontier.is_empty() {
        if mode != "green" {
            eprintln!("error: a shared frontier (--frontier) crawls in green mode only");
            std::process::exit(2);
        }
        #[cfg(not(feature = "redis"))]
        {
            eprintln!(
                "error: --frontier needs the redis feature: \
                 cargo run --release --features monkey,redis --example spider -- ..."
            );
            std::process::exit(2);
        }
        #[cfg(feature = "redis")]
        {
            let plan = redis_frontier::Plan {
                frontier,
                crawl: args.get("crawl"),
                start: start_url,
                concurrency,
                max_pages,
                lease: Duration::from_secs_f64(args.get::<f64>("lease").max(0.1)),
            };
            redis_frontier::run(&plan, std::rc::Rc::new(move |url: &str| fetch(&agent, url)));
            return;
        }
    }
    let started = Instant::now();
    let crawl = Arc::new(Crawl::new(start_url, max_pages));
    match mode.as_str() {
        "serial" => crawl.work(&agent),
        "threads" => std::thread::scope(|scope| {
            for _ in 0..concurrency {
                scope.spawn(|| crawl.work(&agent));
            }
        }),
        _ => {
            let workers: Vec<_> = (0..concurrency)
                .map(|_| {
                    let (crawl, agent) = (crawl.clone(), agent.clone());
                    greenrt::spawn(move || crawl.work(&agent))
                })
                .collect();
            for outcome in greenrt::joinall(workers) {
                outcome.expect("a spider worker panicked");
            }
        }
    }
    let (pages, errors, bytes) = *crawl.totals.lock().expect("no panics while held");
    println!(
        "spider: pages={pages} errors={errors} bytes={bytes} secs={:.2} mode={mode}",
        started.elapsed().as_secs_f64()
    );
}
