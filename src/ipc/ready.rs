//! [`wait_ready`]: wait for whichever of several pipe ends, processes or fds is ready first
//! (Python's `multiprocessing.connection.wait`).
//!
//! Each object names an fd that becomes readable when it is ready — a pipe end's socket, a
//! process's pidfd (readable once the process has ended), any fd — and may know it is ready
//! without asking the kernel (a pipe end with a message already read ahead). The wait is the
//! hub's own multi-fd wait, so it parks only the calling green thread:
//!
//! ```text
//!   loop:
//!     ready = objects that say ready now (read-ahead, or poll(fd, 0) readable)
//!     if ready is not empty -> return their indices
//!     park on all their fds at once (hub::io::wait_any) until one fires or the deadline
//! ```

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use super::Connection;
use crate::hub::io::{Fail, Interrupts, Stop, wait_any};
use crate::hub::reactor::Direction;
use crate::process::Process;

/// Something [`wait_ready`] can wait for: it is *ready* when its fd is readable, or when it
/// says so itself.
pub trait Waitable {
    /// The fd that becomes readable when this object is ready.
    fn ready_fd(&self) -> RawFd;

    /// True if it is ready now. The default asks the kernel whether the fd is readable.
    fn is_ready(&self) -> io::Result<bool> {
        crate::sys::poll::ready_now(self.ready_fd(), false)
    }
}

/// A pipe end is ready when a message — or the end of the stream — can be received without
/// waiting.
impl Waitable for Connection {
    fn ready_fd(&self) -> RawFd {
        self.as_raw_fd()
    }

    fn is_ready(&self) -> io::Result<bool> {
        self.poll(Some(Duration::ZERO))
    }
}

/// A process is ready once it has ended (its [`sentinel`](Process::sentinel) is readable).
impl Waitable for Process {
    fn ready_fd(&self) -> RawFd {
        self.sentinel().as_raw_fd()
    }
}

/// Any fd: ready when readable (a socket with data or a connection to accept, a process's
/// sentinel, an eventfd...).
impl Waitable for BorrowedFd<'_> {
    fn ready_fd(&self) -> RawFd {
        self.as_raw_fd()
    }
}

/// Waits until at least one of `objects` is ready, or `timeout` passes (`None`: as long as it
/// takes), and returns the indices of all that are ready then — empty on a timeout (Python's
/// `multiprocessing.connection.wait`). Parks only the calling green thread. With no objects
/// it just waits out the timeout.
///
/// ```
/// use std::time::Duration;
/// use greenrt::ipc::{pipe, wait_ready};
/// use greenrt::process::Process;
///
/// let (quiet, _quiet_peer) = pipe()?;
/// let (news, news_peer) = pipe()?;
/// let child = Process::spawn(move || news_peer.send("done").unwrap())?;
/// let ready = wait_ready(&[&quiet, &news], Some(Duration::from_secs(10)))?;
/// assert_eq!(ready, [1]);
/// assert_eq!(news.recv::<String>()?, "done");
/// assert_eq!(wait_ready(&[&child], Some(Duration::from_secs(10)))?, [0]); // it has ended
/// child.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn wait_ready(objects: &[&dyn Waitable], timeout: Option<Duration>) -> io::Result<Vec<usize>> {
    let deadline = timeout.and_then(crate::time::deadline_in);
    let fds: Vec<(RawFd, Direction)> = objects
        .iter()
        .map(|o| (o.ready_fd(), Direction::Read))
        .collect();
    loop {
        let ready = ready_now(objects)?;
        if !ready.is_empty() {
            return Ok(ready);
        }
        match wait_any(&fds, deadline, Interrupts::Unwind) {
            // Ready, or an fd was closed: look again (a closed fd shows as readable).
            Ok(()) | Err(Fail::Stop(Stop::Closed)) => {}
            Err(Fail::Stop(Stop::TimedOut)) => return ready_now(objects),
            Err(Fail::Stop(Stop::Interrupted(_))) => unreachable!("interrupts unwind"),
            Err(Fail::Os(e)) => return Err(e),
        }
    }
}

/// The indices of the objects ready now.
fn ready_now(objects: &[&dyn Waitable]) -> io::Result<Vec<usize>> {
    let mut ready = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        if object.is_ready()? {
            ready.push(i);
        }
    }
    Ok(ready)
}
