//! `Duration::MAX` means "no deadline" everywhere a timeout is taken, as Rust users mean it:
//! no call panics with "overflow when adding duration to instant", and each one waits until
//! what it waits for happens.

use std::io::{Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

const FOREVER: Duration = Duration::MAX;

/// Runs `wait` in a green thread while another does `release` 20 ms later; returns what
/// `wait` returned and how long it took.
fn after_release<T: 'static>(
    release: impl FnOnce() + 'static,
    wait: impl FnOnce() -> T + 'static,
) -> (T, Duration) {
    let t0 = Instant::now();
    let waiter = greenrt::spawn(wait);
    let releaser = greenrt::spawn(move || {
        greenrt::sleep(Duration::from_millis(20));
        release();
    });
    let out = waiter.join().unwrap();
    releaser.join().unwrap();
    (out, t0.elapsed())
}

#[test]
fn smoke_timeout_and_sleep_take_duration_max() {
    assert_eq!(greenrt::timeout(FOREVER, || 7), Ok(7));
    let h = greenrt::spawn(|| greenrt::sleep(FOREVER));
    greenrt::sleep(Duration::from_millis(5));
    h.kill(); // it was sleeping, not panicking
    assert!(h.join().unwrap_err().is_killed());
    let later = greenrt::Builder::new().spawn_later(FOREVER, || 1).unwrap();
    later.kill();
}

#[test]
fn green_primitives_wait_forever_with_duration_max() {
    let event = Rc::new(greenrt::sync::Event::new());
    let e = event.clone();
    let e2 = event.clone();
    let (set, _) = after_release(move || e.set(), move || e2.wait_timeout(FOREVER));
    assert!(set);

    let sem = Rc::new(greenrt::sync::Semaphore::new(0));
    let (s1, s2) = (sem.clone(), sem.clone());
    let (got, _) = after_release(
        move || s1.release(),
        move || s2.acquire_timeout(FOREVER).map(|p| p.forget()).is_some(),
    );
    assert!(got);

    let queue = Rc::new(greenrt::sync::Queue::<u32>::new(1));
    let (q1, q2) = (queue.clone(), queue.clone());
    let (item, _) = after_release(move || q1.put(5).unwrap(), move || q2.get_timeout(FOREVER));
    assert_eq!(item, Ok(5));

    let mutex = Rc::new(greenrt::sync::Mutex::new(0));
    let guard = mutex.lock();
    let m = mutex.clone();
    let locked = greenrt::spawn(move || m.lock_timeout(FOREVER).map(|g| *g));
    greenrt::sleep(Duration::from_millis(10));
    drop(guard);
    assert_eq!(locked.join().unwrap(), Some(0));

    let slow = greenrt::spawn(|| {
        greenrt::sleep(Duration::from_millis(10));
        3
    });
    assert_eq!(slow.join_timeout(FOREVER).ok().map(Result::unwrap), Some(3));
}

#[test]
fn sockets_and_ipc_take_duration_max() {
    let listener = greenrt::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = greenrt::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        greenrt::sleep(Duration::from_millis(20));
        conn.write_all(b"x").unwrap();
    });
    let mut client = greenrt::net::TcpStream::connect_timeout(&addr, FOREVER).unwrap();
    client.set_read_timeout(Some(FOREVER)).unwrap();
    let mut byte = [0u8; 1];
    client.read_exact(&mut byte).unwrap();
    assert_eq!(&byte, b"x");
    server.join().unwrap();

    let lock = greenrt::ipc::Lock::new().unwrap();
    assert!(lock.lock_timeout(FOREVER).is_ok());
    let event = greenrt::ipc::Event::new().unwrap();
    event.set();
    assert!(event.wait_timeout(FOREVER));
    let queue = greenrt::ipc::Queue::<u32>::new(4096).unwrap();
    queue.put(&9).unwrap();
    assert_eq!(queue.get_timeout(FOREVER).unwrap(), 9);
}
