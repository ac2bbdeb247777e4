//! The reaper: a thread that waits for children whose `Process` was dropped while they ran,
//! and reaps them, so no zombie is left. Started on first use; it polls the pidfds it holds.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

static ORPHANS: Mutex<Vec<OwnedFd>> = Mutex::new(Vec::new());
static STARTED: OnceLock<()> = OnceLock::new();

/// Hands a running child's pidfd to the reaper.
pub(super) fn adopt(pidfd: OwnedFd) {
    ORPHANS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(pidfd);
    STARTED.get_or_init(|| {
        let _ = std::thread::Builder::new()
            .name("greenrt-reaper".into())
            .spawn(reap_forever);
    });
}

fn reap_forever() {
    loop {
        ORPHANS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|fd| {
                crate::sys::process::try_reap(fd)
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock)
            });
        let next = ORPHANS
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
