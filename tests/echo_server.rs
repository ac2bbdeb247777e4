//! The example echo server (examples/common/echo.rs) under hostile conditions: out of file
//! descriptors, resets, half-close and idle clients.

mod util;

#[path = "../examples/common/echo.rs"]
mod echo;

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenrt::net::{TcpListener, TcpStream};

/// The tests here fork. A forked child inherits every fd of the test process, including the
/// sockets of a test running at the same time on another thread, and would keep those
/// connections open after their owner closed them. So the tests take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A forked echo server, killed and reaped when dropped (also when the test panics).
struct Server {
    pid: libc::pid_t,
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.pid > 0 {
            stop(self.pid);
        }
    }
}

impl Server {
    /// Stops the server and returns the CPU time it used.
    fn stop(mut self) -> Duration {
        let pid = std::mem::replace(&mut self.pid, 0);
        stop(pid)
    }
}

/// Forks a child that serves echo on `listener` with at most `spare_fds` free descriptors.
fn fork_server(listener: TcpListener, spare_fds: u64) -> Server {
    // SAFETY: the child only runs the server loop and never returns into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        greenrt::hub::reset_after_fork();
        greenrt::sleep(Duration::ZERO); // make the fresh hub (epoll, eventfd, timerfd) first
        let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
        let limit = libc::rlimit {
            rlim_cur: open + spare_fds,
            rlim_max: open + spare_fds,
        };
        // SAFETY: setrlimit reads the struct we pass.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
        echo::serve(listener, Rc::new(Cell::new(0)), true);
    }
    Server { pid }
}

/// SO_LINGER with a zero timeout: close() sends a RST instead of a FIN.
fn reset_on_close(s: &std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads `linger` for the length given.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as u32,
        )
    };
    assert_eq!(rc, 0);
}

fn stop(pid: libc::pid_t) -> Duration {
    // SAFETY: signalling and reaping our own child; `usage` is written by wait4.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        let mut status = 0;
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::wait4(pid, &mut status, 0, &mut usage);
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        tv(usage.ru_utime) + tv(usage.ru_stime)
    }
}

#[test]
fn keeps_accepting_after_running_out_of_file_descriptors() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = fork_server(listener, 4);
    let start = Instant::now();
    // Forty clients at once against a server with room for four connections: most wait in
    // the accept queue until earlier ones finish and free their descriptors.
    let clients: Vec<_> = (0..40u8)
        .map(|i| {
            greenrt::spawn(move || -> std::io::Result<u8> {
                let mut c = TcpStream::connect(addr)?;
                c.set_read_timeout(Some(Duration::from_secs(20)))?;
                c.write_all(&[i])?;
                let mut one = [0; 1];
                c.read_exact(&mut one)?;
                Ok(one[0])
            })
        })
        .collect();
    let echoed: Vec<u8> = greenrt::joinall(clients)
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    let took = start.elapsed();
    let cpu = server.stop();
    assert_eq!(
        echoed,
        (0..40u8).collect::<Vec<_>>(),
        "every client got its byte back"
    );
    assert!(
        cpu < took / 2 + Duration::from_millis(200),
        "the server backed off instead of spinning: cpu {cpu:?} in {took:?}"
    );
}

#[test]
fn survives_resets_half_closes_and_idle_clients() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = fork_server(listener, 1000);
    // Idle clients: connected, silent.
    let idle: Vec<_> = (0..50)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    // Clients that reset: send, then close with unread data pending (RST).
    for _ in 0..20 {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(&[0; 100_000]).unwrap_or(());
        reset_on_close(&s);
        drop(s);
    }
    // A half-closing client still gets everything echoed back.
    let mut half = TcpStream::connect(addr).unwrap();
    let payload: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    let writer_payload = payload.clone();
    let writer_stream = half.try_clone().unwrap();
    let writer = greenrt::spawn(move || {
        let mut w = writer_stream;
        w.write_all(&writer_payload).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    half.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    half.read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    assert_eq!(back, payload);
    // The server still serves new clients.
    let mut fresh = TcpStream::connect(addr).unwrap();
    fresh.write_all(b"still here").unwrap();
    let mut buf = [0; 10];
    fresh.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still here");
    drop(idle);
    server.stop();
}
