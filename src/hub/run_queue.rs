//! The run queue: green threads ready to run, first in first out.
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
}

impl RunQueue {
    /// Appends a ready green thread.
    #[inline]
    pub(crate) fn push(&self, green: Rc<Green>) {
        // SAFETY: no other reference into `queue` is alive: every access is one of these
        // methods, none calls out (an `Rc` clone or drop runs no user code) and none re-enters.
        unsafe { (*self.queue.get()).push_back(green) }
    }

    /// Takes the green thread that has waited longest.
    #[inline]
    pub(crate) fn pop(&self) -> Option<Rc<Green>> {
        // SAFETY: as in `push`.
        unsafe { (*self.queue.get()).pop_front() }
    }

    /// Empties the queue, handing back what it held so it can be dropped outside.
    pub(crate) fn take_all(&self) -> VecDeque<Rc<Green>> {
        // SAFETY: as in `push`.
        unsafe { std::mem::take(&mut *self.queue.get()) }
    }
}
