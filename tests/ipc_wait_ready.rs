//! `ipc::wait_ready` (multiprocessing.connection.wait) over pipe ends, process sentinels and
//! fds; `Process::sentinel` and `Process::close`.

mod util;

use std::cell::Cell;
use std::os::fd::AsFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenrt::ipc::{pipe, wait_ready};
use greenrt::process::Process;

const LONG: Option<Duration> = Some(Duration::from_secs(10));

#[test]
fn smoke_nothing_ready_times_out_empty() {
    let (a, _a_peer) = pipe().unwrap();
    let (b, _b_peer) = pipe().unwrap();
    let began = Instant::now();
    let ready = wait_ready(&[&a, &b], Some(Duration::from_millis(50)));
    assert!(ready.is_empty(), "{ready:?}");
    assert!(began.elapsed() >= Duration::from_millis(50));
    let began = Instant::now();
    assert!(wait_ready(&[], Some(Duration::from_millis(20))).is_empty());
    assert!(
        began.elapsed() >= Duration::from_millis(20),
        "no objects: waits out the timeout"
    );
}

#[test]
fn every_ready_end_is_reported_and_only_those() {
    let (a, a_peer) = pipe().unwrap();
    let (b, _b_peer) = pipe().unwrap();
    let (c, c_peer) = pipe().unwrap();
    a_peer.send(&1u32).unwrap();
    c_peer.send(&3u32).unwrap();
    assert_eq!(wait_ready(&[&a, &b, &c], LONG), [0, 2]);
    assert_eq!(a.recv::<u32>().unwrap(), 1);
    assert_eq!(wait_ready(&[&a, &b, &c], LONG), [2]);
}

/// Two messages arrive in one read: after the first `recv`, the second sits in the pipe end's
/// read-ahead and the socket itself is no longer readable. A wait that asked only the kernel
/// would sleep through it.
#[test]
fn a_message_already_read_ahead_counts_as_ready() {
    let (a, a_peer) = pipe().unwrap();
    let (b, _b_peer) = pipe().unwrap();
    a_peer.send(&"first").unwrap();
    a_peer.send(&"second").unwrap();
    assert_eq!(a.recv::<String>().unwrap(), "first");
    let began = Instant::now();
    assert_eq!(wait_ready(&[&b, &a], Some(Duration::from_secs(2))), [1]);
    assert!(
        began.elapsed() < Duration::from_secs(1),
        "slept through the read-ahead"
    );
    assert_eq!(a.recv::<String>().unwrap(), "second");
}

#[test]
fn a_closed_peer_is_ready_and_recv_says_eof() {
    let (a, a_peer) = pipe().unwrap();
    drop(a_peer);
    assert_eq!(wait_ready(&[&a], LONG), [0]);
    assert_eq!(
        a.recv::<u32>().unwrap_err().kind(),
        std::io::ErrorKind::UnexpectedEof
    );
}

/// A process is ready when it ends; waiting parks only this green thread, and burns no CPU.
#[test]
fn a_process_sentinel_is_ready_when_it_ends_and_the_wait_parks_only_the_green_thread() {
    let (quiet, _quiet_peer) = pipe().unwrap();
    let child = Process::spawn(|| std::thread::sleep(Duration::from_millis(300))).unwrap();
    let ticks = Rc::new(Cell::new(0u32));
    let t = ticks.clone();
    let ticker = greenrt::spawn(move || {
        for _ in 0..3 {
            greenrt::sleep(Duration::from_millis(5));
            t.set(t.get() + 1);
        }
    });
    let cpu_before = util::thread_cpu_time();
    let began = Instant::now();
    assert_eq!(wait_ready(&[&quiet, &child], LONG), [1]);
    let waited = began.elapsed();
    let cpu = util::thread_cpu_time() - cpu_before;
    assert!(
        waited >= Duration::from_millis(250),
        "ready before it ended: {waited:?}"
    );
    assert!(
        cpu < waited / 4,
        "the wait spun: {cpu:?} of CPU in {waited:?}"
    );
    assert_eq!(
        ticks.get(),
        3,
        "the other green thread did not run during the wait"
    );
    ticker.join().unwrap();
    // The sentinel stays readable after the end, also through a plain fd.
    assert_eq!(wait_ready(&[&child.sentinel()], LONG), [0]);
    assert!(child.join().unwrap().success());
    assert_eq!(wait_ready(&[&child], LONG), [0], "and after the reap");
}

/// The first of several children to end is the one reported.
#[test]
fn the_first_of_three_children_to_end_is_reported() {
    let children: Vec<Process> = [300u64, 30, 600]
        .iter()
        .map(|&ms| Process::spawn(move || std::thread::sleep(Duration::from_millis(ms))).unwrap())
        .collect();
    let objects: Vec<&dyn greenrt::Waitable> = children.iter().map(|c| c as _).collect();
    assert_eq!(wait_ready(&objects, LONG), [1]);
    for child in &children {
        child.join().unwrap();
    }
    assert_eq!(wait_ready(&objects, LONG), [0, 1, 2]);
}

#[test]
fn any_readable_fd_can_be_waited_on() {
    let listener = greenrt::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fd = listener.as_fd();
    assert!(wait_ready(&[&fd], Some(Duration::from_millis(20))).is_empty());
    let _client = std::net::TcpStream::connect(addr).unwrap();
    assert_eq!(wait_ready(&[&fd], LONG), [0], "a connection to accept");
}

#[test]
fn close_hands_a_running_process_back_and_releases_an_ended_one() {
    let child = Process::spawn(|| std::thread::sleep(Duration::from_millis(100))).unwrap();
    let child = child.close().expect_err("still running: close must refuse");
    assert!(
        child.is_alive(),
        "the refused close must not have reaped it"
    );
    child.join().unwrap();
    let status = child.close().expect("ended: close releases it");
    assert!(status.success());
    let failing = Process::spawn(|| std::process::exit(3)).unwrap();
    failing.join().unwrap();
    assert_eq!(failing.close().unwrap().code(), Some(3));
}
