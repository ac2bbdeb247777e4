//! A breadth-first web crawler on an unmodified blocking HTTP client (`ureq`): with
//! `monkey::patch_all()`, its blocking sockets park only the green thread that fetches, so N
//! fetches overlap on one OS thread — gevent's spider, in Rust. Run it against `site_server`.
//!
//! `cargo run --release --features monkey --example spider -- --start http://127.0.0.1:8800/page/0 [--concurrency 100] [--max-pages 1000] [--mode green|serial|threads]`
//!
//! It fetches each page once, follows same-host `<a href>` links (relative and absolute),
//! skips fragments, other hosts and non-HTTP schemes, prints a line per page (status, bytes,
//! URL), and ends with exactly one line:
//! `spider: pages=<n> errors=<n> bytes=<n> secs=<s> mode=<mode>`.
//! Modes: `green` (a GreenPool of N), `serial` (one at a time), `threads` (a ThreadPool of N).

#[path = "common/args.rs"]
mod args;

use std::collections::HashSet;
use std::io::Read;
use std::time::{Duration, Instant};

/// The outcome of one fetch: (status or 0 for an error, body bytes, links found).
type Fetched = (u16, usize, Vec<String>);

/// Splits `http://host[:port]/path` into (origin, path).
fn split_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("http://")?;
    let slash = rest.find('/').unwrap_or(rest.len());
    Some((
        &url[..7 + slash],
        if slash < rest.len() {
            &rest[slash..]
        } else {
            "/"
        },
    ))
}

/// Resolves `href` against the page at `base`; None for links a crawler of this site skips.
fn resolve(base: &str, href: &str) -> Option<String> {
    let href = href.split('#').next()?.trim();
    if href.is_empty() {
        return None; // a fragment of this very page
    }
    let (origin, path) = split_url(base)?;
    let url = if href.starts_with("http://") {
        href.to_string()
    } else if href.contains(':') {
        return None; // mailto:, javascript:, https: ...
    } else if let Some(rest) = href.strip_prefix("//") {
        format!("http://{rest}")
    } else if href.starts_with('/') {
        format!("{origin}{href}")
    } else {
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        format!("{origin}{}", normalize(&format!("{dir}{href}")))
    };
    let (link_origin, link_path) = split_url(&url)?;
    (link_origin == origin).then(|| format!("{link_origin}{}", normalize(link_path)))
}

/// Removes `.` and `..` segments from a path.
fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/').skip(1) {
        match seg {
            "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
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

fn fetch(agent: &ureq::Agent, url: &str) -> Fetched {
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
                return (0, 0, Vec::new());
            }
            let links = hrefs(&body)
                .iter()
                .filter_map(|h| resolve(url, h))
                .collect();
            (status, body.len(), links)
        }
        Err(ureq::Error::Status(code, _)) => (code, 0, Vec::new()),
        Err(_) => (0, 0, Vec::new()),
    }
}

fn main() {
    let args = args::Args::from_env();
    let start_url: String = args.get("start", "http://127.0.0.1:8800/page/0".to_string());
    let concurrency: usize = args.get("concurrency", 100usize).max(1);
    let max_pages: usize = args.get("max-pages", 1000);
    let mode: String = args.get("mode", "green".to_string());
    if !["green", "serial", "threads"].contains(&mode.as_str()) {
        eprintln!("error: --mode must be green, serial or threads");
        std::process::exit(2);
    }
    greenrt::monkey::patch_all();
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build();
    let green_pool = greenrt::pool::GreenPool::new(concurrency).unwrap();
    let thread_pool =
        (mode == "threads").then(|| greenrt::thread_pool::ThreadPool::new(concurrency).unwrap());
    let started = Instant::now();
    let mut seen: HashSet<String> = HashSet::from([start_url.clone()]);
    let mut frontier = vec![start_url];
    let (mut pages, mut errors, mut bytes) = (0usize, 0usize, 0usize);
    while !frontier.is_empty() && pages < max_pages {
        frontier.truncate(max_pages - pages);
        let level: Vec<String> = std::mem::take(&mut frontier);
        let results: Vec<Fetched> = match mode.as_str() {
            "serial" => level.iter().map(|u| fetch(&agent, u)).collect(),
            "threads" => {
                let agent = agent.clone();
                thread_pool
                    .as_ref()
                    .expect("made for threads mode")
                    .map(move |u: String| fetch(&agent, &u), level.clone())
            }
            _ => {
                let agent = agent.clone();
                green_pool.map(move |u: String| fetch(&agent, &u), level.clone())
            }
        };
        for (url, (status, size, links)) in level.iter().zip(results) {
            pages += 1;
            bytes += size;
            if status != 200 {
                errors += 1;
            }
            println!("{status:>3} {size:>7} {url}");
            for link in links {
                if seen.insert(link.clone()) {
                    frontier.push(link);
                }
            }
        }
    }
    println!(
        "spider: pages={pages} errors={errors} bytes={bytes} secs={:.2} mode={mode}",
        started.elapsed().as_secs_f64()
    );
}
