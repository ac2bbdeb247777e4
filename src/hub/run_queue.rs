//! The run queue: green threads ready to run, first in first out — or, with a schedule seed
//! (`hub::seed_schedule`, `GREENRT_SEED`), in a pseudo-random order drawn from that seed, so a
//! failure found under one interleaving can be replayed exactly.
//!
//! A `VecDeque` of records behind an `UnsafeCell` rather than a `RefCell`: it is touched on
//! every switch, and its two operations are short, call no user code and cannot re-enter, so
//! the borrow flag would only ever check what the structure already guarantees.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::rc::Rc;

use super::green::Green;

/// See the module docs. Not `Sync` (it holds `Rc`s), so only its hub's thread touches it.
#[derive(Default)]
pub(crate) struct RunQueue {
    queue: UnsafeCell<VecDeque<Rc<Green>>>,
    /// xorshift state; 0 = plain FIFO.
    rng: std::cell::Cell<u64>,
}

/// One xorshift64 step (never returns 0 for a non-zero state).
pub(crate) fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

impl RunQueue {
    /// Appends a ready green thread.
    #[inline]
    pub(crate) fn push(&self, green: Rc<Green>) {
        // SAFETY: no other reference into `queue` is alive: every access is one of these
        // methods, none calls out (an `Rc` clone or drop runs no user code) and none re-enters.
        unsafe { (*self.queue.get()).push_back(green) }
    }

    /// Takes the green thread that has waited longest (or, seeded, a pseudo-random one).
    #[inline]
    pub(crate) fn pop(&self) -> Option<Rc<Green>> {
        if self.rng.get() != 0 {
            return self.pop_seeded();
        }
        // SAFETY: as in `push`.
        unsafe { (*self.queue.get()).pop_front() }
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

    /// How many green threads wait.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        // SAFETY: as in `push`.
        unsafe { (*self.queue.get()).len() }
    }

    /// Moves the `newest` most recently pushed green threads, in their order, to the front:
    /// what a poll woke runs before the backlog (see `run_loop.rs`, "Fair wake-ups").
    pub(crate) fn promote_newest(&self, newest: usize) {
        // SAFETY: as in `push`.
        let queue = unsafe { &mut *self.queue.get() };
        let newest = newest.min(queue.len());
        queue.rotate_right(newest);
    }

    /// Draws the order from `seed` from now on (0 goes back to FIFO).
    pub(crate) fn seed(&self, seed: u64) {
        self.rng.set(if seed == 0 { 0 } else { xorshift(seed) });
    }

    /// Empties the queue, handing back what it held so it can be dropped outside.
    pub(crate) fn take_all(&self) -> VecDeque<Rc<Green>> {
        // SAFETY: as in `push`.
        unsafe { std::mem::take(&mut *self.queue.get()) }
    }
}
