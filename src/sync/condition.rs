//! [`Condition`]: wait for a change announced by `notify`, releasing a green [`Mutex`] while
//! waiting (Python's `threading.Condition`, std's `Condvar`).

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::waiter::{LeaveQueue, Waiter, lock_state};
use super::{Mutex, MutexGuard};
use crate::hub::green::Wait;

/// A condition variable for green threads. `wait` takes the guard of a locked
/// [`Mutex`], releases the lock, parks until notified, and locks again before returning.
/// Waiters are notified in FIFO order.
///
/// ```
/// use std::rc::Rc;
/// use greenrt::sync::{Condition, Mutex};
///
/// let pair = Rc::new((Mutex::new(false), Condition::new()));
/// let p = pair.clone();
/// let producer = greenrt::spawn(move || {
///     *p.0.lock() = true;
///     p.1.notify_all();
/// });
/// let ready = pair.1.wait_while(pair.0.lock(), |ready| !*ready);
/// assert!(*ready);
/// drop(ready);
/// producer.join().unwrap();
/// ```
pub struct Condition {
    waiters: std::sync::Mutex<VecDeque<Arc<Waiter>>>,
}

impl Condition {
    /// A condition with no waiters.
    pub const fn new() -> Condition {
        Condition {
            waiters: std::sync::Mutex::new(VecDeque::new()),
        }
    }

    /// Releases the lock, parks until notified (spurious returns are possible: use a loop or
    /// [`Condition::wait_while`]), then locks again.
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.wait_deadline(guard, None).0
    }

    /// Like [`Condition::wait`], for at most `timeout`; the flag is true if it timed out.
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> (MutexGuard<'a, T>, bool) {
        self.wait_deadline(guard, crate::time::deadline_in(timeout))
    }

    /// Waits until `condition` is false (Python's `wait_for` with the test inverted, as
    /// std's `Condvar::wait_while`).
    pub fn wait_while<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> MutexGuard<'a, T> {
        while condition(&mut guard) {
            guard = self.wait(guard);
        }
        guard
    }

    /// Like [`Condition::wait_while`], for at most `timeout`; the flag is true if it timed
    /// out with the condition still true.
    pub fn wait_while_timeout<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        timeout: Duration,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> (MutexGuard<'a, T>, bool) {
        let deadline = crate::time::deadline_in(timeout);
        while condition(&mut guard) {
            let (g, timed_out) = self.wait_deadline(guard, deadline);
            guard = g;
            if timed_out {
                let still = condition(&mut guard);
                return (guard, still);
            }
        }
        (guard, false)
    }

    /// Wakes up to `n` waiters, longest waiting first. Returns how many it woke.
    pub fn notify(&self, n: usize) -> usize {
        let woken: Vec<_> = {
            let mut queue = lock_state(&self.waiters);
            let n = n.min(queue.len());
            queue.drain(..n).collect()
        };
        for waiter in &woken {
            waiter.notify();
        }
        woken.len()
    }

    /// Wakes the longest waiting waiter, if any (std's `Condvar::notify_one`). Returns how
    /// many it woke: 0 or 1.
    pub fn notify_one(&self) -> usize {
        self.notify(1)
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) -> usize {
        self.notify(usize::MAX)
    }

    fn wait_deadline<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> (MutexGuard<'a, T>, bool) {
        let mutex: &'a Mutex<T> = guard.mutex();
        let waiter = Waiter::for_current();
        lock_state(&self.waiters).push_back(waiter.clone());
        drop(guard); // queued first, so a notify between unlock and park is not lost
        let notified = {
            let _leave = LeaveQueue {
                queue: &self.waiters,
                waiter: &waiter,
            };
            waiter.park(
                Wait::Sync("Condition", self as *const Self as usize),
                deadline,
            )
        };
        (mutex.lock(), !notified)
    }
}

impl Default for Condition {
    fn default() -> Condition {
        Condition::new()
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("waiters", &lock_state(&self.waiters).len())
            .finish()
    }
}
