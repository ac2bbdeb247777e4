//! Processes: exit statuses, green-only join, timeouts, signals, daemons, no zombies.

mod util;

use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use greenrt::process::{Builder, Process};

/// The tests fork; a child inherits whatever another test thread holds. Take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Running (not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

fn exists(pid: u32) -> bool {
    // A zombie still has a /proc entry; a reaped process has none.
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn smoke_spawn_and_join() {
    let _t = turn();
    let p = Process::spawn(|| ()).unwrap();
    assert!(p.join().unwrap().success());
    assert_eq!(p.exit_code(), Some(0));
    assert!(!exists(p.pid()), "reaped");
}

#[test]
fn exit_codes_panics_and_signals() {
    let _t = turn();
    let code = Process::spawn(|| std::process::exit(3)).unwrap();
    assert_eq!(code.join().unwrap().code(), Some(3));
    let panicked = Process::spawn(|| panic!("child panics")).unwrap();
    assert_eq!(panicked.join().unwrap().code(), Some(1));
    let sleeper = Process::spawn(|| std::thread::sleep(Duration::from_secs(60))).unwrap();
    assert!(sleeper.is_alive());
    sleeper.terminate().unwrap();
    assert_eq!(sleeper.join().unwrap().signal(), Some(libc::SIGTERM));
    assert!(!sleeper.is_alive());
    let stubborn = Process::spawn(|| std::thread::sleep(Duration::from_secs(60))).unwrap();
    stubborn.kill().unwrap();
    assert_eq!(stubborn.join().unwrap().signal(), Some(libc::SIGKILL));
    stubborn.kill().unwrap(); // a reaped child: nothing to signal, not an error
}

#[test]
fn join_from_a_green_thread_parks_only_it() {
    let _t = turn();
    let child = Process::spawn(|| std::thread::sleep(Duration::from_millis(80))).unwrap();
    let ticker = util::Ticker::start(5, Duration::from_millis(5));
    let joiner = greenrt::spawn(move || child.join().unwrap().success());
    assert!(joiner.join().unwrap());
    assert_eq!(ticker.finish(), 5);
}

#[test]
fn join_timeout_returns_none_while_running() {
    let _t = turn();
    let child = Process::spawn(|| std::thread::sleep(Duration::from_millis(300))).unwrap();
    let start = Instant::now();
    assert_eq!(child.join_timeout(Duration::from_millis(30)).unwrap(), None);
    assert!(start.elapsed() >= Duration::from_millis(30));
    assert!(
        child
            .join_timeout(Duration::from_secs(10))
            .unwrap()
            .is_some()
    );
}

#[test]
fn a_dropped_running_child_is_reaped_not_left_a_zombie() {
    let _t = turn();
    let child = Process::spawn(|| std::thread::sleep(Duration::from_millis(50))).unwrap();
    let pid = child.pid();
    drop(child);
    let deadline = Instant::now() + Duration::from_secs(5);
    while exists(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!exists(pid), "the reaper reaped it");
}

#[test]
fn a_daemon_dies_with_its_parent_even_on_sigkill_and_cannot_have_children() {
    let _t = turn();
    let mut fds = [0; 2];
    // SAFETY: pipe writes two fds into the array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: each fd is owned once from here on.
    let (mut reader, writer) = unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    };
    let middle = Process::spawn(move || {
        let mut w = &writer;
        let daemon = Builder::new()
            .daemon(true)
            .spawn(|| {
                let refused = Process::spawn(|| ()).unwrap_err().kind()
                    == std::io::ErrorKind::PermissionDenied;
                if refused {
                    std::thread::sleep(Duration::from_secs(60));
                }
            })
            .unwrap();
        writeln!(w, "{}", daemon.pid()).unwrap();
        std::thread::sleep(Duration::from_secs(60)); // killed before this ends
    })
    .unwrap();
    let mut line = String::new();
    let mut byte = [0; 1];
    while reader.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        line.push(byte[0] as char);
    }
    let daemon_pid: u32 = line.trim().parse().unwrap();
    std::thread::sleep(Duration::from_millis(100)); // the daemon tried to spawn and was refused
    assert!(
        alive(daemon_pid),
        "the daemon runs while its parent does (it was refused a child and sleeps)"
    );
    middle.kill().unwrap(); // SIGKILL the parent of the daemon
    middle.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    // The daemon's parent is gone; it is reparented and reaped by init (or a subreaper).
    while alive(daemon_pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!alive(daemon_pid), "the daemon died with its parent");
}

#[test]
fn fork_from_a_green_thread_while_others_run() {
    let _t = turn();
    let ticker = util::Ticker::start(10, Duration::from_millis(3));
    let forker = greenrt::spawn(|| {
        // The child starts on this green thread's stack, gets a fresh hub, and runs green
        // threads of its own; the parent's green threads are not carried over.
        let child = Process::spawn(|| {
            let hs: Vec<_> = (0..10).map(|i| greenrt::spawn(move || i)).collect();
            let sum: i32 = greenrt::joinall(hs).into_iter().map(Result::unwrap).sum();
            assert_eq!(greenrt::hub::stats().alive, 0);
            std::process::exit(if sum == 45 { 0 } else { 9 });
        })
        .unwrap();
        child.join().unwrap().code()
    });
    assert_eq!(forker.join().unwrap(), Some(0));
    assert_eq!(ticker.finish(), 10);
}

