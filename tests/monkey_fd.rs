//! monkey and the hub's one I/O table: several green threads on one fd (std sockets and
//! greenrt sockets, `poll` over them), fd numbers reused after `close`, `close` waking a
//! blocked reader, and `timeout`/`kill` reaching a green thread blocked in a hooked call.
//!
//! Every scenario runs in a forked child (`util::in_child`) with a time limit, so a hang
//! (SIGALRM) or an abort (SIGABRT) is reported as such instead of taking the test binary
//! down. Waits are checked by the CPU time they burn (`getrusage`), not by a wall clock.
#![cfg(feature = "monkey")]

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use util::{Ended, in_child, thread_cpu_time};

/// The children fork from a test binary whose other tests run on other threads; one at a
/// time keeps their fds out of each other's way.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(limit_secs: u32, child: impl FnOnce() -> i32) -> Ended {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    in_child(limit_secs, child)
}

/// A plain-thread server: for each accepted connection, runs `serve` on its own OS thread.
fn server(serve: impl Fn(usize, TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = std::sync::Arc::new(serve);
    std::thread::spawn(move || {
        for (i, conn) in listener.incoming().enumerate() {
            let serve = serve.clone();
            std::thread::spawn(move || serve(i, conn.unwrap()));
        }
    });
    addr
}

fn set_buffer(fd: i32, option: i32, bytes: i32) {
    // SAFETY (test): setsockopt on our own socket with a valid int.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&bytes as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
}

/// CPU time and wall clock since `start`, for "it waited without spinning" checks.
struct Meter {
    cpu0: Duration,
    t0: Instant,
}

impl Meter {
    fn start() -> Meter {
        Meter {
            cpu0: thread_cpu_time(),
            t0: Instant::now(),
        }
    }

    /// Prints what was measured, asserts the thread burnt less than `max_cpu`, returns the
    /// wall time.
    fn assert_idle(&self, what: &str, max_cpu: Duration) -> Duration {
        let (cpu, wall) = (thread_cpu_time() - self.cpu0, self.t0.elapsed());
        eprintln!("{what}: {wall:?} wall, {cpu:?} CPU");
        assert!(cpu < max_cpu, "{what} spun: {cpu:?} of CPU in {wall:?}");
        wall
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

#[test]
fn smoke_a_hooked_read_parks_and_returns_the_data() {
    let ended = run(10, || {
        greenrt::monkey::patch_all();
        let addr = server(|_, mut conn| {
            std::thread::sleep(Duration::from_millis(50));
            conn.write_all(b"hi").unwrap();
        });
        let reader = greenrt::spawn(move || {
            let mut buf = [0u8; 2];
            TcpStream::connect(addr)
                .unwrap()
                .read_exact(&mut buf)
                .unwrap();
            buf
        });
        assert_eq!(&reader.join().unwrap(), b"hi");
        0
    });
    assert_eq!(ended, Ended::Exited(0));
}

#[test]
fn a_reader_and_a_writer_on_one_std_socket_park_instead_of_spinning() {
    let ended = run(20, || {
        greenrt::monkey::patch_all();
        // Buffers small enough that the writer blocks, large enough (past loopback's 64 KiB
        // segment) that TCP's silly-window avoidance does not stall the transfer itself.
        let addr = server(|_, mut conn| {
            set_buffer(conn.as_raw_fd(), libc::SO_RCVBUF, 64 << 10);
            std::thread::sleep(Duration::from_millis(500)); // both client sides block meanwhile
            let mut all = vec![0u8; 4 << 20];
            conn.read_exact(&mut all).unwrap();
            conn.write_all(b"hello").unwrap();
        });
        let stream = Rc::new(TcpStream::connect(addr).unwrap());
        set_buffer(stream.as_raw_fd(), libc::SO_SNDBUF, 64 << 10);
        let meter = Meter::start();
        let s = stream.clone();
        let reader = greenrt::spawn(move || {
            let mut buf = [0u8; 5];
            (&*s).read_exact(&mut buf).unwrap();
            buf
        });
        let s = stream.clone();
        let writer = greenrt::spawn(move || (&*s).write_all(&vec![7u8; 4 << 20]).unwrap());
        writer.join().unwrap();
        assert_eq!(&reader.join().unwrap(), b"hello");
        let wall = meter.assert_idle("reader+writer on one fd", Duration::from_millis(250));
        assert!(wall >= Duration::from_millis(450), "{wall:?}");
        0
    });
    assert_eq!(ended, Ended::Exited(0));
}

#[test]
fn two_acceptors_on_one_std_listener_with_clients_on_the_same_hub() {
    let ended = run(20, || {
        greenrt::monkey::patch_all();
        let listener = Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let addr = listener.local_addr().unwrap();
        let meter = Meter::start();
        let acceptors: Vec<_> = (0..2)
            .map(|_| {
                let l = listener.clone();
                greenrt::spawn(move || l.accept().map(|(conn, _)| conn.peer_addr().unwrap()))
            })
            .collect();
        let clients = greenrt::spawn(move || {
            greenrt::sleep(Duration::from_millis(300));
            let a = TcpStream::connect(addr).unwrap();
            let b = TcpStream::connect(addr).unwrap();
            vec![a.local_addr().unwrap(), b.local_addr().unwrap()]
        });
        let mut accepted: Vec<_> = greenrt::joinall(acceptors)
            .into_iter()
            .map(|r| r.unwrap().unwrap())
            .collect();
        let mut connected = clients.join().unwrap();
        accepted.sort();
        connected.sort();
        assert_eq!(accepted, connected, "each acceptor got one of the clients");
        meter.assert_idle("two acceptors", Duration::from_millis(150));
        0
    });
    assert_eq!(ended, Ended::Exited(0));
}

#[test]
fn poll_on_a_greenrt_socket_fd_wakes_when_the_peer_writes() {
    let ended = run(20, || {
        greenrt::monkey::patch_all();
        let addr = server(|_, mut conn| {
            std::thread::sleep(Duration::from_millis(300));
            conn.write_all(b"x").unwrap();
            std::thread::sleep(Duration::from_secs(3));
        });
        let stream = Rc::new(greenrt::net::TcpStream::connect(addr).unwrap());
        // A read that times out on a green thread leaves the socket registered with the hub
        // (its own source, which the poll below must share).
        stream
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let s = stream.clone();
        let err = greenrt::spawn(move || (&*s).read(&mut [0u8; 1]).unwrap_err().kind());
        assert_eq!(err.join().unwrap(), ErrorKind::TimedOut);
        let fd = stream.as_raw_fd();
        let meter = Meter::start();
        let poller = greenrt::spawn(move || {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY (test): one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, 3000) };
            (n, pfd.revents)
        });
        let (n, revents) = poller.join().unwrap();
        let wall = meter.assert_idle("poll on a greenrt socket", Duration::from_millis(150));
        assert_eq!(n, 1, "poll saw the peer's byte");
        assert_ne!(revents & libc::POLLIN, 0);
        assert!(wall < Duration::from_secs(2), "{wall:?}");
        // The socket still works as a greenrt socket after poll took its source and gave it back.
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut byte = [0u8; 1];
        (&*stream).read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x");
        0
    });
    assert_eq!(ended, Ended::Exited(0));
}

#[test]
fn select_over_a_std_and_a_greenrt_socket_while_another_green_thread_reads_the_greenrt_one() {
    let ended = run(20, || {
        greenrt::monkey::patch_all();
        let addr = server(|i, mut conn| {
            let (after, byte) = if i == 0 { (200, b"x") } else { (500, b"y") };
            std::thread::sleep(Duration::from_millis(after));
            conn.write_all(byte).unwrap();
            std::thread::sleep(Duration::from_secs(5));
        });
        let plain = TcpStream::connect(addr).unwrap(); // the server's connection 0
        std::thread::sleep(Duration::from_millis(50)); // accepted in that order
        let green = Rc::new(greenrt::net::TcpStream::connect(addr).unwrap()); // connection 1
        let t0 = Instant::now();
        let g = green.clone();
        let reader = greenrt::spawn(move || {
            let mut byte = [0u8; 1];
            (&*g).read_exact(&mut byte).unwrap();
            (byte, t0.elapsed())
        });
        let (x, y) = (plain.as_raw_fd(), green.as_raw_fd());
        let selector = greenrt::spawn(move || {
            // SAFETY (test): a zeroed fd_set filled by FD_SET with fds below FD_SETSIZE.
            let mut set: libc::fd_set = unsafe { std::mem::zeroed() };
            unsafe {
                libc::FD_SET(x, &mut set);
                libc::FD_SET(y, &mut set);
            }
            let mut limit = libc::timeval {
                tv_sec: 2,
                tv_usec: 0,
            };
            let (null, n) = (std::ptr::null_mut(), x.max(y) + 1);
            // SAFETY (test): valid sets and timeout.
            let rc = unsafe { libc::select(n, &mut set, null, null, &mut limit) };
            // SAFETY (test): the set select wrote.
            let (rx, ry) = unsafe { (libc::FD_ISSET(x, &set), libc::FD_ISSET(y, &set)) };
            (rc, rx, ry, t0.elapsed())
        });
        let (rc, rx, ry, selected_at) = selector.join().unwrap();
        eprintln!("select: {rc} (x {rx}, y {ry}) after {selected_at:?}");
        assert_eq!(
            (rc, rx, ry),
            (1, true, false),
            "the std socket's byte came first"
        );
        assert!(selected_at < Duration::from_millis(450), "{selected_at:?}");
        // select took the greenrt socket's source for its wait and gave it back: the reader,
        // parked on it all along, still wakes for its byte.
        let (byte, read_at) = reader.join().unwrap();
        assert_eq!(&byte, b"y");
        assert!(read_at >= Duration::from_millis(450), "{read_at:?}");
        0
    });
    assert_eq!(ended, Ended::Exited(0));
}

#[test]
fn a_reused_fd_number_is_not_touched_by_the_old_sockets_clean_up() {
    let ended = run(20, || {
        greenrt::monkey::patch_all();
        let addr = server(|i, mut conn| {
            if i == 1 {
                std::thread::sleep(Duration::from_millis(400));
                conn.write_all(b"B").unwrap();
            }
            std::thread::sleep(Duration::from_secs(5));
        });
        let first = TcpStream::connect(addr).unwrap();
        first
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let n = first.into_raw_fd();
        // A reads fd n with a 300 ms socket timeout...
        let a = greenrt::spawn(move || {
            let mut byte = [0u8; 1];
            // SAFETY (test): a valid buffer; n is open until main closes it.
            let rc = unsafe { libc::read(n, byte.as_mut_ptr().cast(), 1) };
            (rc, errno())
        });
        greenrt::sleep(Duration::from_millis(50));
        // ...while its fd is closed behind its back and the number goes to a new socket.
        // SAFETY (test): n is ours; A only reads it.
        unsafe { libc::close(n) };
        let second = TcpStream::connect(addr).unwrap();
        assert_eq!(second.as_raw_fd(), n, "the new socket reuses the number");
        let b = greenrt::spawn(move || {
            let mut byte = [0u8; 1];
            (&second).read_exact(&mut byte).map(|()| byte)
        });
        let (rc, err) = a.join().unwrap();
        assert_eq!((rc, err), (-1, libc::EBADF), "A learns its fd was closed");
        let t0 = Instant::now();
        assert_eq!(&b.join().unwrap().unwrap(), b"B", "B woke for its data");
        assert!(t0.elapsed() < Duration::from_secs(2));
        0
    });
    assert_eq!(ended, Ended::Exited(0));
}

#[test]
fn close_wakes_a_green_thread_blocked_reading_that_fd_with_ebadf() {
    let ended = run(20, || {
        greenrt::monkey::patch_all();
        let addr = server(|_, _conn| std::thread::sleep(Duration::from_secs(5)));
        let stream = TcpStream::connect(addr).unwrap();
        let fd = stream.as_raw_fd();
        let reader = greenrt::spawn(move || {
            let mut byte = [0u8; 1];
            let t0 = Instant::now();
            // SAFETY (test): a valid buffer; fd is open until main drops the stream.
            let rc = unsafe { libc::recv(fd, byte.as_mut_ptr().cast(), 1, 0) };
            (rc, errno(), t0.elapsed())
        });
        greenrt::sleep(Duration::from_millis(100));
        drop(stream); // close(2) through the hook
        let (rc, err, waited) = reader.join().unwrap();
        assert_eq!((rc, err), (-1, libc::EBADF));
        assert!(waited < Duration::from_secs(1), "{waited:?}");
        0
    });
    assert_eq!(ended, Ended::Exited(0));
}

/// A listener whose accept queue is full, so that a further `connect` blocks (the kernel
/// drops its SYNs) until it is given up.
fn full_listener() -> (TcpListener, SocketAddr, Vec<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY (test): listen(2) again on our own socket sets a backlog of 0.
    assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    for _ in 0..4 {
        if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            queued.push(s);
        }
    }
    (listener, addr, queued)
}

