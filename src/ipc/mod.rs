//! Process-shared synchronization (Python's `multiprocessing` primitives), on futexes in
//! shared memory.
//!
//! | type                      | what it is                                  | file          |
//! |---------------------------|---------------------------------------------|---------------|
//! | [`Lock`]                  | mutual exclusion, survives a dead holder    | `lock.rs`     |
//! | [`RLock`]                 | re-entrant lock (owner + count shared)      | `rlock.rs`    |
//! | [`Semaphore`]             | counting semaphore, dead holders' permits returned | `semaphore.rs` |
//! | [`Event`]                 | a flag processes wait for                   | `event.rs`    |
//! | [`Condition`]             | a lock with wait/notify                     | `condition.rs`|
//! | [`Queue`]                 | bounded FIFO of serde values, crash-safe    | `queue.rs`    |
//! | [`pipe()`]                | a duplex pair of message [`Connection`]s    | `pipe.rs`     |
//! | [`wait_ready`]            | the first of several pipe ends, processes, fds to be ready | `ready.rs` |
//! | [`Listener`], [`connect`] | connections between unrelated processes, with an auth key | `listener.rs`, `auth.rs` |
//! | [`Value`], [`Array`]      | plain data with its own lock                | `value.rs`    |
//! | [`Plain`]                 | types whose bytes are any valid value       | `plain.rs`    |
//! | [`SharedDict`], [`SharedList`] | serde collections, crash-safe (copy and flip) | `dict.rs`, `list.rs`, `cow.rs` |
//!
//! Every object lives in a shared region (`region.rs`): anonymous (`new`, inherited across
//! `fork`) or named (`create` / `open`, for unrelated processes). How the pieces fit:
//!
//! ```text
//!   Lock / RLock / Condition / Value ----+
//!   Semaphore / Queue (internal lock) ---+--> raw_lock.rs (robust word: holder pid | WAITERS)
//!                                        |        |
//!                                        |        +--> owner.rs (is the holder alive?)
//!   Event / Condition / Queue waits -----+--> wait.rs (green threads park; a waiter thread
//!                                                      does futex_waitv for them)
//!                                             sys/futex.rs (shared futex, absolute deadlines)
//! ```
//!
//! **Nothing waits forever on a dead process.** A lock whose holder died is handed to the next
//! acquirer as [`LockError::OwnerDied`]; semaphore permits held by dead processes return;
//! queues keep a journal so a producer or consumer killed mid-operation leaves no torn
//! message. **Shared memory is untrusted**: every index and length read from it is checked,
//! and a corrupt region yields `io::ErrorKind::InvalidData` (or [`LockError::Corrupt`]).

mod auth;
mod barrier;
mod condition;
mod cow;
mod dict;
mod event;
#[doc(hidden)]
pub mod fault;
mod list;
mod listener;
mod lock;
mod owner;
mod pipe;
mod plain;
mod queue;
mod raw_lock;
mod ready;
pub(crate) mod region;
pub(crate) use region::remove_created_now;
mod rlock;
mod semaphore;
mod value;
mod wait;

use std::fmt;
use std::io;

pub use auth::{AuthenticationError, HANDSHAKE_MAX, HANDSHAKE_TIMEOUT};
pub use barrier::{Barrier, MAX_PARTIES};
pub use condition::{Condition, ConditionGuard};
pub use cow::CapacityExceeded;
pub use dict::SharedDict;
pub use event::Event;
pub use list::SharedList;
pub use listener::{Listener, connect};
pub use lock::{Lock, LockGuard};
pub use pipe::{
    BufferTooShort, Connection, DEFAULT_MAX_MESSAGE, MessageTooLarge, pipe, pipe_oneway,
};
pub use plain::Plain;
pub(crate) use plain::{
    is_plain_number, number_bytes, numbers_from_bytes, plain_bytes, plain_from_bytes,
};
pub use queue::{
    DEFAULT_CAPACITY, GetError, Iter, PutError, PutManyError, Queue, QueueBuilder,
    TaskDoneTooOften, TryIter,
};
pub use ready::wait_ready;
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, OverRelease, Permit, Semaphore};
pub use value::{Array, ArrayGuard, Value, ValueGuard};

/// Why taking an ipc lock did not simply succeed.
pub enum LockError<G> {
    /// The previous holder died holding the lock. **You hold it now** (the guard is here);
    /// the data it protects may be half-updated — repair it, then go on (like std's
    /// `PoisonError`). Only the first acquirer after the death is told.
    OwnerDied(G),
    /// The timeout passed (or, for `try_lock`, the lock was held).
    TimedOut,
    /// The shared memory does not hold a valid lock (`InvalidData`).
    Corrupt(io::Error),
}

impl<G> LockError<G> {
    /// Accepts a lock taken over from a dead holder: `OwnerDied(g)` becomes `Ok(g)`.
    ///
    /// ```
    /// let lock = greenrt::ipc::Lock::new()?;
    /// let guard = lock.lock().or_else(greenrt::ipc::LockError::recover).unwrap();
    /// # drop(guard);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recover(self) -> Result<G, LockError<G>> {
        match self {
            LockError::OwnerDied(g) => Ok(g),
            other => Err(other),
        }
    }
}

impl<G> fmt::Debug for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => f.write_str("OwnerDied(..)"),
            LockError::TimedOut => f.write_str("TimedOut"),
            LockError::Corrupt(e) => f.debug_tuple("Corrupt").field(e).finish(),
        }
    }
}

impl<G> fmt::Display for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => {
                f.write_str("the previous holder of the lock died holding it")
            }
            LockError::TimedOut => f.write_str("timed out waiting for the lock"),
            LockError::Corrupt(e) => write!(f, "corrupt lock: {e}"),
        }
    }
}

impl<G> std::error::Error for LockError<G> {}

impl<G> From<LockError<G>> for io::Error {
    fn from(e: LockError<G>) -> io::Error {
        match e {
            LockError::Corrupt(e) => e,
            LockError::TimedOut => {
                io::Error::new(io::ErrorKind::TimedOut, "timed out waiting for the lock")
            }
            LockError::OwnerDied(_) => {
                io::Error::other("the previous holder of the lock died holding it")
            }
        }
    }
}

/// Unlocks from a guard's `drop`: a word that no longer names us is corrupt shared memory,
/// reported by a panic unless we are already unwinding.
#[inline(always)]
fn unlock_or_panic(raw: &raw_lock::RawLock) {
    if let Err(e) = raw.unlock()
        && !std::thread::panicking()
    {
        panic!("greenrt::ipc: cannot unlock: {e}");
    }
}
