//! What the hub costs while it idles: with a green thread on a sync primitive (which another
//! OS thread might release) and another waiting for a socket, every idle turn used to read
//! `/proc/self/stat` to count the process's threads — several `read` calls per wake-up. The
//! thread count matters only when nothing else can wake the hub; an awaited socket can.
//! One test in this file: the process's read-call count must not include other tests'.

use std::io::{Read, Write};
use std::rc::Rc;
use std::time::Duration;

use greenrt::net::TcpListener;
use greenrt::spawn;

/// `syscr` of /proc/self/io: read-family system calls made by this process so far.
fn read_calls() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").expect("/proc/self/io");
    io.lines()
        .find_map(|l| l.strip_prefix("syscr: "))
        .and_then(|n| n.trim().parse().ok())
        .expect("a syscr line")
}

#[test]
fn an_idle_hub_with_an_awaited_socket_does_not_read_proc_at_every_wake_up() {
    const BYTES: u64 = 200;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Another OS thread sends one byte at a time, 1 ms apart: every byte wakes an idle hub.
    let writer = std::thread::spawn(move || {
        let mut conn = std::net::TcpStream::connect(addr).unwrap();
        for _ in 0..BYTES {
            conn.write_all(b"x").unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let (mut conn, _) = listener.accept().unwrap();
    // A sync waiter that another OS thread could in principle release: the deadlock check
    // then needs the thread count, unless something cheaper says the hub can be woken.
    let never = Rc::new(greenrt::sync::Event::new());
    let waiter = spawn({
        let never = never.clone();
        move || never.wait()
    });
    greenrt::yield_now(); // the waiter parks on the event
    let before = read_calls();
    let reader = spawn(move || {
        let mut byte = [0u8; 1];
        for _ in 0..BYTES {
            conn.read_exact(&mut byte).unwrap();
        }
    });
    reader.join().unwrap();
    let reads = read_calls() - before;
    never.set();
    waiter.join().unwrap();
    writer.join().unwrap();
    // Green sockets receive with recv(2), which `syscr` does not count, so what is left is
    // the process's own file reads (a handful). Reading /proc/self/stat at each idle turn
    // adds several per wake-up: 1,210 for these 200 bytes before the fix.
    assert!(
        reads < BYTES / 2,
        "{reads} read calls for {BYTES} bytes: the idle hub reads /proc at every wake-up"
    );
}
