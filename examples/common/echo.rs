//! The echo server and the echo load generator, shared by `echo_server`, `echo_bench` and
//! `stress`.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenrt::net::{TcpListener, TcpStream};

/// Serves echo forever: one green thread per connection. Counts live connections in `live`.
pub fn serve(listener: TcpListener, live: Rc<Cell<usize>>, quiet: bool) -> ! {
    let mut warned_fds = false;
    loop {
        match listener.accept() {
            Ok((conn, _peer)) => {
                warned_fds = false;
                let live = live.clone();
                live.set(live.get() + 1);
                greenrt::spawn(move || {
                    let _ = echo(conn); // resets and aborted peers just end the connection
                    live.set(live.get() - 1);
                });
            }
            Err(e) if is_out_of_fds(&e) => {
                // Out of file descriptors: back off instead of spinning; connections that end
                // meanwhile free some.
                if !warned_fds && !quiet {
                    eprintln!("[accept] out of file descriptors ({e}); backing off");
                    warned_fds = true;
                }
                greenrt::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                if !quiet {
                    eprintln!("[accept] {e}");
                }
                greenrt::sleep(Duration::from_millis(1));
            }
        }
    }
}

fn is_out_of_fds(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(24 | 23)) // EMFILE, ENFILE
}

/// Echoes until the peer closes its writing side, then closes ours.
pub fn echo(mut conn: TcpStream) -> io::Result<()> {
    conn.set_nodelay(true)?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return conn.shutdown(std::net::Shutdown::Write);
        }
        conn.write_all(&buf[..n])?;
    }
}

/// What one run of the load generator measured.
#[derive(Debug, Default, Clone)]
pub struct BenchReport {
    pub round_trips: u64,
    pub bytes: u64,
    pub errors: u64,
    pub mismatches: u64,
    pub secs: f64,
    /// Round-trip latencies in microseconds, sorted.
    pub latencies_us: Vec<u32>,
}

impl BenchReport {
    pub fn percentile_us(&self, p: f64) -> u32 {
        if self.latencies_us.is_empty() {
            return 0;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i]
    }

    pub fn rate(&self) -> f64 {
        self.round_trips as f64 / self.secs
    }

    pub fn mib_per_sec(&self) -> f64 {
        self.bytes as f64 / self.secs / (1024.0 * 1024.0)
    }
}

/// Runs `conns` green-thread clients against `addr` for `secs`; each sends `size` bytes,
/// reads them back, checks them, and repeats.
pub fn bench(addr: SocketAddr, conns: usize, secs: f64, size: usize) -> BenchReport {
    let report = Rc::new(RefCell::new(BenchReport::default()));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let clients: Vec<_> = (0..conns)
        .map(|i| {
            let report = report.clone();
            greenrt::spawn(move || {
                if let Err(_e) = client(addr, i as u8, size, deadline, &report) {
                    report.borrow_mut().errors += 1;
                }
            })
        })
        .collect();
    for outcome in greenrt::joinall(clients) {
        if outcome.is_err() {
            report.borrow_mut().errors += 1;
        }
    }
    let mut report = report.take();
    report.secs = start.elapsed().as_secs_f64();
    report.latencies_us.sort_unstable();
    report
}

fn client(
    addr: SocketAddr,
    seed: u8,
    size: usize,
    deadline: Instant,
    report: &RefCell<BenchReport>,
) -> io::Result<()> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut out: Vec<u8> = (0..size).map(|j| seed.wrapping_add(j as u8)).collect();
    let mut back = vec![0u8; size];
    let mut latencies = Vec::new();
    let mut round = 0u8;
    while Instant::now() < deadline {
        out[0] = round; // every round trip carries different bytes
        let sent = Instant::now();
        stream.write_all(&out)?;
        stream.read_exact(&mut back)?;
        latencies.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
        if back != out {
            report.borrow_mut().mismatches += 1;
        }
        round = round.wrapping_add(1);
    }
    let mut r = report.borrow_mut();
    r.round_trips += latencies.len() as u64;
    r.bytes += (latencies.len() * size) as u64;
    r.latencies_us.extend(latencies);
    Ok(())
}

/// Starts this same binary with `flag` as a server process that prints the address it bound
/// on its first line of output; returns the child and that address.
pub fn spawn_self_server(flag: &str) -> io::Result<(Child, SocketAddr)> {
    use std::io::BufRead;
    let mut child = Command::new(std::env::current_exe()?)
        .arg(flag)
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let mut line = String::new();
    io::BufReader::new(stdout).read_line(&mut line)?;
    let addr = line
        .trim()
        .parse()
        .map_err(|_| io::Error::other(format!("bad address line {line:?}")))?;
    Ok((child, addr))
}
