//! `monkey`: make unmodified blocking code cooperative, like gevent's `monkey.patch_all()`.
//!
//! With the `monkey` feature, greenrt defines the C symbols `read`, `readv`, `write`,
//! `writev`, `recv`, `recvfrom`, `recvmsg`, `send`, `sendto`, `sendmsg`, `connect`, `accept`,
//! `accept4`, `poll`, `ppoll`, `select`, `nanosleep`, `clock_nanosleep`, `usleep`, `sleep`,
//! `getaddrinfo`, `close`, `sigaction` and `signal` in your program (`sys/interpose.rs`). After
//! [`patch_all`], such a call made **on a green thread** parks only that green thread; the
//! same call on a plain OS thread (or a hub's main context), or before `patch_all`, goes
//! straight to the kernel as before. So `std::net::TcpStream`, `std::thread::sleep` and
//! blocking crates built on them overlap on one hub without being rewritten:
//!
//! ```text
//!   std::net::TcpStream::read ──> read() ──> hooks::read ──> recv(MSG_DONTWAIT)
//!                                                │ EAGAIN, blocking socket
//!                                                └──> park until readable (epoll) ──> retry
//! ```
//!
//! Any number of green threads may block on one fd, in either direction, on std sockets and
//! on `greenrt::net` sockets alike, and `poll`/`select` may watch a mix: they all wait through
//! the hub's one I/O table (`hub/io.rs`).
//!
//! # When a hooked call is cut short
//!
//! | what happens while a green thread is blocked in a hooked call | the call returns        |
//! |---------------------------------------------------------------|-------------------------|
//! | a [`timeout`](crate::timeout) around it fires                 | -1, `ETIMEDOUT`         |
//! | the green thread is [killed](crate::JoinHandle::kill)         | -1, `ECANCELED`         |
//! | ... and the call is a sleep (`std::thread::sleep`)            | early: `EINTR`, 0 left  |
//! | the fd is `close`d (by another green thread of the hub)       | -1, `EBADF`             |
//! | a signal handler runs on this OS thread, no `SA_RESTART`      | -1, `EINTR`             |
//! | ... with `SA_RESTART`, on a socket call without a timeout     | nothing: it goes on     |
//! | ... on `poll`, `select`, a sleep, a socket with a timeout     | -1, `EINTR` (sleeps: time left) |
//!
//! A hook cannot unwind (it is an `extern "C"` function), so a kill or timeout is *returned*
//! as an error that std and common crates do not retry, and stays pending: the green thread
//! unwinds at its next greenrt park point (a `greenrt::sleep`, a join, a lock); `timeout`
//! returns `Err(Elapsed)` when its closure returns; a killed green thread whose function
//! returns ends as `Killed`. A caller that swallows the error and calls again gets the same
//! error at once (after the other green threads have had a turn).
//!
//! ```
//! greenrt::monkey::patch_all();
//! let h = greenrt::spawn(|| {
//!     greenrt::timeout(std::time::Duration::from_millis(20), || {
//!         std::thread::sleep(std::time::Duration::from_secs(5)) // cut short, returns early
//!     })
//! });
//! assert_eq!(h.join().unwrap(), Err(greenrt::Elapsed));
//! ```
//!
//! See `hooks.rs` for how user-visible semantics are kept (non-blocking sockets,
//! `SO_RCVTIMEO`, files and pipes), `signals.rs` for signals, and NOTES.md (§4, §7) for the
//! rules and for what cannot be made cooperative.

pub(crate) mod hooks;
pub(crate) mod signals;

use std::sync::atomic::{AtomicBool, Ordering};

static PATCHED: AtomicBool = AtomicBool::new(false);

/// The helper threads that run name lookups for green threads (per process: a forked child
/// makes its own).
static RESOLVER: crate::sys::per_process::PerProcess<crate::thread_pool::ThreadPool> =
    crate::sys::per_process::PerProcess::new();

pub(crate) fn resolver() -> &'static crate::thread_pool::ThreadPool {
    RESOLVER.get(|| {
        crate::thread_pool::ThreadPool::new(4)
            .expect("greenrt: cannot start the name-lookup threads")
    })
}

/// From now on, blocking socket calls and sleeps made on green threads in this process park
/// only the calling green thread (gevent's `monkey.patch_all()`).
///
/// ```
/// greenrt::monkey::patch_all();
/// let sleepers: Vec<_> = (0..100)
///     .map(|_| greenrt::spawn(|| std::thread::sleep(std::time::Duration::from_millis(50))))
///     .collect();
/// let start = std::time::Instant::now();
/// greenrt::joinall(sleepers);
/// assert!(start.elapsed() < std::time::Duration::from_secs(2)); // overlapped, not 5 s
/// ```
pub fn patch_all() {
    PATCHED.store(true, Ordering::Release);
}

/// Undoes [`patch_all`]: calls go straight to the kernel again.
pub fn unpatch_all() {
    PATCHED.store(false, Ordering::Release);
}

/// True after [`patch_all`].
#[inline]
pub fn is_patched() -> bool {
    PATCHED.load(Ordering::Relaxed)
}
