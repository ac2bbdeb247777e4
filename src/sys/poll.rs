//! Waiting for one file descriptor with `poll(2)`, for threads that have no hub.
//!
//! A plain OS thread that uses a green socket should behave exactly as with a std socket: it
//! blocks. Making a whole hub (an epoll instance and an eventfd) for that would be wasteful,
//! so it waits here instead.

use std::io;
use std::os::fd::RawFd;
use std::time::Instant;

/// Blocks until `fd` is readable (or writable, if `write`), or until `deadline` passes.
/// Returns `Ok(false)` on timeout.
pub(crate) fn wait_fd(fd: RawFd, write: bool, deadline: Option<Instant>) -> io::Result<bool> {
    let events = if write { libc::POLLOUT } else { libc::POLLIN };
    loop {
        let timeout_ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                // Round up so we never wake before the deadline.
                left.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
            }
        };
        let mut pfd = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: `pfd` is a valid pollfd array of length 1 that lives across the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        match rc {
            n if n > 0 => return Ok(true),
            0 => continue, // re-check the deadline; poll may wake a little early
            _ => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
        }
    }
}

/// True if `fd` is readable (or writable, if `write`) right now; never blocks.
pub(crate) fn ready_now(fd: RawFd, write: bool) -> io::Result<bool> {
    let events = if write { libc::POLLOUT } else { libc::POLLIN };
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        // SAFETY: `pfd` is a valid pollfd array of length 1 that lives across the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, 0) };
        if rc >= 0 {
            return Ok(rc > 0);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}
