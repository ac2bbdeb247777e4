//! One waiting green thread (or main context, or plain OS thread) in a sync primitive's
//! queue, and how it is woken from any thread.
//!
//! Every primitive in `greenrt::sync` keeps its waiters in a FIFO of `Arc<Waiter>` inside a
//! short-held `std::sync::Mutex`. Waking is *notify, then unpark*: the waker sets `notified`
//! (with whatever it hands over — a lock, a permit — already transferred) and unparks the
//! waiter through its hub: directly if the waker runs on the same hub, through the hub's
//! remote queue and `eventfd` otherwise. The waiter parks until it sees `notified`.
//!
//! ```text
//!   primitive.state: Mutex<{ ..., queue: VecDeque<Arc<Waiter>> }>
//!                                         |
//!   Waiter { green: WakeKey, notified }  --notify()--> unpark (local or remote)
//! ```
//!
//! A plain OS thread waits the same way: its first wait gives it a hub, whose main context
//! parks in `epoll_wait` until the remote unpark arrives.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::hub::green::Wait;
use crate::hub::park::WakeKey;
use crate::hub::timers::TimerAction;
use crate::hub::with_hub;

/// See the module docs.
pub(crate) struct Waiter {
    green: WakeKey,
    notified: AtomicBool,
    /// Set by [`Waiter::mark_granted`]: the notifier reserved something for this waiter (a queue
    /// item or place), as opposed to a plain wake-up (such as a queue's `close`).
    granted: AtomicBool,
}

impl Waiter {
    /// A waiter for the calling green thread (or main context).
    pub(crate) fn for_current() -> Arc<Waiter> {
        Arc::new(Waiter {
            green: WakeKey::current(),
            notified: AtomicBool::new(false),
            granted: AtomicBool::new(false),
        })
    }

    /// True once someone has notified this waiter.
    pub(crate) fn is_notified(&self) -> bool {
        self.notified.load(Ordering::Acquire)
    }

    /// Records that something was reserved for this waiter. Call it *under the primitive's
    /// lock*, in the same critical section that takes the waiter off its queue, and
    /// [`Waiter::notify`] after unlocking: a waiter that gives up (timeout, unwind) and finds
    /// itself off the queue can then always tell a reservation from a plain wake-up.
    pub(crate) fn mark_granted(&self) {
        self.granted.store(true, Ordering::Release);
    }

    /// True if a notifier reserved something for this waiter.
    pub(crate) fn is_granted(&self) -> bool {
        self.granted.load(Ordering::Acquire)
    }

    /// Marks the waiter notified and wakes it. Whatever the notification hands over must be
    /// transferred before this call.
    pub(crate) fn notify(&self) {
        self.notified.store(true, Ordering::Release);
        self.green.wake();
    }

    /// Parks until notified (true) or until `deadline` passes (false). May unwind if the
    /// green thread is killed or a `timeout` fires: callers clean up in a guard.
    pub(crate) fn park(&self, what: Wait, deadline: Option<Instant>) -> bool {
        with_hub(|hub| {
            let _timer = deadline.map(|at| hub.arm_timer(at, TimerAction::Wake(hub.current())));
            let _counted = hub.sync_wait();
            loop {
                if self.is_notified() {
                    return true;
                }
                if deadline.is_some_and(|at| Instant::now() >= at) {
                    return false;
                }
                hub.park(what);
            }
        })
    }
}

/// Takes `waiter` out of `queue` if it is still there (true), or says it has already been
/// taken out by a notifier (false) — then whatever was handed over belongs to the waiter.
pub(crate) fn unqueue(
    queue: &mut std::collections::VecDeque<Arc<Waiter>>,
    waiter: &Arc<Waiter>,
) -> bool {
    match queue.iter().position(|w| Arc::ptr_eq(w, waiter)) {
        Some(i) => {
            queue.remove(i);
            true
        }
        None => false,
    }
}

/// Locks a primitive's internal state. Its critical sections never run user code, so a
/// poisoned lock cannot hold half-updated state: we take it as it is.
pub(crate) fn lock_state<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes a waiter that stopped waiting without being notified (deadline, kill, timeout) out
/// of its queue when dropped. For primitives whose notification hands nothing over.
pub(crate) struct LeaveQueue<'a> {
    pub(crate) queue: &'a std::sync::Mutex<std::collections::VecDeque<Arc<Waiter>>>,
    pub(crate) waiter: &'a Arc<Waiter>,
}

impl Drop for LeaveQueue<'_> {
    fn drop(&mut self) {
        if !self.waiter.is_notified() {
            unqueue(&mut lock_state(self.queue), self.waiter);
        }
    }
}