#[test]
fn a_child_forked_while_another_thread_holds_stdout_still_exits() {
    let _t = turn();
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    // A thread that holds stdout's lock nearly all the time, as a busy printer does.
    let printer = std::thread::spawn(move || {
        let out = std::io::stdout();
        while !s.load(Ordering::Acquire) {
            let mut held = out.lock();
            let _ = held.write_all(b"");
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_micros(200) {}
        }
    });
    std::thread::sleep(Duration::from_millis(10));
    let children: Vec<_> = (0..30)
        .map(|_| Process::spawn(|| print!("child printed without a newline")).unwrap())
        .collect();
    stop.store(true, Ordering::Release);
    printer.join().unwrap();
    for child in children {
        let status = child.join_timeout(Duration::from_secs(5)).unwrap();
        if status.is_none() {
            let _ = child.kill();
            panic!("a child forked while stdout was locked never exited");
        }
        assert!(status.unwrap().success());
    }
}

#[test]
fn a_spawn_that_fails_after_the_fork_runs_nothing_and_leaves_no_zombie() {
    let _t = turn();
    let ended = util::in_child(20, || {
        // A page shared with this process's children: set to 1 by a child that runs `f`.
        let ran = util::shared_page();
        // Fill the fd table but for two slots: room for the spawn's gate pipe, none for the
        // pidfd it needs after the fork.
        let mut held = Vec::new();
        loop {
            // SAFETY (test): dup of stderr, closed below.
            let fd = unsafe { libc::dup(2) };
            if fd < 0 {
                break;
            }
            held.push(fd);
        }
        for fd in held.drain(held.len() - 2..) {
            // SAFETY (test): ours.
            unsafe { libc::close(fd) };
        }
        let ran_addr = ran as usize;
        let spawned = Process::spawn(move || {
            // SAFETY (test): the shared page mapped above.
            unsafe { *(ran_addr as *mut u32) = 1 };
        });
        let err = spawned.expect_err("the pidfd cannot be had: spawn fails");
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
        std::thread::sleep(Duration::from_millis(200));
        // SAFETY (test): the shared page mapped above.
        assert_eq!(unsafe { *ran }, 0, "the failed spawn ran the function");
        // SAFETY (test): a non-blocking look for any child, zombie or not.
        let rc = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
        assert_eq!(rc, -1, "a child (or its zombie) was left behind");
        // With no room at all, the spawn fails before forking anything.
        for _ in 0..2 {
            // SAFETY (test): as above.
            held.push(unsafe { libc::dup(2) });
        }
        assert!(Process::spawn(|| {}).is_err());
        0
    });
    assert_eq!(ended, util::Ended::Exited(0));
}

/// `active_children` lists the running children and drops one as soon as it has ended;
/// a child's `parent_pid` is its parent's pid.
#[test]
fn active_children_and_parent_pid() {
    use greenrt::process::{Process, active_children, current_pid, parent_pid};
    let me = current_pid();
    let (tx, rx) = greenrt::ipc::pipe().unwrap();
    let long = Process::spawn(move || {
        tx.send(&parent_pid()).unwrap();
        std::thread::sleep(std::time::Duration::from_secs(30));
    })
    .unwrap();
    let short = Process::spawn(|| ()).unwrap();
    assert_eq!(rx.recv::<u32>().unwrap(), me, "the child's parent_pid");
    assert!(active_children().contains(&long.pid()));
    short.join().unwrap();
    assert!(
        !active_children().contains(&short.pid()),
        "an ended child is still listed"
    );
    // SAFETY (test): signals our own child.
    unsafe { libc::kill(long.pid() as i32, libc::SIGKILL) };
    long.join().unwrap();
    assert!(!active_children().contains(&long.pid()));
}

/// `parent_process()`: `None` in the main process; in a child, its parent, alive; in a
/// grandchild whose parent ends, a handle that sees the end (wakes `join_timeout`, says
/// not alive) — while the pid alone would not tell (it may be reused).
#[test]
fn parent_process_sees_its_parent_and_its_end() {
    use greenrt::process::{Builder, current_pid, parent_process};
    assert!(
        parent_process().is_none(),
        "the test process was not spawned by greenrt"
    );
    let (rx, tx) = greenrt::ipc::pipe_oneway().unwrap();
    let me = current_pid();
    let middle = Process::spawn(move || {
        let parent = parent_process().unwrap();
        assert_eq!((parent.pid(), parent.is_alive()), (me, true));
        let middle_pid = current_pid();
        let tx = tx; // the grandchild reports through it
        Builder::new()
            .detached(true) // the middle process ends without waiting for it
            .spawn(move || {
                let parent = parent_process().unwrap();
                assert_eq!(parent.pid(), middle_pid);
                let began = std::time::Instant::now();
                let ended = parent.join_timeout(Some(Duration::from_secs(10)));
                let waited_ms = began.elapsed().as_millis() as u64;
                tx.send(&(ended, parent.is_alive(), waited_ms)).unwrap();
            })
            .unwrap();
        std::thread::sleep(Duration::from_millis(150));
    })
    .unwrap();
    assert!(
        middle.join().unwrap().success(),
        "the middle process's checks failed"
    );
    let (ended, alive, waited_ms) = rx.recv::<(bool, bool, u64)>().unwrap();
    assert!(ended, "join_timeout did not see the parent end");
    assert!(!alive, "is_alive after the parent ended");
    assert!(
        waited_ms >= 50,
        "the parent's end was seen before it ended ({waited_ms} ms)"
    );
}
