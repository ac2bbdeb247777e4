//! The hub's timers: a binary min-heap of deadlines over a slab of actions.
//!
//! * insert: push `(deadline, seq, key)` on the heap and the action in the slab — O(log n);
//! * cancel: remove the action from the slab — O(1); its heap entry becomes *stale* and is
//!   skipped when it reaches the top. If stale entries come to outnumber live ones, the heap
//!   is rebuilt in O(n), so cancelled timers (a read timeout on every read, say) cannot make
//!   it grow without bound;
//! * fire: pop every entry whose deadline has passed and whose action is still in the slab.
//!
//! `seq` breaks ties between equal deadlines in insertion order, so timers that are due at
//! the same instant fire first-come first-served.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::rc::Rc;
use std::time::Instant;

use super::green::Green;
use super::slab::{Key, Slab};

/// What a timer does when it fires.
pub(crate) enum TimerAction {
    /// Unpark this green thread (a sleep, a delayed start, an I/O timeout).
    Wake(Rc<Green>),
    /// Interrupt this green thread for the `timeout` scope with this id.
    Timeout { green: Rc<Green>, scope: u64 },
    /// Wake a `std::task::Waker` (the `bridge::Sleep` future).
    Waker(std::task::Waker),
}

/// Names a timer so it can be cancelled.
pub(crate) type TimerKey = Key;

/// See the module docs.
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    actions: Slab<TimerAction>,
    next_seq: u64,
    /// With a schedule seed: xorshift state that orders timers with equal deadlines.
    tiebreak: u64,
}

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            heap: BinaryHeap::new(),
            actions: Slab::new(),
            next_seq: 0,
            tiebreak: 0,
        }
    }

    /// Orders timers with equal deadlines pseudo-randomly from `seed` (0: insertion order).
    pub(crate) fn seed(&mut self, seed: u64) {
        self.tiebreak = if seed == 0 {
            0
        } else {
            super::run_queue::xorshift(seed ^ 0x9e37_79b9_7f4a_7c15)
        };
    }

    /// How many timers are armed.
    pub(crate) fn len(&self) -> usize {
        self.actions.len()
    }

    /// Arms a timer.
    pub(crate) fn insert(&mut self, deadline: Instant, action: TimerAction) -> TimerKey {
        let key = self.actions.insert(action);
        self.next_seq += 1;
        let order = if self.tiebreak != 0 {
            self.tiebreak = super::run_queue::xorshift(self.tiebreak);
            self.tiebreak
        } else {
            self.next_seq
        };
        self.heap.push(Reverse((deadline, order, key.to_usize())));
        key
    }

    /// Disarms a timer; a timer that already fired or was cancelled is ignored.
    pub(crate) fn cancel(&mut self, key: TimerKey) {
        if self.actions.remove(key).is_some() && self.heap.len() > 2 * self.actions.len() + 64 {
            let actions = &self.actions;
            self.heap
                .retain(|Reverse((_, _, raw))| actions.get(Key::from_usize(*raw)).is_some());
        }
    }

    /// The earliest armed deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((deadline, _, raw))) = self.heap.peek() {
            if self.actions.get(Key::from_usize(*raw)).is_some() {
                return Some(*deadline);
            }
            self.heap.pop(); // stale: cancelled earlier
        }
        None
    }

    /// Takes the action of one timer due at `now`, if any.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<TimerAction> {
        while let Some(Reverse((deadline, _, raw))) = self.heap.peek() {
            if *deadline > now {
                return None;
            }
            let key = Key::from_usize(*raw);
            self.heap.pop();
            if let Some(action) = self.actions.remove(key) {
                return Some(action);
            }
        }
        None
    }
}
