//! Green sockets: `std::net` look-alikes that park only the calling green thread.
//!
//! Every socket is non-blocking at the OS level. Every blocking-looking method goes through
//! one loop, `GreenFd::retry`:
//!
//! ```text
//!   loop {
//!       try the syscall            -- read, write, accept, send_to, ...
//!       WouldBlock?  no  -> return its result
//!                    yes -> wait until the fd is ready (or the timeout passes), then retry
//!   }
//! ```
//!
//! *Waiting* depends on where we are:
//!
//! * on a thread with a hub (a green thread, or main code once greenrt is in use): register
//!   the fd with the hub's reactor (once, lazily), join the fd's waiter list and park — the hub
//!   runs other green threads meanwhile;
//! * on a plain OS thread that never used greenrt: `poll(2)` on the fd, i.e. block like std.
//!
//! A socket registers with the hub of the first thread that waits on it, and stays with that
//! hub: using it from another thread's hub afterwards is an error (see NOTES.md, "Rules").

/// The fd traits every green socket has, written once: `Waitable` (for `greenrt::wait`),
/// `AsRawFd`, `AsFd`, `IntoRawFd` and
/// `From<socket> for OwnedFd` (leaving the hub first), `FromRawFd`, `From<OwnedFd>` and `From`
/// the std type (switching the socket to non-blocking mode, which is how greenrt drives every
/// socket), and `into_std` back to the std type in blocking mode. `$ty` must have a field `fd:
/// GreenFd<$mio>`.
macro_rules! fd_traits {
    ($ty:ident, $std:ty, $mio:ty, $name:literal) => {
        /// Ready when readable: data (or the peer's end) to read, a connection to accept.
        impl crate::Waitable for $ty {
            fn is_ready(&self) -> bool {
                crate::wait::fd_is_readable(std::os::fd::AsRawFd::as_raw_fd(self))
            }

            fn watch<'a>(&'a self, _: &crate::Watcher) -> crate::Watching<'a> {
                crate::Watching::fd(std::os::fd::AsRawFd::as_raw_fd(self))
            }
        }

        impl std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(self.fd.source())
            }
        }

        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(self.fd.source())
            }
        }

        impl std::os::fd::IntoRawFd for $ty {
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                std::os::fd::IntoRawFd::into_raw_fd(self.fd.into_source())
            }
        }

        impl std::os::fd::FromRawFd for $ty {
            #[doc = concat!("Takes ownership of an open socket fd of the kind a std `", $name, "` holds, and makes it non-blocking.")]
            ///
            /// # Panics
            /// If the fd cannot be switched to non-blocking mode (it is not a socket).
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> $ty {
                // SAFETY: the caller promises `fd` is an open socket of this kind that it
                // hands over to us.
                <$ty>::from(unsafe { <$std as std::os::fd::FromRawFd>::from_raw_fd(fd) })
            }
        }

        impl From<std::os::fd::OwnedFd> for $ty {
            #[doc = concat!("Takes an owned socket fd of the kind a std `", $name, "` holds, making it non-blocking.")]
            ///
            /// # Panics
            /// If the fd cannot be switched to non-blocking mode (it is not a socket).
            fn from(fd: std::os::fd::OwnedFd) -> $ty {
                <$ty>::from(<$std>::from(fd))
            }
        }

        impl From<$ty> for std::os::fd::OwnedFd {
            #[doc = concat!("Leaves the hub and hands back the fd (still non-blocking), as std's `From<", $name, "> for OwnedFd`.")]
            fn from(socket: $ty) -> std::os::fd::OwnedFd {
                let raw = std::os::fd::IntoRawFd::into_raw_fd(socket);
                // SAFETY: `into_raw_fd` gave up ownership of this open fd, so it is ours alone.
                unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) }
            }
        }

        impl $ty {
            #[doc = concat!("Leaves the hub and converts back into a std `", $name, "` in blocking mode, as std expects (timeouts set here are not carried over).")]
            ///
            /// # Errors
            /// If the socket cannot be switched back to blocking mode.
            pub fn into_std(self) -> std::io::Result<$std> {
                let socket = <$std>::from(std::os::fd::OwnedFd::from(self));
                socket.set_nonblocking(false)?;
                Ok(socket)
            }
        }

        impl From<$std> for $ty {
            #[doc = concat!("Converts a std `", $name, "`, switching it to non-blocking mode.")]
            ///
            /// # Panics
            /// If the socket cannot be made non-blocking, which happens only for an fd that is
            /// not a socket.
            fn from(socket: $std) -> $ty {
                socket
                    .set_nonblocking(true)
                    .expect(concat!("greenrt: cannot make a std ", $name, " non-blocking"));
                $ty { fd: GreenFd::new(<$mio>::from_std(socket)) }
            }
        }
    };
}
use fd_traits;

mod tcp_listener;
mod tcp_stream;
mod udp;

pub use tcp_listener::{Incoming, TcpListener};
pub use tcp_stream::TcpStream;
pub use udp::UdpSocket;

use std::mem::ManuallyDrop;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::hub::io::{self as hub_io, Fail, OnWouldBlock, Registration, Stop};
use crate::hub::reactor::Direction;
use std::io;

/// Socket options that live in greenrt rather than in the kernel, shared by `try_clone`s the
/// way `SO_RCVTIMEO` is shared by dup'd descriptors.
#[derive(Debug)]
struct Options {
    /// Read timeout in nanoseconds; `NO_TIMEOUT` for none.
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
    /// Set by `set_nonblocking(true)`: WouldBlock goes to the caller instead of parking.
    nonblocking: AtomicBool,
}

const NO_TIMEOUT: u64 = u64::MAX;

