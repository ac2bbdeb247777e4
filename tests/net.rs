//! Green sockets: echo at scale, timeouts, half-close, plain threads, clones, UDP.

mod util;

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenrt::net::{TcpListener, TcpStream, UdpSocket};
use greenrt::{joinall, sleep, spawn, timeout};
use util::{FNV_START, fnv1a, pattern, raise_fd_limit};

const MS: Duration = Duration::from_millis(1);

/// Serves echo on `listener` for `conns` connections, each in its own green thread.
fn echo_server(listener: TcpListener, conns: usize) -> greenrt::JoinHandle<()> {
    echo_server_admitting(listener, conns, None)
}

/// The echo server; with `admitted`, it gives back one permit per accepted connection, so
/// clients that take one before connecting never have more handshakes waiting for `accept`
/// than the permits — far below the listen backlog, whatever the machine's load.
fn echo_server_admitting(
    listener: TcpListener,
    conns: usize,
    admitted: Option<Rc<greenrt::sync::Semaphore>>,
) -> greenrt::JoinHandle<()> {
    spawn(move || {
        let mut handlers = Vec::new();
        for _ in 0..conns {
            let (mut conn, _) = listener.accept().unwrap();
            if let Some(admitted) = &admitted {
                admitted.release();
            }
            handlers.push(spawn(move || {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) => {
                            let _ = conn.shutdown(Shutdown::Write);
                            break;
                        }
                        Ok(n) => conn.write_all(&buf[..n]).unwrap(),
                        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
                        Err(e) => panic!("server read: {e}"),
                    }
                }
            }));
        }
        for r in joinall(handlers) {
            r.unwrap();
        }
    })
}

#[test]
fn smoke_echo_one_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = echo_server(listener, 1);
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"ping").unwrap();
    let mut buf = [0; 4];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    drop(c);
    server.join().unwrap();
}

#[test]
fn thousand_connections_each_echo_one_mib_with_checksum() {
    raise_fd_limit();
    const CONNS: usize = 1000;
    const BYTES: usize = 1 << 20;
    // A storm of 1000 connects at once overflows the accept queue of a server that a busy
    // machine schedules late (the kernel logs "Possible SYN flooding" and resets some): at
    // most 128 connects wait for `accept` at a time.
    const PENDING: usize = 128;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let admitted = Rc::new(greenrt::sync::Semaphore::new(PENDING));
    let server = echo_server_admitting(listener, CONNS, Some(admitted.clone()));
    let clients: Vec<_> = (0..CONNS as u64)
        .map(|seed| {
            let admitted = admitted.clone();
            spawn(move || {
                let data = pattern(seed, 64 * 1024);
                admitted.acquire().forget(); // given back by the server's accept
                let stream = TcpStream::connect(addr).unwrap();
                let reader = stream.try_clone().unwrap();
                // One green thread writes while another reads the same connection.
                let writer = spawn(move || {
                    let mut s = &stream;
                    let mut hash = FNV_START;
                    for _ in 0..BYTES / data.len() {
                        s.write_all(&data).unwrap();
                        hash = fnv1a(&data, hash);
                    }
                    stream.shutdown(Shutdown::Write).unwrap();
                    hash
                });
                let mut hash = FNV_START;
                let mut total = 0;
                let mut buf = vec![0u8; 32 * 1024];
                let mut r = &reader;
                loop {
                    let n = r.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    hash = fnv1a(&buf[..n], hash);
                    total += n;
                }
                assert_eq!(total, BYTES);
                assert_eq!(
                    writer.join().unwrap(),
                    hash,
                    "echoed bytes differ from sent bytes"
                );
            })
        })
        .collect();
    for r in joinall(clients) {
        r.unwrap();
    }
    server.join().unwrap();
}

