//! [`parent_process`]: the process that spawned this one, as a handle to watch (Python's
//! `multiprocessing.parent_process()`).
//!
//! A child cannot reap its parent, but it can know when the parent ends: a pidfd of the
//! parent becomes readable then. The pid alone is not enough — once the parent has ended
//! its pid may be reused — so the handle is made race-free:
//!
//! ```text
//!   pid = the parent's pid, recorded by `Builder::spawn` before the fork
//!   fd  = pidfd_open(pid)
//!   getppid() == pid ?  yes: the parent was alive after fd was opened, so fd is the parent
//!                       no:  we were reparented: the parent has ended (fd, if any, is
//!                            someone else) -> a handle with no fd
//! ```
//!
//! Whether the parent is alive is simply `getppid() == pid`: a child is reparented the
//! moment its parent ends, so that test is exact without any fd.

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::sys;

/// The pid of the process whose `Builder::spawn` forked this one; 0 in a process greenrt
/// did not spawn.
static SPAWNED_BY: AtomicU32 = AtomicU32::new(0);

/// Records, in a new child, who spawned it.
pub(super) fn set_spawned_by(parent: u32) {
    SPAWNED_BY.store(parent, Ordering::Relaxed);
}

/// The process that spawned this one with [`Builder::spawn`](super::Builder::spawn)
/// (Python's `parent_process()`); `None` in a process greenrt did not spawn (the main
/// process). The handle is valid even after the parent has ended: it then says so.
///
/// ```
/// use greenrt::process::{Process, current_pid, parent_process};
/// assert!(parent_process().is_none()); // the main process
/// let me = current_pid();
/// let child = Process::spawn(move || {
///     let parent = parent_process().expect("spawned by greenrt");
///     assert_eq!(parent.pid(), me);
///     assert!(parent.is_alive());
/// })?;
/// assert!(child.join()?.success());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn parent_process() -> Option<ParentProcess> {
    let pid = SPAWNED_BY.load(Ordering::Relaxed);
    if pid == 0 {
        return None;
    }
    let pidfd = sys::pidfd_open(pid as sys::Pid).ok();
    let still_ours = sys::parent_pid() as u32 == pid;
    Some(ParentProcess {
        pid,
        pidfd: pidfd.filter(|_| still_ours),
    })
}

/// A handle on the parent process; see [`parent_process`].
pub struct ParentProcess {
    pid: u32,
    /// `None` if the parent had already ended when the handle was made.
    pidfd: Option<OwnedFd>,
}

impl ParentProcess {
    /// The parent's pid (as it was; once the parent has ended, the number may be reused).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the parent still runs (this process has not been reparented).
    pub fn is_alive(&self) -> bool {
        sys::parent_pid() as u32 == self.pid
    }

    /// An fd that is readable once the parent has ended (Python's `sentinel`); `None` if it
    /// had already ended when this handle was made (or no fd could be opened then: out of
    /// descriptors).
    pub fn sentinel(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(AsFd::as_fd)
    }

    /// Waits until the parent has ended, at most `timeout` (`None`: as long as it takes);
    /// true if it has. Parks only the calling green thread.
    pub fn join_timeout(&self, timeout: Option<Duration>) -> bool {
        match self.sentinel() {
            Some(fd) => !crate::wait(&[&fd], Some(1), timeout).is_empty(),
            None => self.poll_until_ended(timeout),
        }
    }

    /// Without a sentinel (no fd could be opened): look every 10 ms.
    fn poll_until_ended(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.and_then(crate::time::deadline_in);
        while self.is_alive() {
            if deadline.is_some_and(|at| std::time::Instant::now() >= at) {
                return false;
            }
            crate::sleep(Duration::from_millis(10));
        }
        true
    }
}

/// Ready once the parent has ended. A handle without a sentinel (see
/// [`sentinel`](ParentProcess::sentinel)) cannot wake a `wait`: use `join_timeout`.
impl crate::Waitable for ParentProcess {
    fn is_ready(&self) -> bool {
        !self.is_alive()
    }

    fn watch<'a>(&'a self, _: &crate::Watcher) -> crate::Watching<'a> {
        match &self.pidfd {
            Some(fd) => crate::Watching::fd(fd.as_raw_fd()),
            None => crate::Watching::none(),
        }
    }
}

impl fmt::Debug for ParentProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParentProcess")
            .field("pid", &self.pid)
            .field("alive", &self.is_alive())
            .finish()
    }
}
