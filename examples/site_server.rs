//! A generated web site for the spider to crawl: a green HTTP/1.1 server where page `i`
//! (`/page/i`) links to K other pages — relative, root-relative and absolute links, plus links
//! a crawler must skip (fragments, another host, `mailto:`). Every answer is delayed by D ms,
//! like a slow origin server. `/stats` reports how many times pages were fetched.
//!
//! `cargo run --release --example site_server -- [--addr 127.0.0.1:8800] [--pages 1000] [--links 5] [--delay-ms 100]`
//!
//! The first line of output is `listening on <addr>`.

#[path = "common/args.rs"]
mod args;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::rc::Rc;
use std::time::Duration;

use greenrt::net::{TcpListener, TcpStream};

struct Site {
    pages: u64,
    links: u64,
    delay: Duration,
    host: String,
    /// Fetches per page path.
    hits: RefCell<HashMap<String, u64>>,
}

impl Site {
    /// The HTML of page `i`: its links are a deterministic spread over the site.
    fn page(&self, i: u64) -> String {
        let mut body =
            format!("<html><head><title>page {i}</title></head><body><h1>page {i}</h1>\n");
        for j in 0..self.links {
            let target = (i * 7 + j * 13 + 1) % self.pages;
            let href = match j % 3 {
                0 => format!("/page/{target}"),
                1 => format!("../page/{target}#section"),
                _ => format!("http://{}/page/{target}", self.host),
            };
            body.push_str(&format!("<p><a href=\"{href}\">page {target}</a></p>\n"));
        }
        body.push_str(
            "<a href=\"#top\">top</a> <a href=\"http://elsewhere.invalid/x\">elsewhere</a> ",
        );
        body.push_str("<a href=\"mailto:admin@example.invalid\">mail</a></body></html>\n");
        body
    }

    fn stats(&self) -> String {
        let hits = self.hits.borrow();
        let total: u64 = hits.values().sum();
        let max = hits.values().copied().max().unwrap_or(0);
        format!(
            "requests={total} distinct={} max_per_page={max}\n",
            hits.len()
        )
    }
}

fn respond(mut conn: TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body.as_bytes())
}

fn serve(site: &Site, conn: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    if path == "/stats" {
        return respond(conn, "200 OK", &site.stats());
    }
    greenrt::sleep(site.delay);
    let page = path
        .strip_prefix("/page/")
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|&n| n < site.pages);
    match page {
        Some(i) => {
            *site.hits.borrow_mut().entry(path).or_default() += 1;
            respond(conn, "200 OK", &site.page(i))
        }
        None if path == "/" => respond(conn, "200 OK", "<a href=\"/page/0\">start</a>"),
        None => respond(conn, "404 Not Found", "no such page\n"),
    }
}

fn main() -> std::io::Result<()> {
    let args = args::Cli::new(
        "site_server",
        "a generated web site for the spider: page i links to K others",
    )
    .flag("addr", "ADDR", "127.0.0.1:8800", "where to serve")
    .flag("pages", "N", 1000u64, "pages on the site")
    .flag("links", "K", 5, "links per page")
    .flag("delay-ms", "MS", 100, "how long each page takes")
    .parse();
    let addr: String = args.get("addr");
    let listener = TcpListener::bind(&addr)?;
    let local = listener.local_addr()?;
    println!("listening on {local}");
    let site = Rc::new(Site {
        pages: args.get::<u64>("pages").max(1),
        links: args.get("links"),
        delay: Duration::from_millis(args.get("delay-ms")),
        host: local.to_string(),
        hits: RefCell::new(HashMap::new()),
    });
    eprintln!(
        "[site_server] {} pages, {} links each, {:?} per answer",
        site.pages, site.links, site.delay
    );
    loop {
        let (conn, _) = listener.accept()?;
        let site = site.clone();
        greenrt::spawn(move || {
            let _ = serve(&site, conn);
        });
    }
}
