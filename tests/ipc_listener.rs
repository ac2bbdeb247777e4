//! `ipc::Listener` / `ipc::connect` (multiprocessing.connection's Listener and Client):
//! connections between processes at a path, with the auth key handshake.

use std::cell::Cell;
use std::io::{ErrorKind, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenrt::ipc::{AuthenticationError, Listener, connect};
use greenrt::process::Process;

const KEY: &[u8] = b"secret password";

/// A fresh directory for one test's socket, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("greenrt-listener-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn socket(&self) -> PathBuf {
        self.0.join("s.sock")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn is_auth_error(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::PermissionDenied
        && e.get_ref()
            .is_some_and(|inner| inner.is::<AuthenticationError>())
}

#[test]
fn smoke_a_process_connects_without_a_key() {
    let dir = Scratch::new("smoke");
    let listener = Listener::bind(dir.socket(), None).unwrap();
    let path = dir.socket();
    let child = Process::spawn(move || {
        let conn = connect(&path, None).unwrap();
        let n: u64 = conn.recv().unwrap();
        conn.send(&(n + 1)).unwrap();
    })
    .unwrap();
    let conn = listener.accept().unwrap();
    conn.send(&41u64).unwrap();
    assert_eq!(conn.recv::<u64>().unwrap(), 42);
    assert!(child.join().unwrap().success());
}

#[test]
fn the_same_key_on_both_sides_lets_messages_through_both_ways() {
    let dir = Scratch::new("same-key");
    let listener = Listener::bind(dir.socket(), Some(KEY)).unwrap();
    let path = dir.socket();
    let child = Process::spawn(move || {
        let conn = connect(&path, Some(KEY)).unwrap();
        conn.send(&"hello from the client").unwrap();
        let reply: String = conn.recv().unwrap();
        assert_eq!(reply, "hello from the server");
    })
    .unwrap();
    let conn = listener.accept().unwrap();
    assert_eq!(conn.recv::<String>().unwrap(), "hello from the client");
    conn.send(&"hello from the server").unwrap();
    assert!(child.join().unwrap().success());
}

/// A wrong key fails on both sides with `AuthenticationError`; the listener accepts the next
/// (right) client as if nothing happened.
#[test]
fn a_wrong_key_is_refused_on_both_sides_and_the_listener_goes_on() {
    let dir = Scratch::new("wrong-key");
    let listener = Listener::bind(dir.socket(), Some(KEY)).unwrap();
    let path = dir.socket();
    let wrong = greenrt::spawn(move || connect(&path, Some(b"guess")).map(|_| ()));
    let err = listener.accept().unwrap_err();
    assert!(is_auth_error(&err), "server side: {err:?}");
    let err = wrong.join().unwrap().unwrap_err();
    assert!(is_auth_error(&err), "client side: {err:?}");

    let path = dir.socket();
    let right = greenrt::spawn(move || connect(&path, Some(KEY)).unwrap().send(&7u8).unwrap());
    let conn = listener.accept().unwrap();
    assert_eq!(conn.recv::<u8>().unwrap(), 7);
    right.join().unwrap();
}

/// A client must also be sure of the server: a listener with another key is refused by it.
#[test]
fn a_client_refuses_a_server_with_another_key() {
    let dir = Scratch::new("server-key");
    let listener = Listener::bind(dir.socket(), Some(b"the server's key")).unwrap();
    let path = dir.socket();
    let client = greenrt::spawn(move || connect(&path, Some(KEY)).map(|_| ()));
    assert!(is_auth_error(&listener.accept().unwrap_err()));
    assert!(is_auth_error(&client.join().unwrap().unwrap_err()));
}

/// A client that connects and says nothing cannot hold `accept`: the handshake times out.
/// A client that sends junk, or a huge length, is refused at once.
#[test]
fn silent_junk_and_oversized_clients_cannot_hold_accept() {
    let dir = Scratch::new("hostile");
    let listener = Listener::bind(dir.socket(), Some(KEY))
        .unwrap()
        .with_handshake_timeout(Duration::from_millis(200));
    let _silent = std::os::unix::net::UnixStream::connect(dir.socket()).unwrap();
    let began = Instant::now();
    let err = listener.accept().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err:?}");
    assert!(began.elapsed() >= Duration::from_millis(200));
    drop(listener);

    // The default limit (10 s): being refused well before it shows nothing waited it out.
    let listener = Listener::bind(dir.socket(), Some(KEY)).unwrap();
    let mut junk = std::os::unix::net::UnixStream::connect(dir.socket()).unwrap();
    let mut frame = 32u32.to_le_bytes().to_vec();
    frame.extend_from_slice(&[0xAB; 32]); // a wrong MAC
    junk.write_all(&frame).unwrap();
    assert!(is_auth_error(&listener.accept().unwrap_err()));

    let mut huge = std::os::unix::net::UnixStream::connect(dir.socket()).unwrap();
    huge.write_all(&u32::MAX.to_le_bytes()).unwrap();
    let began = Instant::now();
    let err = listener.accept().unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::InvalidData,
        "a 4 GiB frame before the handshake: {err:?}"
    );
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "it waited for the frame"
    );
}

#[test]
fn accept_parks_only_the_green_thread() {
    let dir = Scratch::new("green");
    let listener = Listener::bind(dir.socket(), Some(KEY)).unwrap();
    let ticks = Rc::new(Cell::new(0));
    let t = ticks.clone();
    let path = dir.socket();
    let client = greenrt::spawn(move || {
        for _ in 0..5 {
            greenrt::sleep(Duration::from_millis(5));
            t.set(t.get() + 1);
        }
        connect(&path, Some(KEY)).unwrap()
    });
    let conn = listener.accept().unwrap();
    assert_eq!(ticks.get(), 5, "accept blocked the hub");
    let client_end = client.join().unwrap();
    client_end.send(&"ok").unwrap();
    assert_eq!(conn.recv::<String>().unwrap(), "ok");
}

#[test]
fn the_socket_file_is_removed_on_drop_and_a_taken_path_is_refused() {
    let dir = Scratch::new("file");
    let listener = Listener::bind(dir.socket(), None).unwrap();
    assert!(dir.socket().exists());
    let err = Listener::bind(dir.socket(), None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    drop(listener);
    assert!(
        !dir.socket().exists(),
        "drop did not remove the socket file"
    );
    assert_eq!(
        connect(dir.socket(), None).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}
