//! Records two small workloads and draws them: the gevent sleep demo (three green threads
//! sleeping 3, 2 and 1 units; who runs when) and an echo burst (a green server and a few
//! green clients on loopback). Writes `<name>.json` (open in ui.perfetto.dev) and `<name>.svg`
//! (open in a browser) for each.
//!
//! `cargo run --release --example trace_timeline -- [--out target/trace]`

#[path = "common/args.rs"]
mod args;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn gevent_sleep() {
    let greens: Vec<_> = [("foo", 30), ("bar", 20), ("baz", 10)]
        .into_iter()
        .map(|(name, ms)| {
            greenrt::Builder::new()
                .name(name.into())
                .spawn(move || greenrt::sleep(Duration::from_millis(ms)))
                .expect("spawn")
        })
        .collect();
    greenrt::joinall(greens);
}

fn echo_burst() {
    let listener = greenrt::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = greenrt::Builder::new()
        .name("server".into())
        .spawn(move || {
            for _ in 0..3 {
                let (mut conn, _) = listener.accept().expect("accept");
                greenrt::Builder::new()
                    .name("conn".into())
                    .spawn(move || {
                        let mut buf = [0u8; 64];
                        while let Ok(n) = conn.read(&mut buf) {
                            if n == 0 || conn.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    })
                    .expect("spawn");
            }
        })
        .expect("spawn");
    let clients: Vec<_> = (0..3)
        .map(|i| {
            greenrt::Builder::new()
                .name(format!("client-{i}"))
                .spawn(move || {
                    let mut conn = greenrt::net::TcpStream::connect(addr).expect("connect");
                    for _ in 0..5 {
                        conn.write_all(b"ping").expect("write");
                        let mut back = [0u8; 4];
                        conn.read_exact(&mut back).expect("read");
                        greenrt::sleep(Duration::from_millis(2));
                    }
                })
                .expect("spawn")
        })
        .collect();
    greenrt::joinall(clients);
    let _ = server.join();
}

fn record(out: &Path, name: &str, workload: fn()) -> std::io::Result<(PathBuf, PathBuf)> {
    greenrt::trace::start();
    workload();
    let trace = greenrt::trace::stop();
    let (json, svg) = (
        out.join(format!("{name}.json")),
        out.join(format!("{name}.svg")),
    );
    trace.write_to(&json)?;
    std::fs::write(&svg, trace.to_svg())?;
    println!(
        "{name}: {} events -> {} and {}",
        trace.events(),
        json.display(),
        svg.display()
    );
    Ok((json, svg))
}

fn main() -> std::io::Result<()> {
    let out: PathBuf = args::Cli::new(
        "trace_timeline",
        "records the gevent sleep demo and an echo burst; writes Perfetto JSON and SVG",
    )
    .flag("out", "DIR", "target/trace", "where to write the traces")
    .parse()
    .get("out");
    std::fs::create_dir_all(&out)?;
    record(&out, "gevent_sleep", gevent_sleep)?;
    record(&out, "echo_burst", echo_burst)?;
    println!(
        "trace_timeline: open the .svg files in a browser, the .json files in https://ui.perfetto.dev"
    );
    Ok(())
}
