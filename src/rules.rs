//! # Rules users must know
//!
//! greenrt keeps most of gevent's and multiprocessing's promises, but a few rules come with
//! cooperative scheduling, `fork` and Rust's ownership. Each is here with the reason and what
//! to do instead; NOTES.md tells the design behind them.
//!
//! 1. **Do not block the OS thread inside a green thread.** `std::thread::sleep`, a std socket,
//!    a blocking mutex, a long computation: each stops *every* green thread on the hub until it
//!    returns. Use `greenrt::sleep`, `greenrt::net`, `yield_now` in long loops, or build with the
//!    `monkey` feature and call `monkey::patch_all()`, which makes std's sockets and sleeps
//!    cooperative (NOTES.md §7).
//! 2. **Do not hold a `std::sync::Mutex` guard across a green blocking call.** If green thread A
//!    holds it and sleeps, and B on the same hub tries to lock it, B blocks the whole OS thread —
//!    including A, which could release it: the hub hangs. Use `greenrt::sync::Mutex`
//!    instead.
//! 3. **Thread-locals are per OS thread, shared by every green thread on it.** Green threads never
//!    migrate, so a thread-local read in a green thread is stable, but it is not private to it.
//! 4. **Green threads run only while the main context blocks.** `spawn` queues; something must
//!    `join`, `sleep` or `yield_now` for them to run (as in gevent). A green thread still parked
//!    when its OS thread exits is *leaked* like `mem::forget`: its destructors do not run and its
//!    stack stays mapped. Join what you spawn.
//! 5. **Stack size.** 256 KiB of address space per green thread by default; deep recursion needs
//!    `Builder::stack_size`. An overflow aborts the process with a message naming the green
//!    thread — it is never silent corruption.
//! 6. **Kill and timeout unwind.** They need `panic = "unwind"` (the default). Code that catches
//!    panics with `catch_unwind` inside a green thread also catches our unwind payloads; the
//!    interrupt is raised again at the next park, so the kill still takes effect.
//! 7. **Sockets stay with one hub.** A socket registers with the hub of the first thread that
//!    waits on it; moving it to another thread afterwards and waiting there is an error
//!    (`io::Error`, not a hang). Sockets that never waited can move freely.
//! 8. **fork.** The hub's `epoll` instance is shared with a forked child, so the child must never
//!    touch it. A hand-written `fork` calls `greenrt::hub::reset_after_fork()` first thing in the
//!    child: the inherited hub is leaked untouched and the next greenrt call makes a fresh one.
//!    Each hub remembers the pid that made it, so an inherited socket dropped in the child closes
//!    its fd without removing the parent's epoll interest (`tests/fork.rs` checks both). A child
//!    forked from inside a green thread must end with `std::process::exit`. The parent's other
//!    green threads do not go on in the child, and their stacks are not even mapped there (a
//!    fork copies only the stack it runs on, NOTES.md §3): pass data to a child by value, not as
//!    a reference into another green thread's stack. Fork with glibc's `fork` (or
//!    `Process::spawn`), not a raw `syscall(SYS_fork)`, which skips the hook that keeps the
//!    running stack.
//! 9. **Deadlocks are reported.** If the main context waits and nothing can ever wake anything (no
//!    ready green thread, no timer, no socket waiter, no live `Unparker`), the hub panics with a
//!    list of every blocked green thread and what it waits on, instead of hanging.
//! 10. **`timeout` and `kill` reaching a hooked call (`monkey`).** The hooked call returns at
//!     once, failing with: `ETIMEDOUT` (`io::ErrorKind::TimedOut`) when a `timeout` fired,
//!     `ECANCELED` (an uncategorized `io::Error`) when the green thread was killed; a sleep
//!     (`nanosleep`, `clock_nanosleep`, so `std::thread::sleep`) returns early instead, as if
//!     interrupted with nothing left to sleep (`EINTR`, remainder 0 — std's sleep then returns).
//!     None of these is `EINTR` for a socket call, because std's `read_exact`/`write_all` and most
//!     crates retry `EINTR`. A caller that swallows the error and calls again gets the same error
//!     again at once (after the hub has let the others run, so it cannot starve them); the
//!     interrupt itself is delivered at the next greenrt park point (`greenrt::sleep`, a join, a
//!     lock...), when the `timeout` closure returns, or when the green thread's function returns.
//! 11. **Signals and hooked calls (`monkey`).** A signal handler that runs on a hub's OS thread
//!     interrupts the green threads of that hub blocked in hooked calls, as the kernel interrupts a
//!     thread: `EINTR`, or the call goes on if every handler that ran had `SA_RESTART` (never for
//!     `poll`, `select`, the sleeps, or a socket with `SO_RCVTIMEO`/`SO_SNDTIMEO`: signal(7)). The
//!     handler must have been installed through `sigaction` or `signal` (greenrt interposes both to
//!     learn that it ran); handlers installed by libc internally are not seen. A signal delivered to
//!     another OS thread does not interrupt this hub's green threads, as it would not interrupt this
//!     thread.
//! 12. **A guard releases when it is dropped.** `Mutex::lock`, `Semaphore::acquire` and the
//!     `ipc` locks return a guard (a permit), and the lock or permit is given back when the guard
//!     is dropped — Rust's way, not Python's `acquire()`/`release()` pairs. A literal port of
//!     `sem.acquire()` as `let _ = sem.acquire()?;` drops the permit at once: seven such calls on
//!     `Semaphore(5)` never block (`examples/semaphore_block` shows both). Bind the guard
//!     (`let _permit = ...`) for as long as you hold it, keep many in a `Vec`, or call
//!     `Permit::forget` for Python's acquire-without-release (then `release()` gives it back).
//!
//!
//! A Python → greenrt table of names is in README.md ("From Python").
