//! Python's exit rules for child processes: when a process ends, it waits for its
//! non-daemonic children, and terminates (SIGTERM) and then waits for its daemonic ones.
//!
//! ```text
//!   spawn ──> track(pidfd dup, daemon?) ──> CHILDREN (per process)
//!   exit (atexit), or the end of a child's function (it ends with _exit)
//!       └─> daemons: SIGTERM ──> everyone: wait until ended (poll the pidfd)
//! ```
//!
//! Without it a parent returned from `main` and the kernel left its children running as
//! orphans (the course notes' `wahaha` program printed 2 s after its parent had exited). A
//! child spawned with `Builder::detached(true)` is not tracked: it may outlive its parent.
//! Each tracked child costs one fd (a dup of its pidfd) until it ends; ended ones are pruned
//! whenever the list has doubled since the last pruning.

use std::os::fd::OwnedFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::sys::per_process::PerProcess;
use crate::sys::process as sys;

struct Child {
    pidfd: OwnedFd,
    pid: u32,
    daemon: bool,
}

struct Children {
    list: Vec<Child>,
    /// Prune the ended ones when the list reaches this length.
    prune_at: usize,
}

static CHILDREN: PerProcess<Mutex<Children>> = PerProcess::new();

fn children() -> &'static Mutex<Children> {
    CHILDREN.get(|| {
        Mutex::new(Children {
            list: Vec::new(),
            prune_at: 16,
        })
    })
}

/// Tracks a new child for the exit rules.
pub(super) fn track(pidfd: &OwnedFd, pid: u32, daemon: bool) {
    static HOOKED: AtomicBool = AtomicBool::new(false);
    if !HOOKED.swap(true, Ordering::AcqRel) {
        crate::sys::shm::at_exit(apply_at_exit);
    }
    let Ok(pidfd) = pidfd.try_clone() else {
        return; // out of fds: this child is not waited for at exit
    };
    let mut children = children().lock().unwrap_or_else(|e| e.into_inner());
    children.list.push(Child { pidfd, pid, daemon });
    if children.list.len() >= children.prune_at {
        children.list.retain(|c| !sys::has_ended(&c.pidfd));
        children.prune_at = (children.list.len() * 2).max(16);
    }
}

/// The pids of the tracked children that have not ended, in spawn order; the ended ones are
/// dropped from the list (Python's `active_children` joins them the same way).
pub(super) fn active() -> Vec<u32> {
    let mut children = children().lock().unwrap_or_else(|e| e.into_inner());
    children.list.retain(|c| !sys::has_ended(&c.pidfd));
    children.list.iter().map(|c| c.pid).collect()
}

extern "C" fn apply_at_exit() {
    apply();
}

/// Applies the rules now: terminates the daemonic children, then waits for every child.
pub(super) fn apply() {
    // try_lock: never block at exit on a lock another thread holds (or died holding).
    let Ok(mut children) = children().try_lock() else {
        return;
    };
    let list = std::mem::take(&mut children.list);
    drop(children);
    for child in list.iter().filter(|c| c.daemon) {
        let _ = sys::pidfd_send_signal(&child.pidfd, sys::SIGTERM);
    }
    for child in &list {
        while !sys::has_ended(&child.pidfd) {
            let _ = crate::sys::poll::wait_fd(
                std::os::fd::AsRawFd::as_raw_fd(&child.pidfd),
                false,
                None,
            );
        }
    }
}
