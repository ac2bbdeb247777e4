//! [`wait_ready`]: wait for whichever of several pipe ends, processes or fds is ready first
//! (Python's `multiprocessing.connection.wait`), and what *ready* means for the ipc and
//! process types.
//!
//! It is [`greenrt::wait`](crate::wait) for the first ready object, returning every object
//! ready at that moment, as Python does. Each object here names an fd that becomes readable
//! when it is ready — a pipe end's socket, a process's pidfd (readable once the process has
//! ended), any fd — and a pipe end may also know it is ready without asking the kernel (a
//! message already read ahead).

use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use super::Connection;
use crate::process::Process;
use crate::{Waitable, Watcher, Watching};

/// A pipe end is ready when a message — or the end of the stream — can be received without
/// waiting.
impl Waitable for Connection {
    fn is_ready(&self) -> bool {
        self.poll(Some(Duration::ZERO)).unwrap_or(true) // broken: `recv` says why
    }

    fn watch<'a>(&'a self, _: &Watcher) -> Watching<'a> {
        Watching::fd(self.as_raw_fd())
    }
}

/// A process is ready once it has ended (its [`sentinel`](Process::sentinel) is readable).
impl Waitable for Process {
    fn is_ready(&self) -> bool {
        crate::wait::fd_is_readable(self.sentinel().as_raw_fd())
    }

    fn watch<'a>(&'a self, _: &Watcher) -> Watching<'a> {
        Watching::fd(self.sentinel().as_raw_fd())
    }
}

/// Any fd: ready when readable (a socket with data or a connection to accept, a process's
/// sentinel, an eventfd...).
impl Waitable for BorrowedFd<'_> {
    fn is_ready(&self) -> bool {
        crate::wait::fd_is_readable(self.as_raw_fd())
    }

    fn watch<'a>(&'a self, _: &Watcher) -> Watching<'a> {
        Watching::fd(self.as_raw_fd())
    }
}

/// Waits until at least one of `objects` is ready, or `timeout` passes (`None`: as long as it
/// takes), and returns the indices of all that are ready then — empty on a timeout (Python's
/// `multiprocessing.connection.wait`). Parks only the calling green thread. With no objects
/// it just waits out the timeout. Any [`Waitable`] will do: pipe ends, processes, fds, and
/// the green objects too.
///
/// ```
/// use std::time::Duration;
/// use greenrt::ipc::{pipe, wait_ready};
/// use greenrt::process::Process;
///
/// let (quiet, _quiet_peer) = pipe()?;
/// let (news, news_peer) = pipe()?;
/// let child = Process::spawn(move || news_peer.send("done").unwrap())?;
/// let ready = wait_ready(&[&quiet, &news], Some(Duration::from_secs(10)));
/// assert_eq!(ready, [1]);
/// assert_eq!(news.recv::<String>()?, "done");
/// assert_eq!(wait_ready(&[&child], Some(Duration::from_secs(10))), [0]); // it has ended
/// child.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn wait_ready(objects: &[&dyn Waitable], timeout: Option<Duration>) -> Vec<usize> {
    if objects.is_empty() {
        crate::sleep(timeout.unwrap_or(Duration::MAX)); // Python: select() on nothing
        return Vec::new();
    }
    crate::wait(objects, Some(1), timeout)
}
