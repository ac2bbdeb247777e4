//! Time: [`sleep`], [`yield_now`] and [`timeout`].
//!
//! `sleep` arms a timer that unparks the caller at the deadline. `timeout` arms a timer whose
//! action is an *interrupt*: when it fires, the green thread is woken from whatever it is
//! parked on and unwinds (see `hub::park`) up to the `timeout` call, which turns that unwind
//! into `Err(Elapsed)`. Each `timeout` call has its own scope id, so nested timeouts know
//! whose deadline fired: an inner scope passes an outer scope's unwind on untouched.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::{Duration, Instant};

use crate::hub::green::Wait;
#[cfg(feature = "monkey")]
use crate::hub::park::Interrupt;
use crate::hub::park::TimeoutUnwind;
use crate::hub::timers::TimerAction;
use crate::hub::with_hub;

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

/// The error of a [`timeout`] whose deadline passed first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed;

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(_: Elapsed) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, Elapsed)
    }
}

/// Runs `f` with a deadline over everything it blocks on (gevent's `Timeout`).
///
/// If `duration` passes while `f` is parked (sleeping, joining, reading a socket...), the
/// blocking call is interrupted, `f`'s stack unwinds with its destructors running, and
/// `timeout` returns `Err(Elapsed)`. A deadline that passes while `f` computes without
/// blocking takes effect at its next blocking call. Timeouts nest: an inner one firing does
/// not cancel the outer one.
///
/// A blocking call that cannot unwind — a C function interposed by `monkey` (feature `monkey`),
/// such as `read` under `std::net::TcpStream::read` or `nanosleep` under
/// `std::thread::sleep` — is cut short instead: it returns an error (see the `monkey` docs for
/// which), and `timeout` returns `Err(Elapsed)` when `f` returns, whatever `f` made of it.
///
/// ```
/// use std::time::Duration;
/// let slow = greenrt::timeout(Duration::from_millis(10), || greenrt::sleep(Duration::from_secs(5)));
/// assert_eq!(slow, Err(greenrt::Elapsed));
/// let quick = greenrt::timeout(Duration::from_secs(5), || 7);
/// assert_eq!(quick, Ok(7));
/// ```
pub fn timeout<T>(duration: Duration, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
    with_hub(|hub| {
        let me = hub.current();
        let scope = hub.new_scope_id();
        let deadline = instant_in(duration);
        let timer = hub.arm_timer(
            deadline,
            TimerAction::Timeout {
                green: me.clone(),
                scope,
            },
        );
        let outcome = catch_unwind(AssertUnwindSafe(f));
        drop(timer);
        // Our deadline fired but did not unwind `f`: a call that cannot unwind (a `monkey`
        // hook) was cut short by it and returned an error instead. The deadline still won.
        let fired_here = me.timeout_fired.get() == scope;
        if fired_here {
            me.timeout_fired.set(0);
        }
        match outcome {
            Ok(_) if fired_here => Err(Elapsed),
            Ok(value) => Ok(value),
            Err(payload) => match payload.downcast_ref::<TimeoutUnwind>() {
                Some(unwind) if unwind.scope == scope => Err(Elapsed),
                _ => resume_unwind(payload),
            },
        }
    })
}
