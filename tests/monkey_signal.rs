//! monkey and signals: a handler that runs while a green thread is blocked in a hooked call
//! interrupts that call as the kernel interrupts a thread's (EINTR without `SA_RESTART`, the
//! call restarted with it; sleeps and poll always EINTR), and `sigaction` shows the user's
//! own handler back. Each scenario runs in a forked child with a time limit.
#![cfg(feature = "monkey")]

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use util::{Ended, in_child, install_sigusr2_counter};

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(child: impl FnOnce() -> i32) -> Ended {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    in_child(20, child)
}

/// From a plain thread, after `after`, sends SIGUSR2 to the calling (hub) thread.
fn signal_me_after(after: Duration) {
    // SAFETY (test): pthread_self is always valid.
    let me = unsafe { libc::pthread_self() } as usize;
    std::thread::spawn(move || {
        std::thread::sleep(after);
        // SAFETY (test): the hub thread outlives this (the child exits only after joins).
        unsafe { libc::pthread_kill(me as libc::pthread_t, libc::SIGUSR2) };
    });
}

/// A server that writes "late" to each connection after `after`.
fn late_server(after: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let mut conn = conn.unwrap();
            std::thread::spawn(move || {
                std::thread::sleep(after);
                let _ = conn.write_all(b"late");
                std::thread::sleep(Duration::from_secs(5));
            });
        }
    });
    addr
}

/// A green thread reads from a server that answers after 400 ms; SIGUSR2 comes at 100 ms.
fn read_with_a_signal(restart: bool) -> (std::io::Result<usize>, Duration) {
    greenrt::monkey::patch_all();
    install_sigusr2_counter(restart);
    let addr = late_server(Duration::from_millis(400));
    signal_me_after(Duration::from_millis(100));
    let reader = greenrt::spawn(move || {
        let mut conn = TcpStream::connect(addr).unwrap();
        let t0 = Instant::now();
        let got = conn.read(&mut [0u8; 4]);
        (got, t0.elapsed())
    });
    reader.join().unwrap()
}

#[test]
fn smoke_sigaction_reports_the_users_handler_back() {
    let ended = run(|| {
        install_sigusr2_counter(true);
        // SAFETY (test): reading the disposition into a zeroed sigaction.
        let old = unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGUSR2, std::ptr::null(), &mut old);
            old
        };
        // The user's own flags (the trampoline goes in with SA_SIGINFO, and libc adds
        // SA_RESTORER to what it installs).
        assert_eq!(old.sa_flags, libc::SA_RESTART, "flags {:#x}", old.sa_flags);
        // The user's own handler: calling it counts. (Its address is not compared with
        // `count_signal`'s: Rust does not promise one address per function, and an optimised build
        // can hold two copies.)
        // SAFETY (test): a one-argument handler, as installed.
        let handler: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(old.sa_sigaction) };
        handler(libc::SIGUSR2);
        assert_eq!(util::HANDLED.load(Ordering::SeqCst), 1);
        // SAFETY (test): raise on this thread runs the handler before returning.
        unsafe { libc::raise(libc::SIGUSR2) };
        assert_eq!(util::HANDLED.load(Ordering::SeqCst), 2);
        0
    });
    assert_eq!(ended, Ended::Exited(0));
}

#[test]
fn a_signal_without_sa_restart_interrupts_a_hooked_read_with_eintr() {
    let ended = run(|| {
        let (got, waited) = read_with_a_signal(false);
        eprintln!("read, no SA_RESTART: {got:?} after {waited:?}");
        assert_eq!(got.unwrap_err().kind(), ErrorKind::Interrupted);
        assert!(waited < Duration::from_millis(350), "{waited:?}");
        assert_eq!(util::HANDLED.load(Ordering::SeqCst), 1);
        0
    });
    assert_eq!(ended, Ended::Exited(0));
}

#[test]
fn a_signal_with_sa_restart_lets_a_hooked_read_go_on() {
    let ended = run(|| {
        let (got, waited) = read_with_a_signal(true);
        eprintln!("read, SA_RESTART: {got:?} after {waited:?}");
        assert_eq!(got.unwrap(), 4);
        assert!(waited >= Duration::from_millis(350), "{waited:?}");
        assert_eq!(util::HANDLED.load(Ordering::SeqCst), 1);
        0
    });
    assert_eq!(ended, Ended::Exited(0));
}

