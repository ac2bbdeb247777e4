//! The run queue: green threads ready to run, first in first out — or, with a schedule seed
//! (`hub::seed_schedule`, `GREENRT_SEED`), in a pseudo-random order drawn from that seed, so a
//! failure found under one interleaving can be replayed exactly.
//!
//! Two first-in-first-out lanes (see `run_loop.rs`, "Fair wake-ups"):
//!
//! ```text
//!   woken:  what a poll made ready (a timer fired, an fd is ready, another thread or a
//!           signal woke it)                                 ── taken first, FIFO
//!   ready:  everything else: spawned, yielded, unparked by another green thread ── FIFO
//! ```
//!
//! `pop` takes from `woken` first, but never more than [`WOKEN_STREAK`] times in a row while
//! `ready` has something: under a flood of I/O the rest still moves. Seeded, there is one lane.
//!
//! A `VecDeque` of records behind an `UnsafeCell` rather than a `RefCell`: it is touched on
//! every switch, and its two operations are short, call no user code and cannot re-enter, so
//! the borrow flag would only ever check what the structure already guarantees.

use std::cell::{Cell, UnsafeCell};
use std::collections::VecDeque;
use std::rc::Rc;

use super::green::Green;

/// See the module docs. Not `Sync` (it holds `Rc`s), so only its hub's thread touches it.
#[derive(Default)]
pub(crate) struct RunQueue {
    /// The `ready` lane (and the only one when seeded).
    queue: UnsafeCell<VecDeque<Rc<Green>>>,
    /// The `woken` lane.
    woken: UnsafeCell<VecDeque<Rc<Green>>>,
    /// Pushes go to `woken` while the hub handles a poll's events (never when seeded).
    from_poll: Cell<bool>,
    /// `woken` pops in a row while `ready` waited.
    streak: Cell<u32>,
    /// xorshift state; 0 = plain FIFO.
    rng: Cell<u64>,
}

/// The most `woken` pops in a row while `ready` has green threads waiting.
pub(crate) const WOKEN_STREAK: u32 = 61;

/// One xorshift64 step (never returns 0 for a non-zero state).
pub(crate) fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

impl RunQueue {
    /// Appends a ready green thread to its lane.
    #[inline]
    pub(crate) fn push(&self, green: Rc<Green>) {
        let lane = if self.from_poll.get() {
            &self.woken
        } else {
            &self.queue
        };
        // SAFETY: no other reference into the lanes is alive: every access is one of these
        // methods, none calls out (an `Rc` clone or drop runs no user code) and none re-enters.
        unsafe { (*lane.get()).push_back(green) }
    }

    /// While `on`, pushes are wake-ups from a poll (the `woken` lane). Seeded, there is one
    /// lane: the flag stays off (decided here, twice a poll, not at every push).
    pub(crate) fn set_from_poll(&self, on: bool) {
        self.from_poll.set(on && self.rng.get() == 0);
    }

    /// Runs `f` on the first two green threads of the `woken` lane (the one `pop` takes next
    /// while the lane is served, and the one after it, if any) when the lane is not empty.
    /// For prefetching: `f` must not touch the run queue.
    #[inline(always)]
    pub(crate) fn peek_woken(&self, f: impl FnOnce(&Green, Option<&Green>)) {
        // SAFETY: as in `push`, given that `f` does not reach the run queue (the contract
        // above): the references into the lane end before any other access.
        let woken = unsafe { &*self.woken.get() };
        if let Some(next) = woken.front() {
            f(next, woken.get(1).map(|after| &**after));
        }
    }

    /// Takes the next green thread: see the module docs (seeded, a pseudo-random one).
    #[inline]
    pub(crate) fn pop(&self) -> Option<Rc<Green>> {
        if self.rng.get() != 0 {
            return self.pop_seeded();
        }
        // SAFETY: as in `push`.
        let (woken, ready) = unsafe { (&mut *self.woken.get(), &mut *self.queue.get()) };
        if !woken.is_empty() {
            let streak = self.streak.get();
            if streak < WOKEN_STREAK || ready.is_empty() {
                self.streak.set(streak + 1);
                return woken.pop_front();
            }
        }
        self.streak.set(0);
        ready.pop_front()
    }

    #[cold]
    fn pop_seeded(&self) -> Option<Rc<Green>> {
        // SAFETY: as in `push`.
        let queue = unsafe { &mut *self.queue.get() };
        if queue.is_empty() {
            return None;
        }
        let next = xorshift(self.rng.get());
        self.rng.set(next);
        queue.swap_remove_back((next % queue.len() as u64) as usize)
    }

    /// Draws the order from `seed` from now on (0 goes back to FIFO).
    pub(crate) fn seed(&self, seed: u64) {
        self.rng.set(if seed == 0 { 0 } else { xorshift(seed) });
        // SAFETY: as in `push`.
        let (woken, ready) = unsafe { (&mut *self.woken.get(), &mut *self.queue.get()) };
        ready.append(woken); // seeded, there is one lane
    }

    /// Empties the queue, handing back what it held so it can be dropped outside.
    pub(crate) fn take_all(&self) -> VecDeque<Rc<Green>> {
        // SAFETY: as in `push`.
        let (woken, ready) = unsafe { (&mut *self.woken.get(), &mut *self.queue.get()) };
        let mut all = std::mem::take(woken);
        all.append(ready);
        all
    }
}
