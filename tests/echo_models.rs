//! Every echo server model passes the same correctness test: many concurrent connections
//! with checksummed payloads and half-close, clients that reset mid-stream, and service
//! afterwards. Models: `echo_server` (green threads), `echo_prefork` (processes + green
//! threads), `echo_threads` (a thread per connection), `echo_selectors` (callbacks on mio).

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};

fn example(name: &str) -> std::path::PathBuf {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("examples").join(name)
}

/// A server example, killed when dropped.
struct Server(Child, SocketAddr);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(name: &str, args: &[&str]) -> Server {
    let mut child = Command::new(example(name))
        .args(["--addr", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e} (cargo test builds the examples)"));
    let mut first = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut first).unwrap();
    // Keep reading what the server prints: a closed pipe would make its println! fail.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    // echo_server says "[main] echo server listening on ADDR"; the others "listening on ADDR".
    let addr = first
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{name}: {first:?}"));
    Server(child, addr)
}

/// Sends `len` pattern bytes, half-closes, reads the echo; true if it matches.
fn round_trip(addr: SocketAddr, seed: u64, len: usize) -> bool {
    let conn = TcpStream::connect(addr).unwrap();
    let data = util::pattern(seed, len);
    let mut writer = conn.try_clone().unwrap();
    let sent = data.clone();
    let w = std::thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::with_capacity(len);
    (&conn).read_to_end(&mut back).unwrap();
    w.join().unwrap();
    util::fnv1a(&back, 0) == util::fnv1a(&data, 0) && back.len() == len
}

/// Connects, sends a little, and resets the connection (SO_LINGER 0).
fn reset(addr: SocketAddr) {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.write_all(b"about to reset").unwrap();
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY (test): a valid socket, a valid option of the right size.
    unsafe {
        libc::setsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
}

fn check_model(name: &str, args: &[&str]) {
    let server = start(name, args);
    let addr = server.1;
    let rounds: Vec<_> = (0..40u64)
        .map(|i| std::thread::spawn(move || round_trip(addr, i, 1 + (i as usize * 7919) % 200_000)))
        .collect();
    let ok = rounds
        .into_iter()
        .filter_map(|r| r.join().ok())
        .filter(|&ok| ok)
        .count();
    assert_eq!(ok, 40, "{name}: {ok} of 40 echoes matched");
    (0..10).for_each(|_| reset(addr));
    for i in 0..5 {
        assert!(
            round_trip(addr, 1000 + i, 50_000),
            "{name}: no service after resets"
        );
    }
}

#[test]
fn green_threads_model() {
    check_model("echo_server", &[]);
}

#[test]
fn prefork_model() {
    check_model("echo_prefork", &["--workers", "2"]);
}

#[test]
fn thread_per_connection_model() {
    check_model("echo_threads", &[]);
}

#[test]
fn selectors_model() {
    check_model("echo_selectors", &[]);
}

#[test]
fn chat_broadcasts_each_line_to_the_others() {
    let server = start("chat_server", &[]);
    let addr = server.1.to_string();
    let client = |name: &str, extra: &[&str]| {
        Command::new(example("chat_client"))
            .args(["--addr", &addr, "--name", name])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let ann = client("ann", &["--linger-ms", "1500"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let bob = client(
        "bob",
        &["--say", "hi ann", "--say", "bye", "--linger-ms", "200"],
    );
    let bob_out = String::from_utf8(bob.wait_with_output().unwrap().stdout).unwrap();
    let ann_all = ann.wait_with_output().unwrap();
    let ann_out =
        String::from_utf8(ann_all.stdout).unwrap() + &String::from_utf8_lossy(&ann_all.stderr);
    assert!(
        ann_out.contains("* bob joined"),
        "ann: {ann_out:?} ({:?}); bob: {bob_out:?}",
        ann_all.status
    );
    assert!(ann_out.contains("[bob] hi ann\n[bob] bye"), "{ann_out}");
    assert!(
        !bob_out.contains("[bob]"),
        "a sender does not get its own lines back: {bob_out}"
    );
}