/// A green thread blocked in `accept(2)` (called directly: std's `accept` retries EINTR);
/// a client connects at 400 ms, SIGUSR2 comes at 100 ms.
fn accept_with_a_signal(restart: bool) -> (i32, i32, Duration) {
    greenrt::monkey::patch_all();
    install_sigusr2_counter(restart);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        let _conn = TcpStream::connect(addr);
        std::thread::sleep(Duration::from_secs(5));
    });
    signal_me_after(Duration::from_millis(100));
    let fd = listener.as_raw_fd();
    let acceptor = greenrt::spawn(move || {
        let t0 = Instant::now();
        // SAFETY (test): accept on our own listener, no address wanted.
        let rc = unsafe { libc::accept(fd, std::ptr::null_mut(), std::ptr::null_mut()) };
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        (rc, errno, t0.elapsed())
    });
    let out = acceptor.join().unwrap();
    drop(listener);
    out
}

#[test]
fn a_signal_without_sa_restart_interrupts_a_hooked_accept_with_eintr() {
    let ended = run(|| {
        let (rc, errno, waited) = accept_with_a_signal(false);
        eprintln!("accept, no SA_RESTART: {rc} errno {errno} after {waited:?}");
        assert_eq!((rc, errno), (-1, libc::EINTR));
        assert!(waited < Duration::from_millis(350), "{waited:?}");
        0
    });
    assert_eq!(ended, Ended::Exited(0));
}

#[test]
fn a_signal_with_sa_restart_lets_a_hooked_accept_go_on() {
    let ended = run(|| {
        let (rc, _, waited) = accept_with_a_signal(true);
        eprintln!("accept, SA_RESTART: {rc} after {waited:?}");
        assert!(rc >= 0, "accepted the 400 ms client");
        assert!(waited >= Duration::from_millis(350), "{waited:?}");
        assert_eq!(util::HANDLED.load(Ordering::SeqCst), 1);
        0
    });
    assert_eq!(ended, Ended::Exited(0));
}

#[test]
fn sleeps_and_poll_are_interrupted_even_with_sa_restart() {
    let ended = run(|| {
        greenrt::monkey::patch_all();
        install_sigusr2_counter(true);
        signal_me_after(Duration::from_millis(100));
        let sleeper = greenrt::spawn(|| {
            let req = libc::timespec {
                tv_sec: 0,
                tv_nsec: 400_000_000,
            };
            let mut rem = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY (test): valid timespecs.
            let rc = unsafe { libc::nanosleep(&req, &mut rem) };
            let errno = std::io::Error::last_os_error().raw_os_error();
            (
                rc,
                errno,
                Duration::new(rem.tv_sec as u64, rem.tv_nsec as u32),
            )
        });
        let (rc, errno, left) = sleeper.join().unwrap();
        eprintln!("nanosleep: {rc} {errno:?}, {left:?} left");
        assert_eq!((rc, errno), (-1, Some(libc::EINTR)));
        assert!(
            left > Duration::from_millis(200) && left < Duration::from_millis(400),
            "{left:?}"
        );

        // std's sleep sleeps the remainder after EINTR: the whole 300 ms.
        signal_me_after(Duration::from_millis(100));
        let t0 = Instant::now();
        greenrt::spawn(|| std::thread::sleep(Duration::from_millis(300)))
            .join()
            .unwrap();
        assert!(t0.elapsed() >= Duration::from_millis(300));

        signal_me_after(Duration::from_millis(100));
        let poller = greenrt::spawn(|| {
            let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
            let mut pfd = libc::pollfd {
                fd: a.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let t0 = Instant::now();
            // SAFETY (test): one valid pollfd.
            let rc = unsafe { libc::poll(&mut pfd, 1, 2000) };
            let errno = std::io::Error::last_os_error().raw_os_error();
            (rc, errno, t0.elapsed())
        });
        let (rc, errno, waited) = poller.join().unwrap();
        eprintln!("poll: {rc} {errno:?} after {waited:?}");
        assert_eq!((rc, errno), (-1, Some(libc::EINTR)));
        assert!(waited < Duration::from_secs(1));
        assert_eq!(util::HANDLED.load(Ordering::SeqCst), 3);
        0
    });
    assert_eq!(ended, Ended::Exited(0));
}