#[test]
fn read_timeout_fails_with_timed_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        sleep(MS * 200);
        drop(conn);
    });
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(MS * 30)).unwrap();
    assert_eq!(c.read_timeout().unwrap(), Some(MS * 30));
    let start = Instant::now();
    let err = c.read(&mut [0; 8]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(start.elapsed() >= MS * 30 && start.elapsed() < MS * 1000);
    assert!(
        c.set_read_timeout(Some(Duration::ZERO)).is_err(),
        "zero timeout is invalid, as in std"
    );
    silent.join().unwrap();
}

#[test]
fn write_timeout_fails_with_timed_out_when_the_peer_does_not_read() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let lazy = spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        sleep(Duration::from_millis(1500));
        drop(conn);
    });
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_write_timeout(Some(MS * 50)).unwrap();
    let chunk = vec![7u8; 1 << 20];
    let err = loop {
        if let Err(e) = c.write(&chunk) {
            break e;
        }
    };
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    lazy.kill();
}

#[test]
fn accept_and_connect_under_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let start = Instant::now();
    assert!(
        timeout(MS * 30, || listener.accept()).is_err(),
        "nobody connects"
    );
    assert!(start.elapsed() >= MS * 30);
    // The listener still works after the interrupted accept (its waiter was removed).
    let addr = listener.local_addr().unwrap();
    let client =
        spawn(move || TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map(|_| ()));
    let (_conn, _) = listener.accept().unwrap();
    client.join().unwrap().unwrap();
    let refused =
        TcpStream::connect_timeout(&"127.0.0.1:1".parse().unwrap(), Duration::from_secs(5));
    assert_eq!(
        refused.unwrap_err().kind(),
        io::ErrorKind::ConnectionRefused
    );
}

#[test]
fn half_close_lets_the_other_side_finish() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        conn.read_to_end(&mut got).unwrap(); // ends when the client shuts down writing
        conn.write_all(format!("got {} bytes", got.len()).as_bytes())
            .unwrap();
    });
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(&[1; 1000]).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut reply = String::new();
    c.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "got 1000 bytes");
    server.join().unwrap();
}

#[test]
fn reset_by_peer_is_an_error_not_a_hang() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0; 4];
        conn.read_exact(&mut buf).unwrap();
        // Unread data in the receive queue makes close() send a RST.
        drop(conn);
    });
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"abcdEXTRA").unwrap();
    server.join().unwrap();
    sleep(MS * 20);
    let result = c.read(&mut [0; 16]);
    assert!(
        matches!(result, Err(ref e) if e.kind() == io::ErrorKind::ConnectionReset)
            || matches!(result, Ok(0))
    );
}

#[test]
fn sockets_work_on_a_plain_thread_without_a_hub() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = echo_server(listener, 1);
    let plain = std::thread::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"from a plain thread").unwrap();
        let mut buf = [0; 19];
        c.read_exact(&mut buf).unwrap();
        let timed_out = {
            c.set_read_timeout(Some(MS * 20)).unwrap();
            c.read(&mut [0; 1]).unwrap_err().kind()
        };
        (buf, timed_out)
    });
    // The main context must keep the hub running for the green server meanwhile.
    server.join().unwrap();
    let (buf, timed_out) = plain.join().unwrap();
    assert_eq!(&buf, b"from a plain thread");
    assert_eq!(timed_out, io::ErrorKind::TimedOut);
}

#[test]
fn killing_a_reader_unregisters_it_and_the_socket_stays_usable() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        sleep(MS * 30);
        conn.write_all(b"late").unwrap();
    });
    let c = Rc::new(TcpStream::connect(addr).unwrap());
    let c2 = c.clone();
    let reader = spawn(move || (&*c2).read(&mut [0; 4]).map(|_| ()));
    sleep(MS * 5);
    reader.kill();
    assert!(reader.join().unwrap_err().is_killed());
    let mut buf = [0; 4];
    (&*c).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"late");
    server.join().unwrap();
}

