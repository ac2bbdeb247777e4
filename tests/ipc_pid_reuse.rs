//! A lock holder is SIGKILLed and its pid handed to an unrelated long-lived process before
//! anyone looks: the next acquirer must still be told `OwnerDied`, not wait for the impostor.
//! The pid is reused on purpose through `/proc/sys/kernel/ns_last_pid` (root only; otherwise
//! the test says why it skips).

use std::time::{Duration, Instant};

use greenrt::ipc::{Lock, LockError};
use greenrt::process::Process;

/// Starts `sleep 30` as the next process to get `pid`, if the kernel can be made to; None when
/// another process took that pid first every time.
fn impostor_with_pid(pid: u32) -> Option<std::process::Child> {
    for _ in 0..50 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", format!("{}", pid - 1)).ok()?;
        let mut child = std::process::Command::new("sleep").arg("30").spawn().ok()?;
        if child.id() == pid {
            return Some(child);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    None
}

#[test]
fn a_reused_pid_does_not_pass_for_the_dead_holder() {
    // SAFETY (test): geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0
        || std::fs::OpenOptions::new()
            .write(true)
            .open("/proc/sys/kernel/ns_last_pid")
            .is_err()
    {
        eprintln!("skipped: reusing a pid on purpose needs root and a writable ns_last_pid");
        return;
    }
    let lock = Lock::new().unwrap();
    let holder = Process::spawn({
        let lock = lock.clone();
        move || {
            std::mem::forget(lock.lock());
            std::thread::sleep(Duration::from_secs(60));
        }
    })
    .unwrap();
    let pid = holder.pid();
    let t0 = Instant::now();
    while lock.holder() != Some(pid) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the holder never took the lock"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // Start times are kept in clock ticks (10 ms): a holder and an impostor started in the
    // same tick cannot be told apart (see NOTES). A real holder holds for a while; this one
    // too, before it dies.
    std::thread::sleep(Duration::from_millis(30));
    holder.kill().unwrap();
    holder.join().unwrap(); // reaped: its pid is free for the taking
    let Some(mut impostor) = impostor_with_pid(pid) else {
        eprintln!("skipped: could not get pid {pid} handed to a new process (a busy machine)");
        return;
    };
    assert_eq!(
        lock.holder(),
        Some(pid),
        "the word still names the dead holder's pid"
    );
    let t0 = Instant::now();
    let got = lock.lock_timeout(Duration::from_secs(3));
    let took = t0.elapsed();
    let _ = impostor.kill();
    let _ = impostor.wait();
    assert!(
        matches!(got, Err(LockError::OwnerDied(_))),
        "the impostor with pid {pid} was taken for the holder: {got:?} after {took:?}"
    );
    assert!(took < Duration::from_secs(1), "{took:?}");
}
