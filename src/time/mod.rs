//! Time: [`sleep`], [`yield_now`], and deadlines over blocking code — [`timeout`] and the
//! [`Timeout`] value (in `timeout.rs`).
//!
//! `sleep` arms a timer that unparks the caller at the deadline.

use std::time::{Duration, Instant};

use crate::hub::green::Wait;
#[cfg(feature = "monkey")]
use crate::hub::park::Interrupt;
use crate::hub::timers::TimerAction;
use crate::hub::with_hub;

mod timeout;
pub use timeout::{Elapsed, Timeout, timeout};

/// `now + timeout` as a deadline, or `None` — no deadline — when the sum is past what an
/// `Instant` can hold: Rust code passes `Duration::MAX` to mean "forever", and every
/// `*_timeout` method of greenrt takes it so (one helper, used everywhere).
pub(crate) fn deadline_in(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// `now + duration` for the few places that need an instant, saturated at a century from
/// now (which no program waits out) instead of overflowing.
pub(crate) fn instant_in(duration: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    let now = Instant::now();
    now.checked_add(duration)
        .unwrap_or_else(|| now + CENTURY.min(duration))
}

/// Blocks the current green thread (only it) for at least `duration`.
///
/// `sleep(Duration::ZERO)` is [`yield_now`]: every other ready green thread runs once first,
/// as with gevent's `sleep(0)`.
///
/// ```
/// use std::time::{Duration, Instant};
/// let start = Instant::now();
/// greenrt::sleep(Duration::from_millis(5));
/// assert!(start.elapsed() >= Duration::from_millis(5));
/// ```
pub fn sleep(duration: Duration) {
    if duration.is_zero() {
        return yield_now();
    }
    sleep_until(instant_in(duration));
}

/// Blocks the current green thread until `deadline`.
///
/// ```
/// use std::time::{Duration, Instant};
/// let deadline = Instant::now() + Duration::from_millis(5);
/// greenrt::sleep_until(deadline);
/// assert!(Instant::now() >= deadline);
/// ```
pub fn sleep_until(deadline: Instant) {
    with_hub(|hub| {
        let me = hub.current();
        let _timer = hub.arm_timer(deadline, TimerAction::Wake(me));
        while Instant::now() < deadline {
            hub.park(Wait::Sleep);
        }
    });
}

/// [`sleep_until`] for the `monkey` sleep hooks, which must not unwind: a kill or an expired
/// `timeout` ends the sleep early and is returned (it stays pending for the next park point).
#[cfg(feature = "monkey")]
pub(crate) fn sleep_until_or_interrupt(deadline: Instant) -> Result<(), Interrupt> {
    with_hub(|hub| {
        let me = hub.current();
        let _timer = hub.arm_timer(deadline, TimerAction::Wake(me));
        while Instant::now() < deadline {
            hub.park_or_interrupt(Wait::Sleep)?;
        }
        Ok(())
    })
}

/// Puts the current green thread at the back of the run queue and runs the others first.
///
/// ```
/// use std::{cell::RefCell, rc::Rc};
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let l = log.clone();
/// let h = greenrt::spawn(move || l.borrow_mut().push("child"));
/// log.borrow_mut().push("before yield");
/// greenrt::yield_now();
/// log.borrow_mut().push("after yield");
/// h.join().unwrap();
/// assert_eq!(*log.borrow(), ["before yield", "child", "after yield"]);
/// ```
#[inline]
pub fn yield_now() {
    with_hub(|hub| hub.yield_now());
}