/// Three green threads read one socket; the first to park is killed (it leaves the fd's
/// waiter list, where it sat first); two bytes then arrive, and both readers left are woken
/// — the first waiter of a direction is kept apart from the rest, and either can be taken off.
#[test]
fn several_readers_of_one_socket_all_wake_after_the_first_listed_is_killed() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let go = Rc::new(greenrt::sync::Event::new());
    let server = spawn({
        let go = go.clone();
        move || {
            let (mut conn, _) = listener.accept().unwrap();
            go.wait();
            conn.write_all(b"ab").unwrap();
        }
    });
    let c = Rc::new(TcpStream::connect(addr).unwrap());
    let read_one = |c: Rc<TcpStream>| {
        spawn(move || {
            let mut byte = [0; 1];
            (&*c).read_exact(&mut byte).map(|()| byte[0])
        })
    };
    let first = read_one(c.clone());
    sleep(MS); // `first` parks on the socket before the others
    let others = [read_one(c.clone()), read_one(c.clone())];
    sleep(MS);
    first.kill();
    assert!(first.join().unwrap_err().is_killed());
    go.set();
    let got = timeout(Duration::from_secs(5), || {
        let mut got: Vec<u8> = joinall(others)
            .into_iter()
            .map(|r| r.unwrap().unwrap())
            .collect();
        got.sort();
        got
    })
    .expect("a reader left listed behind the killed one was never woken");
    assert_eq!(got, b"ab");
    server.join().unwrap();
}

#[test]
fn nonblocking_mode_returns_would_block() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    assert_eq!(
        listener.accept().unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
}

#[test]
fn conversions_from_std_and_raw_fds() {
    use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    let listener = TcpListener::from(std_listener);
    let fd = listener.into_raw_fd();
    // SAFETY: `fd` came from into_raw_fd just above and is owned by nobody else.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    assert_eq!(listener.as_raw_fd(), fd);
    let client = spawn(move || TcpStream::from(std::net::TcpStream::connect(addr).unwrap()));
    let (_conn, _) = listener.accept().unwrap();
    let c = client.join().unwrap();
    assert_eq!(c.peer_addr().unwrap(), addr);
}

#[test]
fn udp_send_recv_and_timeout() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b_addr = b.local_addr().unwrap();
    let receiver = spawn(move || {
        let mut buf = [0; 64];
        let (n, from) = b.recv_from(&mut buf).unwrap();
        b.connect(from).unwrap();
        b.send(&buf[..n]).unwrap();
        b.set_read_timeout(Some(MS * 20)).unwrap();
        b.recv(&mut buf).unwrap_err().kind()
    });
    sleep(MS * 5); // the receiver is parked in recv_from
    a.send_to(b"datagram", b_addr).unwrap();
    let mut buf = [0; 64];
    let (n, _) = a.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"datagram");
    assert_eq!(receiver.join().unwrap(), io::ErrorKind::TimedOut);
}

#[test]
fn main_context_waits_on_a_socket_while_green_threads_run() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let ticks = Rc::new(Cell::new(0));
    let t = ticks.clone();
    let writer = spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        for _ in 0..5 {
            sleep(MS * 5);
            t.set(t.get() + 1);
        }
        conn.write_all(b"x").unwrap();
    });
    let mut c = TcpStream::connect(addr).unwrap();
    let mut one = [0; 1];
    c.read_exact(&mut one).unwrap();
    assert_eq!(ticks.get(), 5);
    writer.join().unwrap();
}

/// Compile-time checks: sockets move between threads like std's; handles for wake-ups too.
#[test]
fn send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<TcpStream>();
    assert_send_sync::<TcpListener>();
    assert_send_sync::<UdpSocket>();
    assert_send_sync::<greenrt::hub::Unparker>();
}

