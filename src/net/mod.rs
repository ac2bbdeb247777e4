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

/// The fd traits every green socket has, written once: `AsRawFd`, `AsFd`, `IntoRawFd`
/// (leaving the hub first), `FromRawFd` and `From` the std type (both switching the socket to
/// non-blocking mode, which is how greenrt drives every socket). `$ty` must have a field `fd:
/// GreenFd<$mio>`.
macro_rules! fd_traits {
    ($ty:ident, $std:ty, $mio:ty, $name:literal) => {
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

use std::io;
use std::mem::ManuallyDrop;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::hub::green::Wait;
use crate::hub::reactor::{Direction, Shared};
use crate::hub::slab::Key;
use crate::hub::timers::TimerAction;
use crate::hub::{Hub, with_existing_hub};

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

/// Which hub an fd is registered with, and under which key.
struct Registration {
    shared: Arc<Shared>,
    key: Key,
}

/// A non-blocking socket plus what greenrt needs to wait on it. See the module docs.
pub(crate) struct GreenFd<S: AsRawFd> {
    source: S,
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

    /// The one WouldBlock -> wait -> retry loop, using the timeout set for `dir`.
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

    /// The loop itself, with an explicit timeout; `drained(&result)` says whether a success
    /// used up the fd's readiness.
    pub(crate) fn retry_for<R>(
        &self,
        dir: Direction,
        timeout: Option<Duration>,
        mut op: impl FnMut() -> io::Result<R>,
        drained: impl Fn(&R) -> bool,
    ) -> io::Result<R> {
        let mut deadline: Option<Option<Instant>> = None; // computed at the first wait
        loop {
            if self.may_be_ready(dir) {
                match op() {
                    Ok(value) => {
                        if drained(&value) {
                            self.mark_unready(dir);
                        }
                        return Ok(value);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.mark_unready(dir),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            if self.options.nonblocking.load(Ordering::Relaxed) {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let deadline = *deadline.get_or_insert_with(|| timeout.map(|t| Instant::now() + t));
            self.wait(dir, deadline)?;
        }
    }

    /// False only when this thread's hub knows the fd is not ready for `dir` (no event since
    /// the last `WouldBlock` or short transfer). Without a registration here: true.
    fn may_be_ready(&self, dir: Direction) -> bool {
        let Some(reg) = self.registration.get() else {
            return true;
        };
        with_existing_hub(|hub| {
            !Arc::ptr_eq(&reg.shared, &hub.reactor.shared) || hub.reactor.is_ready(reg.key, dir)
        })
        .unwrap_or(true)
    }

    /// Records that the fd is not ready for `dir` until the next event.
    fn mark_unready(&self, dir: Direction) {
        let Some(reg) = self.registration.get() else {
            return;
        };
        with_existing_hub(|hub| {
            if Arc::ptr_eq(&reg.shared, &hub.reactor.shared) {
                hub.reactor.set_unready(reg.key, dir);
            }
        });
    }

    /// Blocks until the fd may be ready for `dir`; `TimedOut` once `deadline` passes.
    pub(crate) fn wait(&self, dir: Direction, deadline: Option<Instant>) -> io::Result<()> {
        let fd = self.source.as_raw_fd();
        if let Some(result) = with_existing_hub(|hub| self.wait_on_hub(hub, dir, deadline)) {
            return result;
        }
        match crate::sys::poll::wait_fd(fd, dir == Direction::Write, deadline)? {
            true => Ok(()),
            false => Err(timed_out()),
        }
    }

    /// Parks the current green thread on this fd. See `hub/reactor.rs`.
    fn wait_on_hub(&self, hub: &Hub, dir: Direction, deadline: Option<Instant>) -> io::Result<()> {
        let key = self.key_in(hub)?;
        if deadline.is_some_and(|at| Instant::now() >= at) {
            return Err(timed_out());
        }
        let me = hub.current();
        if !hub.reactor.add_waiter(key, dir, &me) {
            return Err(io::Error::other("greenrt: socket registration vanished"));
        }
        let _unlist = WaiterGuard {
            hub,
            key,
            dir,
            me: &me,
        };
        let _timer = deadline.map(|at| hub.arm_timer(at, TimerAction::Wake(me.clone())));
        let fd = self.source.as_raw_fd();
        hub.park(match dir {
            Direction::Read => Wait::Readable(fd),
            Direction::Write => Wait::Writable(fd),
        });
        match deadline {
            Some(at) if Instant::now() >= at => Err(timed_out()),
            _ => Ok(()),
        }
    }

    /// Our key in `hub`'s reactor, registering on first use.
    fn key_in(&self, hub: &Hub) -> io::Result<Key> {
        if let Some(reg) = self.registration.get() {
            if Arc::ptr_eq(&reg.shared, &hub.reactor.shared) {
                return Ok(reg.key);
            }
            return Err(io::Error::other(
                "greenrt: this socket is registered with the hub of another OS thread; \
                 a socket stays with the first thread that waited on it",
            ));
        }
        let key = hub.reactor.register(self.source.as_raw_fd())?;
        let registration = Registration {
            shared: hub.reactor.shared.clone(),
            key,
        };
        if self.registration.set(registration).is_err() {
            // Another OS thread registered the same socket with its hub at the same moment.
            hub.reactor.shared.deregister(self.source.as_raw_fd());
            hub.reactor.release_source(key);
            return self.key_in(hub);
        }
        Ok(key)
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

    /// Removes the fd from its hub's epoll set and frees its slot there.
    fn deregister(&self) {
        let Some(reg) = self.registration.get() else {
            return;
        };
        reg.shared.deregister(self.source.as_raw_fd());
        let on_owner = with_existing_hub(|hub| {
            let mine = Arc::ptr_eq(&reg.shared, &hub.reactor.shared);
            if mine {
                hub.reactor.release_source(reg.key);
            }
            mine
        });
        if on_owner != Some(true) {
            reg.shared.release_source_remote(reg.key);
        }
    }
}

impl<S: AsRawFd> Drop for GreenFd<S> {
    fn drop(&mut self) {
        self.deregister();
    }
}

/// Takes a parked green thread off a source's waiter list, also when it unwinds.
struct WaiterGuard<'a> {
    hub: &'a Hub,
    key: Key,
    dir: Direction,
    me: &'a std::rc::Rc<crate::hub::green::Green>,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.hub.reactor.remove_waiter(self.key, self.dir, self.me);
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "operation timed out")
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
