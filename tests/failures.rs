//! What users see when things go wrong: stack overflow, deadlock, misuse.

mod util;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::Command;
use std::time::Duration;

use greenrt::spawn;

const CHILD_ENV: &str = "GREENRT_TEST_CHILD";

/// Runs one test of this binary in a child process with CHILD_ENV set to `role`.
fn run_child(test: &str, role: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, role)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

/// Parks with no Unparker alive: nothing can ever wake this green thread.
fn park_forever() {
    loop {
        greenrt::hub::park();
    }
}

#[inline(never)]
fn recurse(n: u64) -> u64 {
    let pad = std::hint::black_box([n as u8; 256]);
    if n == 0 {
        0
    } else {
        recurse(n - 1) + pad[1] as u64
    }
}

#[test]
fn stack_overflow_is_reported_by_name_and_aborts() {
    if std::env::var(CHILD_ENV).as_deref() == Ok("overflow") {
        let h = greenrt::Builder::new()
            .name("deep".into())
            .stack_size(64 * 1024)
            .spawn(|| recurse(u64::MAX))
            .unwrap();
        let _ = h.join();
        unreachable!("the overflow aborts the process");
    }
    let out = run_child("stack_overflow_is_reported_by_name_and_aborts", "overflow");
    let stderr = String::from_utf8_lossy(&out.stderr);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "stderr: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("has overflowed its stack"))
        .expect(&stderr);
    assert!(line.starts_with("green thread 'deep' (id "), "got: {line}");
    assert!(line.ends_with(") has overflowed its stack"), "got: {line}");
}

/// Runs `role` in a child and checks it aborted with a coroutine overflow report naming `kind`.
fn assert_coroutine_overflow_report(test: &str, role: &str, kind: &str) -> String {
    let out = run_child(test, role);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "stderr: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("has overflowed its stack"))
        .unwrap_or_else(|| panic!("no report: {stderr}"))
        .to_string();
    assert!(
        line.starts_with(&format!("greenrt: a {kind} has overflowed its stack")),
        "got: {line}"
    );
    line
}

#[test]
fn a_generator_or_greenlet_overflow_is_reported_and_aborts() {
    let test = "a_generator_or_greenlet_overflow_is_reported_and_aborts";
    match std::env::var(CHILD_ENV).as_deref() {
        Ok("generator") => {
            let mut g = greenrt::coro::Generator::<u64>::new(|_, ()| {
                recurse(u64::MAX);
            });
            let _ = g.next();
            unreachable!("the overflow aborts the process");
        }
        Ok("greenlet") => {
            let g = greenrt::coro::Greenlet::new(|n: u64| recurse(n));
            g.switch(u64::MAX);
            unreachable!("the overflow aborts the process");
        }
        Ok("generator-in-green") => {
            let h = greenrt::Builder::new()
                .name("host".into())
                .spawn(|| {
                    let mut g = greenrt::coro::Generator::<u64>::new(|_, ()| {
                        recurse(u64::MAX);
                    });
                    g.next()
                })
                .unwrap();
            let _ = h.join();
            unreachable!("the overflow aborts the process");
        }
        _ => {}
    }
    assert_coroutine_overflow_report(test, "generator", "Generator");
    assert_coroutine_overflow_report(test, "greenlet", "Greenlet");
    let line = assert_coroutine_overflow_report(test, "generator-in-green", "Generator");
    assert!(
        line.contains("(inside green thread 'host', id "),
        "got: {line}"
    );
}

#[test]
fn a_named_object_truncated_while_mapped_is_reported_by_name() {
    let name = format!("truncated-{}", std::process::id());
    if std::env::var(CHILD_ENV).as_deref() == Ok("truncate") {
        let name = std::env::var("GREENRT_TEST_NAME").unwrap();
        let q = greenrt::ipc::Queue::<u64>::create(&name, 4096).unwrap();
        // Another process (here: us, through the file) shrinks it to nothing.
        std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/dev/shm/greenrt.{name}"))
            .unwrap()
            .set_len(0)
            .unwrap();
        let _ = q.try_put(&1); // touches the lost pages
        unreachable!("the fault aborts the process");
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_named_object_truncated_while_mapped_is_reported_by_name",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "truncate")
        .env("GREENRT_TEST_NAME", &name)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(format!("/dev/shm/greenrt.{name}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!(
            "greenrt: the shared object /dev/shm/greenrt.{name} was truncated by another process"
        )),
        "stderr: {stderr}"
    );
}

#[test]
fn overflow_of_the_main_thread_stack_is_still_std_s_report() {
    if std::env::var(CHILD_ENV).as_deref() == Ok("main-overflow") {
        greenrt::sleep(Duration::ZERO); // make a hub, so our handler is installed
        std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(|| recurse(u64::MAX))
            .unwrap()
            .join()
            .ok();
        unreachable!();
    }
    let out = run_child(
        "overflow_of_the_main_thread_stack_is_still_std_s_report",
        "main-overflow",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("has overflowed its stack"),
        "std's handler still reports: {stderr}"
    );
    assert!(
        !stderr.contains("green thread"),
        "not a green thread: {stderr}"
    );
}

