//! A forked child knows its own pid in shared memory, even when the parent's first ipc call
//! (the one that caches the pid) comes while a `fork` is under way.
//!
//! ipc records who holds a lock, or who waits at a barrier, by pid, from a per-process cache
//! that every fork clears in the child (a `pthread_atfork` child handler). glibc's `fork` lets
//! go of its handler list while it runs each *prepare* handler, and a handler registered in
//! that window is not run for that fork. When the cache registered its handler lazily, at the
//! first call, a first call made in that window left the parent's pid cached in the child —
//! seen in CI as a barrier party SIGKILLed while waiting whose death nobody noticed: its slot
//! named its (living) parent.
//!
//! The window is a few microseconds between two threads; this test makes it certain: its own
//! prepare handler makes the process's first ipc call, inside the fork. It needs a process
//! that has made no ipc call yet, so it runs its body in a fresh copy of this test binary.

use std::process::Command;
use std::sync::OnceLock;

use greenrt::ipc::Lock;
use greenrt::process::Process;

const FRESH: &str = "GREENRT_TEST_FORK_PID_FRESH";

static LOCK: OnceLock<Lock> = OnceLock::new();

/// A prepare handler: the process's first use of an ipc lock, while glibc's `fork` runs.
extern "C" fn first_ipc_call_inside_fork() {
    if let Some(lock) = LOCK.get() {
        drop(lock.lock().expect("a free lock"));
    }
}

/// The body, in a process that has made no ipc call before it.
fn child_inherits_no_stale_pid() {
    LOCK.set(Lock::new().unwrap()).ok().unwrap();
    // SAFETY: registers a plain function; it runs in the forking thread before each fork,
    // where taking and letting go of a free ipc lock is safe (no other lock is held).
    unsafe { libc::pthread_atfork(Some(first_ipc_call_inside_fork), None, None) };
    let child = Process::spawn(|| {
        let lock = LOCK.get().unwrap();
        let _held = lock.lock().unwrap();
        assert_eq!(
            lock.holder(),
            Some(std::process::id()),
            "the child took the lock under another pid (its parent is {})",
            std::os::unix::process::parent_id()
        );
    })
    .unwrap();
    assert!(
        child.join().unwrap().success(),
        "the child recorded a pid not its own"
    );
    // And the parent still holds under its own pid.
    let lock = LOCK.get().unwrap();
    let _held = lock.lock().unwrap();
    assert_eq!(lock.holder(), Some(std::process::id()));
}

#[test]
fn a_child_forked_during_the_first_ipc_call_holds_locks_under_its_own_pid() {
    if std::env::var_os(FRESH).is_some() {
        child_inherits_no_stale_pid();
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_child_forked_during_the_first_ipc_call_holds_locks_under_its_own_pid",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(FRESH, "1")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the fresh process failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "the fresh process ran no test:\n{text}"
    );
}
