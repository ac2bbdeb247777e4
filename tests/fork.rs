//! fork-readiness: a forked child drops the parent's hub and starts a fresh one, and the
//! parent's hub (and its epoll registrations) keep working.

mod util;

use std::io::{Read, Write};
use std::time::Duration;

use greenrt::net::{TcpListener, TcpStream};

/// The tests here fork; a child inherits the sockets of a test running at the same time on
/// another thread. They take turns so no test sees another's inherited copies.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Forks; the child runs `child` and exits with its return value as the status.
fn fork_and_wait(child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the test process is single-threaded at this point apart from the test harness's
    // threads, which the child never touches: it runs `child` and calls `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
        // SAFETY: `_exit` ends the child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child with a valid status pointer.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid);
    assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
    libc::WEXITSTATUS(status)
}

#[test]
fn forked_child_gets_a_fresh_hub_and_the_parent_keeps_its_registrations() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // The parent's hub has a registered listener with a green thread parked in accept.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = greenrt::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0; 5];
        conn.read_exact(&mut buf).unwrap();
        buf
    });
    greenrt::sleep(Duration::from_millis(5)); // the server parks in accept (registered)

    let code = fork_and_wait(|| {
        greenrt::hub::reset_after_fork();
        // A fresh hub: green threads and timers work in the child.
        let handles: Vec<_> = (0..100)
            .map(|i| {
                greenrt::spawn(move || {
                    greenrt::sleep(Duration::from_millis(1));
                    i
                })
            })
            .collect();
        let sum: i32 = greenrt::joinall(handles)
            .into_iter()
            .map(Result::unwrap)
            .sum();
        // Use a socket in the child too, on its own hub.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        let c = greenrt::spawn(move || TcpStream::connect(a).unwrap().write_all(b"x").is_ok());
        let (mut s, _) = l.accept().unwrap();
        let mut one = [0; 1];
        s.read_exact(&mut one).unwrap();
        if sum == 4950 && c.join().unwrap() && one == *b"x" {
            7
        } else {
            1
        }
    });
    assert_eq!(
        code, 7,
        "the child ran green threads and sockets on a fresh hub"
    );

    // The parent's registration survived the child's hub and its exit.
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"after").unwrap();
    assert_eq!(&server.join().unwrap(), b"after");
}

#[test]
fn dropping_an_inherited_socket_in_the_child_leaves_the_parents_epoll_alone() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = greenrt::spawn(move || listener.accept().unwrap().0);
    let mut a = TcpStream::connect(addr).unwrap();
    let mut b = peer.join().unwrap();
    // Register `a` with this hub: a read that times out has waited on it.
    a.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    assert!(a.read(&mut [0; 1]).is_err());
    a.set_read_timeout(None).unwrap();

    let slot = std::cell::RefCell::new(Some(a));
    let code = fork_and_wait(|| {
        greenrt::hub::reset_after_fork();
        drop(slot.borrow_mut().take()); // the child's copy: must not EPOLL_CTL_DEL ours
        0
    });
    assert_eq!(code, 0);

    // In the parent `a` is still registered: a parked reader is woken by the peer's write.
    let a = slot.take().unwrap();
    let reader = greenrt::spawn(move || {
        let mut one = [0; 1];
        (&a).read_exact(&mut one).map(|_| one)
    });
    greenrt::sleep(Duration::from_millis(5));
    b.write_all(b"z").unwrap();
    let got = greenrt::timeout(Duration::from_secs(5), || reader.join());
    assert_eq!(got.expect("the reader was woken").unwrap().unwrap(), *b"z");
}