/// What a blocking call in a test green thread does.
#[derive(Clone, Copy, Debug)]
enum Blocking {
    Sleep,
    Read,
    Connect,
}

impl Blocking {
    /// Runs the call; returns the error kind it ended with (None if it returned Ok).
    fn call(self, silent: SocketAddr, full: SocketAddr) -> Option<ErrorKind> {
        match self {
            Blocking::Sleep => {
                std::thread::sleep(Duration::from_secs(3));
                None
            }
            Blocking::Read => {
                let mut conn = TcpStream::connect(silent).unwrap();
                conn.read(&mut [0u8; 1]).err().map(|e| e.kind())
            }
            Blocking::Connect => TcpStream::connect(full).err().map(|e| e.kind()),
        }
    }
}

const ALL: [Blocking; 3] = [Blocking::Sleep, Blocking::Read, Blocking::Connect];

#[test]
fn timeout_interrupts_a_hooked_sleep_read_and_connect() {
    let ended = run(30, || {
        greenrt::monkey::patch_all();
        let silent = server(|_, _conn| std::thread::sleep(Duration::from_secs(10)));
        let (_listener, full, _queued) = full_listener();
        for call in ALL {
            let seen = Rc::new(std::cell::Cell::new(None));
            let s = seen.clone();
            let h = greenrt::spawn(move || {
                let t0 = Instant::now();
                let outcome = greenrt::timeout(Duration::from_millis(100), || {
                    s.set(call.call(silent, full));
                });
                (outcome, t0.elapsed())
            });
            let (outcome, took) = h.join().unwrap();
            eprintln!(
                "timeout around {call:?}: {outcome:?} after {took:?}, call saw {:?}",
                seen.get()
            );
            assert_eq!(outcome, Err(greenrt::Elapsed), "{call:?}");
            assert!(took < Duration::from_secs(1), "{call:?} took {took:?}");
            match call {
                Blocking::Sleep => assert_eq!(seen.get(), None), // std's sleep just returns
                _ => assert_eq!(seen.get(), Some(ErrorKind::TimedOut), "{call:?}"),
            }
        }
        0
    });
    assert_eq!(ended, Ended::Exited(0), "an abort is Signalled(6)");
}

