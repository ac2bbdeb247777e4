//! The reaper: a thread that waits for children whose `Process` was dropped while they ran,
//! and reaps them, so no zombie is left. Started on first use; it polls the pidfds it holds.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::sys::per_process::PerProcess;

/// The pidfds to reap, per process: a forked child gets its own list (and thread) rather than
/// a copy of the parent's, whose lock may have been held at the fork.
static ORPHANS: PerProcess<Mutex<Vec<OwnedFd>>> = PerProcess::new();

/// Hands a running child's pidfd to the reaper.
pub(super) fn adopt(pidfd: OwnedFd) {
    let mut started = false;
    let orphans = ORPHANS.get(|| {
        started = true;
        Mutex::new(Vec::new())
    });
    orphans
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(pidfd);
    if started {
        let _ = std::thread::Builder::new()
            .name("greenrt-reaper".into())
            .spawn(move || reap_forever(orphans));
    }
}

fn reap_forever(orphans: &'static Mutex<Vec<OwnedFd>>) {
    loop {
        orphans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|fd| {
                crate::sys::process::try_reap(fd)
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock)
            });
        let next = orphans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .first()
            .map(|fd| fd.as_raw_fd());
        match next {
            // Wait until the first orphan ends (or 100 ms, to notice new ones and the others).
            Some(fd) => {
                let deadline = std::time::Instant::now() + Duration::from_millis(100);
                let _ = crate::sys::poll::wait_fd(fd, false, Some(deadline));
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