/// A listener that never accepts, with the smallest backlog: once its accept queue is full,
/// the kernel drops further SYNs on loopback, so a new connect hangs in SYN-SENT.
fn full_backlog_listener() -> (std::net::TcpListener, Vec<std::net::TcpStream>) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket syscalls on a fresh fd we own; `addr` outlives the bind call.
    let listener = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as u16;
        addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as u32;
        assert_eq!(
            libc::bind(fd, (&addr as *const libc::sockaddr_in).cast(), len),
            0
        );
        assert_eq!(libc::listen(fd, 0), 0);
        std::net::TcpListener::from_raw_fd(fd)
    };
    let addr = listener.local_addr().unwrap();
    // Fill the accept queue with connections nobody accepts.
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match std::net::TcpStream::connect_timeout(&addr, MS * 200) {
            Ok(s) => fillers.push(s),
            Err(_) => break,
        }
    }
    (listener, fillers)
}

#[test]
fn connect_timeout_fires_when_the_peer_never_answers() {
    let (listener, _fillers) = full_backlog_listener();
    let addr = listener.local_addr().unwrap();
    let ticker = util::Ticker::start(5, MS * 10);
    let start = Instant::now();
    let err = TcpStream::connect_timeout(&addr, MS * 150).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(start.elapsed() >= MS * 150 && start.elapsed() < Duration::from_secs(3));
    assert_eq!(
        ticker.finish(),
        5,
        "the hub ran other green threads during the connect"
    );
    // And the same under greenrt::timeout, interrupting a plain connect.
    assert!(timeout(MS * 50, || TcpStream::connect(addr)).is_err());
}

/// The end of stream often arrives together with the last data: one readiness event for
/// both. A reader that drains the data with a short read must still see the EOF (a
/// regression test for readiness tracking that forgot "closed" along with "ready").
#[test]
fn eof_arriving_with_the_last_data_is_not_lost() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = echo_server(listener, 1);
    let half = TcpStream::connect(addr).unwrap();
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let expected = payload.clone();
    let mut writer_half = half.try_clone().unwrap();
    let writer = spawn(move || {
        writer_half.write_all(&payload).unwrap();
        writer_half.shutdown(Shutdown::Write).unwrap();
    });
    half.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut back = Vec::new();
    (&half).read_to_end(&mut back).unwrap();
    assert_eq!(back, expected);
    writer.join().unwrap();
    server.join().unwrap();
}

/// True if the fd is in non-blocking mode.
fn is_nonblocking(fd: &impl std::os::fd::AsRawFd) -> bool {
    // SAFETY (test): F_GETFL on an open fd has no memory effects.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    assert!(flags >= 0);
    flags & libc::O_NONBLOCK != 0
}

/// std's conversions both ways: `From<OwnedFd>` makes a green socket (non-blocking, parks a
/// green thread on read), `OwnedFd::from` and `into_std` leave the hub after a wait, and
/// `into_std` hands back a socket in blocking mode, as std expects.
#[test]
fn sockets_convert_to_and_from_owned_fds_and_std() {
    use std::io::{Read, Write};
    use std::os::fd::OwnedFd;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = greenrt::net::TcpListener::from(OwnedFd::from(listener));
    assert!(is_nonblocking(&listener));
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    let (conn, _) = listener.accept().unwrap();
    let conn = greenrt::net::TcpStream::from(OwnedFd::from(conn.into_std().unwrap()));
    let reader = greenrt::spawn(move || {
        let mut conn = conn;
        let mut buf = [0u8; 4];
        conn.read_exact(&mut buf).unwrap(); // parks: the client writes after a sleep
        conn
    });
    let ticker = greenrt::spawn(|| greenrt::sleep(std::time::Duration::from_millis(20)));
    ticker.join().unwrap(); // the reader parked meanwhile instead of blocking the thread
    client.write_all(b"ping").unwrap();
    let conn = reader.join().unwrap();
    let mut std_conn = conn.into_std().unwrap();
    assert!(
        !is_nonblocking(&std_conn),
        "into_std must give back a blocking socket"
    );
    std_conn.write_all(b"pong").unwrap();
    let mut buf = [0u8; 4];
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong");
    let fd: OwnedFd = greenrt::net::UdpSocket::bind("127.0.0.1:0").unwrap().into();
    let udp = std::net::UdpSocket::from(fd);
    assert!(udp.local_addr().is_ok());
}
