//! The crawl frontier in Redis (`--frontier redis://HOST:PORT/DB --crawl NAME`): any number
//! of spider processes, on any number of machines, share one crawl — scrapy-redis' idea on
//! `greenrt::dist::WorkQueue`.
//!
//! - **Who fetches a URL**: `put_unique` — `SADD` on the crawl's seen-set admits each URL
//!   once, whichever spider found it; the set's size is the page budget (`--max-pages`).
//! - **Taking a URL** is a lease: a spider killed mid-crawl loses nothing; after the lease time
//!   (`--lease`, 10 s) a living spider's heartbeat puts its URLs back and another fetches them.
//! - **Totals** are counted in Redis by the ack that finishes a page, in the same atomic step,
//!   so each page counts once however many spiders ran it.
//! - **The end**: a spider with nothing to take stops when the crawl has no unfinished page —
//!   none waiting, none leased. Links are admitted before their page is finished, so the
//!   count cannot touch zero while a page could still add more.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenrt::dist::{Ack, Options, WorkQueue};

use crate::Fetched;

/// Pages, errors, bytes.
#[derive(Clone, Copy, Default)]
pub struct Totals {
    pub pages: i64,
    pub errors: i64,
    pub bytes: i64,
}

/// What one spider process did, and what the crawl did.
pub struct Report {
    pub mine: Totals,
    pub crawl: Totals,
    /// Pages put back because a spider holding them died (each fetched twice at most).
    pub requeued: u64,
}

/// How a spider joins a shared crawl.
pub struct Plan {
    pub frontier: String,
    pub crawl: String,
    pub start: String,
    pub concurrency: usize,
    pub max_pages: usize,
    pub lease: Duration,
}

/// The spider's `--frontier` mode: crawls as `plan` says, then prints this process's final
/// line and the crawl's totals (see the `spider` example's docs). Exits on a bad plan or a
/// frontier that fails.
pub fn run(plan: &Plan, fetch: Rc<dyn Fn(&str) -> Fetched>) {
    if plan.crawl.is_empty() {
        eprintln!("error: --frontier needs --crawl NAME (the crawl's name in Redis)");
        std::process::exit(2);
    }
    let started = Instant::now();
    let report = crawl(plan, fetch).unwrap_or_else(|e| {
        eprintln!("spider: the frontier at {} failed: {e}", plan.frontier);
        std::process::exit(1);
    });
    let (mine, all) = (report.mine, report.crawl);
    println!(
        "spider: pages={} errors={} bytes={} secs={:.2} mode=green",
        mine.pages,
        mine.errors,
        mine.bytes,
        started.elapsed().as_secs_f64()
    );
    println!(
        "crawl: name={} pages={} errors={} bytes={} requeued={} redis_round_trips_here={}",
        plan.crawl,
        all.pages,
        all.errors,
        all.bytes,
        report.requeued,
        greenrt::dist::round_trips()
    );
}

/// Crawls with `plan.concurrency` green threads until the shared crawl is over.
fn crawl(plan: &Plan, fetch: Rc<dyn Fn(&str) -> Fetched>) -> io::Result<Report> {
    let options = Options {
        lease: plan.lease,
        max_unique: Some(plan.max_pages as u64),
        ..Options::default()
    };
    let name = format!("spider:{}", plan.crawl);
    let queue: Rc<WorkQueue<String>> =
        Rc::new(WorkQueue::open_with(&plan.frontier, &name, options)?);
    queue.put_unique(&plan.start, &plan.start)?;
    let worker = Rc::new(queue.worker(plan.concurrency)?);
    let mine = Rc::new(RefCell::new(Totals::default()));
    let spiders: Vec<_> = (0..plan.concurrency)
        .map(|_| {
            let (queue, worker, mine, fetch) =
                (queue.clone(), worker.clone(), mine.clone(), fetch.clone());
            greenrt::spawn(move || work(&queue, &worker, &mine, &*fetch))
        })
        .collect();
    for outcome in greenrt::joinall(spiders) {
        outcome.expect("a spider green thread panicked")?;
    }
    drop(worker);
    let counters = queue.counters()?;
    let count = |name: &str| counters.get(name).copied().unwrap_or(0);
    let mine = *mine.borrow();
    Ok(Report {
        mine,
        crawl: Totals {
            pages: count("pages"),
            errors: count("errors"),
            bytes: count("bytes"),
        },
        requeued: queue.stats()?.requeued,
    })
}

/// One green thread: take a URL, fetch it, admit its links, finish it — until the crawl is over.
fn work(
    queue: &WorkQueue<String>,
    worker: &greenrt::dist::Worker<String>,
    mine: &RefCell<Totals>,
    fetch: &dyn Fn(&str) -> Fetched,
) -> io::Result<()> {
    loop {
        let Some(lease) = worker.take(Duration::from_millis(50))? else {
            if queue.unfinished()? == 0 {
                return Ok(());
            }
            continue;
        };
        let url = lease.task().clone();
        let (status, size, links) = fetch(&url);
        println!("{status:>3} {size:>7} {url}");
        let found: Vec<(&str, &String)> = links.iter().map(|l| (l.as_str(), l)).collect();
        if !found.is_empty() {
            queue.put_unique_many(&found)?;
        }
        let page = Totals {
            pages: 1,
            errors: i64::from(status != 200),
            bytes: size as i64,
        };
        let counters = [("pages", 1), ("errors", page.errors), ("bytes", page.bytes)];
        if lease.finish_counting(Ok(()), &counters)? == Ack::Done {
            let mut t = mine.borrow_mut();
            t.pages += page.pages;
            t.errors += page.errors;
            t.bytes += page.bytes;
        }
    }
}