#[test]
fn deadlock_is_reported_instead_of_hanging() {
    // Run on its own OS thread: the deadlocked green threads are leaked with its hub.
    let message = std::thread::spawn(|| {
        let stuck = greenrt::Builder::new()
            .name("waits-forever".into())
            .spawn(park_forever)
            .unwrap();
        let id = stuck.id();
        let caught =
            catch_unwind(AssertUnwindSafe(|| stuck.join())).expect_err("join must not hang");
        (id, caught.downcast_ref::<String>().cloned().unwrap())
    })
    .join()
    .unwrap();
    let (id, message) = message;
    assert!(
        message.starts_with("greenrt: deadlock: the main context waits on join of green thread"),
        "{message}"
    );
    assert!(message.contains("blocked green threads (1):"), "{message}");
    assert!(
        message.contains(&format!(
            "green thread 'waits-forever' (id {id}), spawned at tests/failures.rs"
        )),
        "{message}"
    );
}

#[test]
fn two_green_threads_joining_each_other_are_a_deadlock() {
    use std::cell::RefCell;
    use std::rc::Rc;
    let message = std::thread::spawn(|| {
        let other: Rc<RefCell<Option<greenrt::JoinHandle<()>>>> = Rc::default();
        let o = other.clone();
        let a = spawn(move || {
            greenrt::yield_now();
            let b = o.borrow_mut().take().unwrap();
            let _ = b.join();
        });
        let a_id = a.id();
        let holder: Rc<RefCell<Option<greenrt::JoinHandle<()>>>> = Rc::new(RefCell::new(Some(a)));
        let h = holder.clone();
        let b = spawn(move || {
            greenrt::yield_now();
            let a = h.borrow_mut().take().unwrap();
            let _ = a.join();
        });
        *other.borrow_mut() = Some(b);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            greenrt::sleep(Duration::from_millis(5))
        }));
        assert!(
            caught.is_ok(),
            "main's sleep has a timer, so it returns normally"
        );
        let probe = spawn(|| ());
        probe.join().unwrap();
        // Now main waits on something that will never come: report.
        let stuck = spawn(park_forever);
        let caught = catch_unwind(AssertUnwindSafe(|| stuck.join())).expect_err("deadlock");
        (a_id, caught.downcast_ref::<String>().cloned().unwrap())
    })
    .join()
    .unwrap();
    let (a_id, message) = message;
    assert!(message.contains("blocked green threads (3):"), "{message}");
    assert!(message.contains(&format!("(id {a_id})")), "{message}");
    assert!(
        message.contains("waits on join of green thread"),
        "{message}"
    );
}

#[test]
fn a_live_unparker_prevents_a_false_deadlock_report() {
    let waiter = spawn(|| {
        let unparker = greenrt::hub::unparker();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            unparker.unpark();
        });
        greenrt::hub::park();
        "woken"
    });
    assert_eq!(waiter.join().unwrap(), "woken");
}

/// The hub tells a deadlock from a wait for I/O by counting green threads parked on fds. A
/// socket reader woken by data and one killed while parked on a socket that then stays quiet
/// must each leave that count: a count left behind would turn the deadlock that follows into
/// a hang (the hub would block in `epoll_wait` for an event no one waits for).
#[test]
fn socket_readers_woken_or_killed_leave_the_io_count_and_a_later_deadlock_is_reported() {
    use std::io::{Read, Write};
    use std::rc::Rc;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let listener = greenrt::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spawn(move || {
            let (mut talks, _) = listener.accept().unwrap();
            let (quiet, _) = listener.accept().unwrap();
            greenrt::sleep(Duration::from_millis(20));
            talks.write_all(b"x").unwrap();
            (talks, quiet) // kept open: no end-of-stream events afterwards
        });
        // The readers share their streams with this context, which keeps them open: a
        // dropped socket would clean its waiter list whatever its waiters did.
        let reader = |stream: &Rc<greenrt::net::TcpStream>| {
            let stream = stream.clone();
            spawn(move || (&*stream).read(&mut [0; 1]))
        };
        let talks = Rc::new(greenrt::net::TcpStream::connect(addr).unwrap());
        let quiet = Rc::new(greenrt::net::TcpStream::connect(addr).unwrap());
        let woken = reader(&talks);
        let killed = reader(&quiet);
        greenrt::sleep(Duration::from_millis(5)); // both parked on their sockets
        killed.kill();
        assert!(killed.join().unwrap_err().is_killed());
        assert_eq!(woken.join().unwrap().unwrap(), 1);
        let _conns = server.join().unwrap();
        let stuck = spawn(park_forever);
        let caught = catch_unwind(AssertUnwindSafe(|| stuck.join())).expect_err("deadlock");
        let _ = tx.send(caught.downcast_ref::<String>().cloned().unwrap());
    });
    let message = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("no deadlock report within 20 s: a parked-on-fd count was left behind");
    assert!(message.starts_with("greenrt: deadlock:"), "{message}");
}
