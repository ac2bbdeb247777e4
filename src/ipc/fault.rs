//! Fault injection for crash-safety tests: make this process SIGKILL itself — or SIGSTOP
//! itself, frozen while it holds an internal lock — at a chosen instant *inside* an ipc
//! critical section: the moment a random `kill -9` or `kill -STOP` almost never hits.
//!
//! Not for production use; hidden from the docs. When nothing is armed, a crash point costs
//! one relaxed atomic load.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Where inside an operation to die.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum CrashPoint {
    /// Queue put: half of the frames' bytes are in the ring; nothing is published.
    PutMidCopy = 1,
    /// Queue put: the frames are written and counted, the journal is open; `tail` (the
    /// publication) has not moved.
    PutBeforeCommit = 2,
    /// Queue get: the frame is copied out, the journal is open; `head` (the freeing) and the
    /// count have not moved.
    GetBeforeCommit = 3,
    /// Semaphore: `count` has changed, the holder's slot and the journal commit have not.
    SemaphoreBeforeCommit = 4,
    /// SharedDict/SharedList: the new contents are half written to the inactive area.
    CollectionMidWrite = 5,
    /// Queue get: the queue looked empty and open, and the getter is about to register to
    /// sleep (holding the get side's lock, which a close does not need).
    GetBeforeSleep = 6,
}

static POINT: AtomicU32 = AtomicU32::new(0);
static COUNTDOWN: AtomicU64 = AtomicU64::new(0);
/// What happens at the point: 0 = SIGKILL, 1 = SIGSTOP.
static STOP_INSTEAD: AtomicU32 = AtomicU32::new(0);

/// Arms a crash: the `nth` time (1 = the next time) this process passes `point`, it sends
/// itself SIGKILL. Meant to be called in a forked child.
pub fn kill_self_at(point: CrashPoint, nth: u64) {
    STOP_INSTEAD.store(0, Ordering::Relaxed);
    COUNTDOWN.store(nth.max(1), Ordering::Relaxed);
    POINT.store(point as u32, Ordering::Relaxed);
}

/// Arms a freeze: the `nth` time this process passes `point`, it sends itself SIGSTOP and
/// stays inside the critical section (holding its internal lock) until SIGCONT.
pub fn stop_self_at(point: CrashPoint, nth: u64) {
    STOP_INSTEAD.store(1, Ordering::Relaxed);
    COUNTDOWN.store(nth.max(1), Ordering::Relaxed);
    POINT.store(point as u32, Ordering::Relaxed);
}

/// True if a crash is armed at `point` (code may then take a slower path that passes it at
/// the right moment).
#[inline(always)]
pub(crate) fn armed(point: CrashPoint) -> bool {
    POINT.load(Ordering::Relaxed) == point as u32
}

/// A crash point: dies here if armed for `point` and the countdown reaches zero.
#[inline(always)]
pub(crate) fn point(point: CrashPoint) {
    if POINT.load(Ordering::Relaxed) == point as u32 {
        hit(point);
    }
}

#[cold]
fn hit(point: CrashPoint) {
    if COUNTDOWN.fetch_sub(1, Ordering::Relaxed) == 1 {
        let _ = point;
        if STOP_INSTEAD.load(Ordering::Relaxed) == 1 {
            crate::sys::process::stop_self();
        } else {
            crate::sys::process::kill_self();
        }
    }
}
