//! `monkey`: make unmodified blocking code cooperative, like gevent's `monkey.patch_all()`.
//!
//! With the `monkey` feature, greenrt defines the C symbols `read`, `readv`, `write`,
//! `writev`, `recv`, `recvfrom`, `recvmsg`, `send`, `sendto`, `sendmsg`, `connect`, `accept`,
//! `accept4`, `poll`, `ppoll`, `select`, `nanosleep`, `clock_nanosleep`, `usleep`, `sleep`
//! and `getaddrinfo` in your program (`sys/interpose.rs`). After
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
//! See `hooks.rs` for how user-visible semantics are kept (non-blocking sockets,
//! `SO_RCVTIMEO`, files and pipes), and NOTES.md for what cannot be made cooperative.

pub(crate) mod hooks;
pub(crate) mod signals;

use std::sync::atomic::{AtomicBool, Ordering};

static PATCHED: AtomicBool = AtomicBool::new(false);

/// The helper threads that run name lookups for green threads (per process: a forked child
/// makes its own).
static RESOLVER: crate::process::per_process::PerProcess<crate::thread_pool::ThreadPool> =
    crate::process::per_process::PerProcess::new();

pub(crate) fn resolver() -> &'static crate::thread_pool::ThreadPool {
    RESOLVER.get(|| crate::thread_pool::ThreadPool::new(4))
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
