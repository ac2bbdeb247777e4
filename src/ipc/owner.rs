//! Is the process holding a lock still alive?
//!
//! ipc locks record their holder's **pid** in the lock word (see `ipc::raw_lock`). A waiter
//! that has waited a while asks the kernel about that pid:
//!
//! 1. `kill(pid, 0)` fails with `ESRCH`, or `/proc/<pid>/stat` shows a zombie: the holder died.
//! 2. The pid exists but its process **started after** this waiter first saw it holding the
//!    lock: the holder died and the pid was reused by an unrelated process. (The holder took
//!    the lock before we looked, so it started before we looked.)
//!
//! Better still, the holder records itself next to the lock word (`pid << 40 | start time`,
//! `ipc::raw_lock`): then any process running under that pid with another start time is not
//! the holder, even one that got the pid before the waiter's first look. Rule 2 remains for the
//! instant between taking the word and recording: start times are in clock ticks (10 ms), so it
//! cannot tell a reuse within the same tick as our first look.
//!
//! Checks cost two syscalls and a small `/proc` read, so they run at most every
//! [`CHECK_EVERY`], and only after a waiter has waited: the fast paths never make them.

use std::time::{Duration, Instant};

use crate::sys::process::{PidState, boot_ticks_now, cached_pid, pid_state};

/// How often a waiter asks whether the holder is alive.
pub(crate) const CHECK_EVERY: Duration = Duration::from_millis(10);

/// How long a waiter sleeps on the lock word between checks.
pub(crate) const WAIT_SLICE: Duration = Duration::from_millis(20);

/// One waiter's view of one holder. See the module docs.
#[derive(Debug)]
pub(crate) struct OwnerWatch {
    pid: u32,
    since_ticks: u64,
    next_check: Instant,
    /// A recorded identity whose start time did not match the process now under its pid, at
    /// the last check. A second look must see the same before we call the holder dead: a
    /// live holder that reuses a dead one's pid records itself nanoseconds after taking the
    /// word, so a mismatch that lasts a whole check interval is not that moment.
    suspect: u64,
}

impl OwnerWatch {
    pub(crate) fn new() -> OwnerWatch {
        OwnerWatch {
            pid: 0,
            since_ticks: 0,
            next_check: Instant::now(),
            suspect: 0,
        }
    }

    /// True when `pid`, seen holding the lock just now, has certainly died. `recorded` is the
    /// lock's holder identity (`pid << 40 | start ticks`, or 0 / another pid while unknown).
    pub(crate) fn holder_died(&mut self, pid: u32, recorded: u64) -> bool {
        if pid == cached_pid() {
            return false;
        }
        let now = Instant::now();
        if pid != self.pid {
            self.pid = pid;
            self.since_ticks = boot_ticks_now();
            self.next_check = now;
        }
        if now < self.next_check {
            return false;
        }
        self.next_check = now + CHECK_EVERY;
        match pid_state(pid) {
            PidState::Gone => true,
            // The holder recorded itself: any other process with that pid is not it (seen on
            // two checks in a row, see `suspect`).
            PidState::Alive { start_ticks } if recorded >> 40 == u64::from(pid) => {
                let mismatch = start_ticks & START_MASK != recorded & START_MASK;
                let seen_before = mismatch && self.suspect == recorded;
                self.suspect = if mismatch { recorded } else { 0 };
                seen_before
            }
            // Not recorded yet (it died between taking the word and recording itself, or is
            // about to record): the process must have started before our first look.
            PidState::Alive { start_ticks } => start_ticks > self.since_ticks,
        }
    }
}

/// The low bits of a start time kept in a holder identity.
const START_MASK: u64 = (1 << 40) - 1;

/// This process (pid `me`) as a lock holder: `pid << 40 | start ticks (low 40 bits)`.
/// Cached per process (a forked child's pid differs from the cached one: it computes its own).
#[inline]
pub(crate) fn my_identity(me: u32) -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static IDENTITY: AtomicU64 = AtomicU64::new(0);
    let cached = IDENTITY.load(Ordering::Relaxed);
    if cached >> 40 == u64::from(me) {
        return cached;
    }
    identity_slow(me, &IDENTITY)
}

#[cold]
fn identity_slow(me: u32, cache: &std::sync::atomic::AtomicU64) -> u64 {
    let identity = u64::from(me) << 40 | (my_start_ticks() & START_MASK);
    cache.store(identity, std::sync::atomic::Ordering::Relaxed);
    identity
}

/// The deadline of one wait slice: `WAIT_SLICE` from now, or `deadline` if sooner.
pub(crate) fn slice_deadline(deadline: Option<Instant>) -> Instant {
    let slice = Instant::now() + WAIT_SLICE;
    deadline.map_or(slice, |d| d.min(slice))
}

/// This process's start time in boot ticks (cached per pid, so a forked child re-reads it).
pub(crate) fn my_start_ticks() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CACHE: AtomicU64 = AtomicU64::new(0); // pid << 42 | ticks (ticks < 2^42: 1,393 years)
    let pid = u64::from(cached_pid());
    let cached = CACHE.load(Ordering::Relaxed);
    if cached >> 42 == pid {
        return cached & ((1 << 42) - 1);
    }
    let ticks = match pid_state(pid as u32) {
        PidState::Alive { start_ticks } => start_ticks & ((1 << 42) - 1),
        PidState::Gone => 0,
    };
    CACHE.store(pid << 42 | ticks, Ordering::Relaxed);
    ticks
}

/// True when the process named by `identity` (from [`my_identity`]) no longer runs: its
/// pid is gone, or now belongs to a process that started at another time.
pub(crate) fn identity_gone(identity: u64) -> bool {
    let pid = (identity >> 40) as u32;
    match pid_state(pid) {
        PidState::Gone => true,
        PidState::Alive { start_ticks } => start_ticks & START_MASK != identity & START_MASK,
    }
}

/// True when the process recorded as (`pid`, started at `start_ticks`) no longer runs.
pub(crate) fn process_gone(pid: u32, start_ticks: u64) -> bool {
    match pid_state(pid) {
        PidState::Gone => true,
        PidState::Alive { start_ticks: now } => now != start_ticks,
    }
}