impl Options {
    fn new() -> Arc<Options> {
        Arc::new(Options {
            read_timeout: AtomicU64::new(NO_TIMEOUT),
            write_timeout: AtomicU64::new(NO_TIMEOUT),
            nonblocking: AtomicBool::new(false),
        })
    }

    fn slot(&self, dir: Direction) -> &AtomicU64 {
        match dir {
            Direction::Read => &self.read_timeout,
            Direction::Write => &self.write_timeout,
        }
    }
}

/// A non-blocking socket plus what greenrt needs to wait on it. See the module docs.
pub(crate) struct GreenFd<S: AsRawFd> {
    source: S,
    /// The source this socket owns in its hub's I/O table, made at the first wait.
    registration: OnceLock<Registration>,
    options: Arc<Options>,
}

impl<S: AsRawFd> GreenFd<S> {
    /// Wraps a socket that is already in non-blocking mode.
    pub(crate) fn new(source: S) -> GreenFd<S> {
        GreenFd {
            source,
            registration: OnceLock::new(),
            options: Options::new(),
        }
    }

    /// Wraps a `try_clone` of this socket: new fd, same options.
    fn new_clone(&self, source: S) -> GreenFd<S> {
        GreenFd {
            source,
            registration: OnceLock::new(),
            options: self.options.clone(),
        }
    }

    pub(crate) fn source(&self) -> &S {
        &self.source
    }

    /// The WouldBlock -> wait -> retry loop (`hub::io::retry`), with the timeout set for `dir`.
    pub(crate) fn retry<R>(
        &self,
        dir: Direction,
        op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        self.retry_for(dir, self.timeout(dir), op, |_| false)
    }

    /// [`GreenFd::retry`] for a read or write of `len` bytes. A transfer shorter than asked
    /// (but not 0) means the kernel buffer was drained (or filled): the next call waits for
    /// the next readiness event instead of making a syscall that would only say `EAGAIN`.
    pub(crate) fn retry_transfer(
        &self,
        dir: Direction,
        len: usize,
        op: impl FnMut() -> io::Result<usize>,
    ) -> io::Result<usize> {
        self.retry_for(dir, self.timeout(dir), op, |&n| n > 0 && n < len)
    }

    /// The loop with an explicit timeout; `drained(&result)` says whether a success used up
    /// the fd's readiness.
    pub(crate) fn retry_for<R>(
        &self,
        dir: Direction,
        timeout: Option<Duration>,
        op: impl FnMut() -> io::Result<R>,
        drained: impl Fn(&R) -> bool,
    ) -> io::Result<R> {
        let on_would_block = || {
            if self.options.nonblocking.load(Ordering::Relaxed) {
                OnWouldBlock::Return
            } else {
                OnWouldBlock::WaitUntil(timeout.and_then(crate::time::deadline_in))
            }
        };
        hub_io::retry_socket(
            self.source.as_raw_fd(),
            dir,
            &self.registration,
            on_would_block,
            op,
            drained,
        )
        .map_err(|fail| match fail {
            Fail::Os(e) => e,
            Fail::Stop(Stop::TimedOut) => timed_out(),
            Fail::Stop(Stop::Closed) => io::Error::from_raw_os_error(crate::sys::EBADF),
            Fail::Stop(Stop::Interrupted(_)) => unreachable!("interrupts unwind here"),
        })
    }

    /// Sets the timeout for `dir`, with std's rules: `Some(ZERO)` is an error.
    pub(crate) fn set_timeout(&self, dir: Direction, timeout: Option<Duration>) -> io::Result<()> {
        let nanos = match timeout {
            Some(t) if t.is_zero() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "cannot set a 0 duration timeout",
                ));
            }
            Some(t) => u64::try_from(t.as_nanos())
                .unwrap_or(NO_TIMEOUT - 1)
                .min(NO_TIMEOUT - 1),
            None => NO_TIMEOUT,
        };
        self.options.slot(dir).store(nanos, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn timeout(&self, dir: Direction) -> Option<Duration> {
        let nanos = self.options.slot(dir).load(Ordering::Relaxed);
        (nanos != NO_TIMEOUT).then(|| Duration::from_nanos(nanos))
    }

    /// With `true`, operations that would block return `WouldBlock` instead of parking.
    pub(crate) fn set_nonblocking(&self, nonblocking: bool) {
        self.options
            .nonblocking
            .store(nonblocking, Ordering::Relaxed);
    }

    /// Leaves the hub (if registered) and hands back the socket.
    pub(crate) fn into_source(self) -> S {
        self.deregister();
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so moving each field out exactly once
        // is sound; the fields we do not return are dropped here.
        unsafe {
            drop(std::ptr::read(&this.registration));
            drop(std::ptr::read(&this.options));
            std::ptr::read(&this.source)
        }
    }

    /// Gives the fd's source back to its hub (the fd is about to close or leave greenrt).
    fn deregister(&self) {
        if let Some(reg) = self.registration.get() {
            reg.close();
        }
    }
}

impl<S: AsRawFd> Drop for GreenFd<S> {
    fn drop(&mut self) {
        self.deregister();
    }
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "operation timed out")
}

/// Tries `f` on each address `addrs` resolves to, returning the first success or the last
/// error, like std.
fn each_addr<T>(
    addrs: impl ToSocketAddrs,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for addr in addrs.to_socket_addrs()? {
        match f(addr) {
            Ok(value) => return Ok(value),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}

/// The raw fd, for the `AsRawFd` impls of the socket types.
fn raw<S: AsRawFd>(fd: &GreenFd<S>) -> RawFd {
    fd.source.as_raw_fd()
}
