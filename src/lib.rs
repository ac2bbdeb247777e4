//! # greenrt
//!
//! A concurrency runtime built by hand so that it can be read: green threads (stackful
//! coroutines) scheduled by a hub per OS thread on a `mio` reactor, in the manner of gevent
//! and greenlet.
//!
//! ```
//! use std::time::Duration;
//!
//! let handles: Vec<_> = (0..3)
//!     .map(|i| greenrt::spawn(move || {
//!         greenrt::sleep(Duration::from_millis(10 * (3 - i)));
//!         i
//!     }))
//!     .collect();
//! // The three sleeps overlap: this takes about 30 ms, not 60.
//! let results: Vec<u64> = greenrt::joinall(handles).into_iter().map(Result::unwrap).collect();
//! assert_eq!(results, [0, 1, 2]);
//! ```
//!
//! ## The data path
//!
//! ```text
//!   spawn.rs          hub/run_loop.rs             hub/park.rs            hub/reactor.rs
//!   spawn(f) --push--> run queue --resume--> green runs --blocks--> park --+--> epoll (fds)
//!                         ^                                                +--> timers.rs
//!                         |                                                |
//!                         +-------------- unpark (ready again) <-----------+
//!                                                                          ^
//!   net/mod.rs: every socket call is  try -> WouldBlock -> wait_io -> park +
//! ```
//!
//! Start reading at [`hub`] (the scheduler), then [`spawn()`], [`join`], [`time`] and [`net`].
//! NOTES.md in the repository tells the design and its rejected alternatives.
//!
//! ## Rules users must know
//!
//! Cooperative scheduling, `fork` and Rust's guards bring a few rules, each explained in
//! [`rules`]: do not block the OS thread inside a green thread (or use `monkey`); no
//! `std::sync::Mutex` guard across a green blocking call; green threads run only while the
//! main context blocks; sockets stay with one hub; `reset_after_fork` in a hand-written
//! child; and a guard (lock, permit) releases when it is dropped — a literal port of Python's
//! `acquire()` without `release()` does not hold anything.
//!
//! ## Features
//!
//! * `monkey` — `monkey::patch_all()`: unmodified blocking code (std::net,
//!   `thread::sleep`, blocking crates) parks only its green thread, like
//!   `gevent.monkey.patch_all()`. It interposes libc's blocking calls for the whole program.
//! * `redis` — `dist`: a Redis connection for green threads and a work queue shared by
//!   processes and machines (leases, heartbeats, results back exactly once).
//!
//! Neither is on by default. Their modules appear in these docs when they are built with the
//! feature (`cargo doc --all-features`, as docs.rs does, marked "Available on crate feature
//! ... only").

#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc
)]

pub mod bridge;
pub mod coro;
pub mod current;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod dist;
pub mod hub;
pub mod ipc;
pub mod join;
#[cfg(feature = "monkey")]
#[cfg_attr(docsrs, doc(cfg(feature = "monkey")))]
pub mod monkey;
pub mod net;
pub mod pool;
pub mod process;
pub mod rules;
pub mod spawn;
pub mod sync;
mod sys;
pub mod thread_pool;
pub mod time;
pub mod trace;
mod wait;

pub use bridge::block_on;
pub use current::{Current, current};
pub use hub::{dump, stats};
pub use join::{JoinError, JoinHandle, joinall, joinall_timeout};
pub use spawn::{Builder, spawn, spawn_later};
pub use time::{Elapsed, Timeout, sleep, sleep_until, timeout, yield_now};
pub use wait::{Iwait, Waitable, Watcher, Watching, iwait, wait};