#[test]
fn kill_reaches_a_green_thread_blocked_in_a_hooked_call() {
    let ended = run(30, || {
        greenrt::monkey::patch_all();
        let silent = server(|_, _conn| std::thread::sleep(Duration::from_secs(10)));
        let (_listener, full, _queued) = full_listener();
        for call in ALL {
            let h = greenrt::spawn(move || call.call(silent, full));
            greenrt::sleep(Duration::from_millis(100));
            let t0 = Instant::now();
            h.kill();
            let took = t0.elapsed();
            eprintln!("kill of a green thread in {call:?}: {took:?}");
            assert!(took < Duration::from_secs(1), "{call:?} took {took:?}");
        }
        // A killed thread that swallows the error and parks again ends there, as Killed.
        let swallower = greenrt::spawn(move || {
            let mut conn = TcpStream::connect(silent).unwrap();
            let first = conn.read(&mut [0u8; 1]).unwrap_err().raw_os_error();
            let again = conn.read(&mut [0u8; 1]).unwrap_err().raw_os_error(); // still interrupted
            assert_eq!(
                (first, again),
                (Some(libc::ECANCELED), Some(libc::ECANCELED))
            );
            eprintln!("swallower: read failed twice with ECANCELED, now parks");
            greenrt::sleep(Duration::from_secs(5)); // the next park point: unwinds
            unreachable!("a killed green thread does not wake from sleep");
        });
        greenrt::sleep(Duration::from_millis(100));
        let t0 = Instant::now();
        let handle = swallower;
        handle.kill();
        assert!(t0.elapsed() < Duration::from_secs(1));
        0
    });
    assert_eq!(ended, Ended::Exited(0), "an abort is Signalled(6)");
}

