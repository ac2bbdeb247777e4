//! [`Event`]: a flag green threads can wait for (Python's `threading.Event`, gevent's
//! `Event`).

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::waiter::{LeaveQueue, Waiter, lock_state};
use crate::hub::green::Wait;

/// A flag that starts cleared; `wait` parks until it is set. Setting wakes every waiter.
/// Works across OS threads: a plain thread may `set` while green threads `wait`.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use greenrt::sync::Event;
///
/// let light = Arc::new(Event::new());
/// let l = light.clone();
/// std::thread::spawn(move || {
///     std::thread::sleep(Duration::from_millis(10));
///     l.set(); // another OS thread turns the light green
/// });
/// light.wait();
/// assert!(light.is_set());
/// ```
pub struct Event {
    flag: AtomicBool,
    waiters: std::sync::Mutex<VecDeque<Arc<Waiter>>>,
}

impl Event {
    /// A new, cleared event.
    pub const fn new() -> Event {
        Event {
            flag: AtomicBool::new(false),
            waiters: std::sync::Mutex::new(VecDeque::new()),
        }
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        let waiters = {
            let mut queue = lock_state(&self.waiters);
            self.flag.store(true, Ordering::Release);
            std::mem::take(&mut *queue)
        };
        for waiter in waiters {
            waiter.notify();
        }
    }

    /// Clears the flag; later `wait`s park again.
    pub fn clear(&self) {
        self.flag.store(false, Ordering::Release);
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Parks until the flag is set (returns at once if it is).
    pub fn wait(&self) {
        self.wait_deadline(None);
    }

    /// Parks until the flag is set or `timeout` passes; returns whether it was set, as
    /// Python's `Event.wait(timeout)` does.
    ///
    /// ```
    /// let e = greenrt::sync::Event::new();
    /// assert!(!e.wait_timeout(std::time::Duration::from_millis(5)));
    /// e.set();
    /// assert!(e.wait_timeout(std::time::Duration::from_millis(5)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_deadline(crate::time::deadline_in(timeout))
    }

    fn wait_deadline(&self, deadline: Option<Instant>) -> bool {
        if self.is_set() {
            return true;
        }
        let waiter = Waiter::for_current();
        {
            let mut queue = lock_state(&self.waiters);
            if self.flag.load(Ordering::Acquire) {
                return true;
            }
            queue.push_back(waiter.clone());
        }
        let _leave = LeaveQueue {
            queue: &self.waiters,
            waiter: &waiter,
        };
        waiter.park(Wait::Sync("Event", self as *const Self as usize), deadline) || self.is_set()
    }
}

impl Default for Event {
    fn default() -> Event {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .field("waiters", &lock_state(&self.waiters).len())
            .finish()
    }
}

/// Ready once set.
impl crate::Waitable for Event {
    fn is_ready(&self) -> bool {
        self.is_set()
    }

    fn watch<'a>(&'a self, watcher: &crate::Watcher) -> crate::Watching<'a> {
        crate::Watching::list(&self.waiters, watcher)
    }
}