/// A pool member that swallows the kill's ECANCELED in a hooked read and calls again
/// survives `kill_all_timeout` (each failed call lets the others run, so the timeout can
/// pass); the obedient member dies. gevent's `kill(timeout=)` reports the same.
#[test]
fn a_member_that_swallows_kills_survives_kill_all_timeout() {
    let ended = run(20, || {
        greenrt::monkey::patch_all();
        let silent = server(|_, _conn| std::thread::sleep(Duration::from_secs(10)));
        let pool = greenrt::pool::GreenPool::new(2).unwrap();
        let obedient = pool.spawn(|| greenrt::sleep(Duration::from_secs(60)));
        let give_up = std::rc::Rc::new(std::cell::Cell::new(false));
        let g = give_up.clone();
        pool.spawn(move || {
            let mut conn = TcpStream::connect(silent).unwrap();
            while !g.get() {
                let _ = conn.read(&mut [0u8; 1]); // swallows ECANCELED and calls again
            }
        });
        greenrt::sleep(Duration::from_millis(100));
        let t0 = Instant::now();
        let survivors = pool.kill_all_timeout(Duration::from_millis(100));
        let waited = t0.elapsed();
        give_up.set(true);
        pool.join();
        eprintln!("survivors {survivors} after {waited:?}");
        let ok = survivors == 1
            && waited >= Duration::from_millis(100)
            && obedient.join().is_err_and(|e| e.is_killed());
        if ok { 0 } else { 1 }
    });
    assert_eq!(ended, Ended::Exited(0));
}

#[test]
fn a_killed_green_thread_that_returns_after_the_interrupted_call_ends_as_killed() {
    let ended = run(20, || {
        greenrt::monkey::patch_all();
        let silent = server(|_, _conn| std::thread::sleep(Duration::from_secs(10)));
        let h = greenrt::spawn(move || {
            let mut conn = TcpStream::connect(silent).unwrap();
            conn.read(&mut [0u8; 1]).map_err(|e| e.raw_os_error())
        });
        let h2 = greenrt::spawn(move || {
            greenrt::sleep(Duration::from_millis(100));
            h.kill();
            h
        });
        let h = h2.join().unwrap();
        assert!(h.join().unwrap_err().is_killed());
        0
    });
    assert_eq!(ended, Ended::Exited(0));
}
