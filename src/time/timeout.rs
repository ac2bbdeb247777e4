//! Deadlines over blocking code: the [`timeout`] function and the [`Timeout`] value
//! (gevent's `Timeout`).
//!
//! Both arm a timer whose action is an *interrupt*: when it fires, the green thread is woken
//! from whatever it is parked on and unwinds (see `hub::park`) up to the call that set the
//! deadline — `timeout(d, f)` or `Timeout::run` — which turns that unwind into
//! `Err(Elapsed)`. Each call has its own *scope id*, taken when it starts running `f`, so
//! nested deadlines know whose fired: an inner scope passes an outer scope's unwind on
//! untouched, and when both have fired the outer (older) one wins.
//!
//! The value form separates the deadline from the code it bounds, as gevent's does:
//!
//! ```text
//!   Timeout::new(d)   not started          pending() == false
//!     .start()        deadline = now + d   pending() == true until it passes or is cancelled
//!     .run(f)         f runs with the deadline armed against this green thread; the timer
//!                     is armed only inside run, so one that expires outside any run
//!                     interrupts nobody (Rust has no exception to raise "somewhere")
//!     .cancel()       from f or from another green thread: the deadline is gone
//! ```

use std::cell::Cell;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::hub::Hub;
use crate::hub::park::TimeoutUnwind;
use crate::hub::timers::{TimerAction, TimerKey};
use crate::hub::with_hub;

use super::instant_in;

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
        let scope = hub.new_scope_id();
        let green = hub.current();
        let timer = hub.arm_timer(instant_in(duration), TimerAction::Timeout { green, scope });
        under_scope(hub, scope, f, || drop(timer))
    })
}

/// Runs `f` inside `scope` (whose timer is armed), calls `disarm` when `f` has returned or
/// unwound, and tells whether the scope's deadline won.
fn under_scope<T>(
    hub: &Hub,
    scope: u64,
    f: impl FnOnce() -> T,
    disarm: impl FnOnce(),
) -> Result<T, Elapsed> {
    let me = hub.current();
    let outcome = catch_unwind(AssertUnwindSafe(f));
    disarm();
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
}

/// A deadline as a value: started, cancelled, asked whether it is pending, and put over
/// blocking code with [`run`](Timeout::run) (gevent's `Timeout`).
///
/// `run` is gevent's `with timeout:` block: it starts the deadline if it was not started,
/// runs `f` with it — a blocking call inside `f` still parked when it passes is interrupted
/// and `run` returns `Err(Elapsed)` — and cancels it at the end. The deadline counts from
/// [`start`](Timeout::start), not from `run`, so work done between the two is on the clock.
/// Clones share one deadline: a green thread on the same hub can [`cancel`](Timeout::cancel)
/// another's.
///
/// ```
/// use std::time::Duration;
/// use greenrt::{Elapsed, Timeout, sleep};
///
/// let t = Timeout::new(Duration::from_millis(20));
/// assert!(!t.pending());
/// t.start();
/// assert!(t.pending());
/// assert_eq!(t.run(|| sleep(Duration::from_secs(5))), Err(Elapsed));
/// assert!(!t.pending()); // run cancels it at the end
///
/// let spare = Timeout::start_new(Duration::from_secs(5));
/// assert_eq!(spare.run(|| 7), Ok(7));
/// ```
#[derive(Clone)]
pub struct Timeout {
    state: Rc<TimeoutState>,
}

struct TimeoutState {
    duration: Duration,
    /// Set by `start`, cleared by `cancel` (and at the end of `run`).
    deadline: Cell<Option<Instant>>,
    /// While `run` runs: the armed timer (a stale key, once fired, names nothing).
    armed: Cell<Option<TimerKey>>,
    running: Cell<bool>,
}

impl Timeout {
    /// A timeout of `duration`, not started.
    pub fn new(duration: Duration) -> Timeout {
        Timeout {
            state: Rc::new(TimeoutState {
                duration,
                deadline: Cell::new(None),
                armed: Cell::new(None),
                running: Cell::new(false),
            }),
        }
    }

    /// A timeout of `duration`, started now (gevent's `Timeout.start_new`).
    pub fn start_new(duration: Duration) -> Timeout {
        let timeout = Timeout::new(duration);
        timeout.start();
        timeout
    }

    /// Starts the clock: the deadline is now + the duration.
    ///
    /// # Panics
    /// If it is already pending (as gevent raises): cancel it first to restart it.
    pub fn start(&self) {
        assert!(
            !self.pending(),
            "greenrt: Timeout::start on a pending timeout; cancel it first to restart it"
        );
        self.state
            .deadline
            .set(Some(instant_in(self.state.duration)));
    }

    /// Stops the clock: the deadline is gone, and a [`run`](Timeout::run) in progress goes on
    /// without one. Does nothing if not pending. A deadline that already passed while `run`'s
    /// green thread was parked is too late to cancel: it has been delivered.
    pub fn cancel(&self) {
        self.state.deadline.set(None);
        if let Some(key) = self.state.armed.take() {
            with_hub(|hub| hub.cancel_timer(key));
        }
    }

    /// True from `start` until the deadline passes or the timeout is cancelled.
    pub fn pending(&self) -> bool {
        self.state
            .deadline
            .get()
            .is_some_and(|deadline| Instant::now() < deadline)
    }

    /// The duration it was made with.
    pub fn duration(&self) -> Duration {
        self.state.duration
    }

    /// The deadline, while started and not cancelled (it may have passed).
    pub fn deadline(&self) -> Option<Instant> {
        self.state.deadline.get()
    }

    /// Runs `f` with this deadline over everything it blocks on, as [`timeout`] does, and
    /// cancels it at the end. Starts it first if it was not started; a deadline that has
    /// already passed takes effect at `f`'s first blocking call.
    ///
    /// # Panics
    /// If called from inside `f` of a `run` of the same timeout (clones included).
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
        let _running = RunningFlag::raise(&self.state.running);
        let deadline = match self.state.deadline.get() {
            Some(deadline) => deadline,
            None => {
                self.start();
                self.state.deadline.get().expect("just started")
            }
        };
        with_hub(|hub| {
            let scope = hub.new_scope_id();
            let green = hub.current();
            let key = hub.add_timer(deadline, TimerAction::Timeout { green, scope });
            self.state.armed.set(Some(key));
            under_scope(hub, scope, f, || self.cancel())
        })
    }
}

/// `Timeout::run`'s "in progress" flag, lowered when `run` returns or unwinds (a kill or an
/// outer deadline passes through it).
struct RunningFlag<'a>(&'a Cell<bool>);

impl<'a> RunningFlag<'a> {
    fn raise(flag: &'a Cell<bool>) -> RunningFlag<'a> {
        assert!(
            !flag.replace(true),
            "greenrt: Timeout::run inside a run of the same timeout"
        );
        RunningFlag(flag)
    }
}

impl Drop for RunningFlag<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("duration", &self.state.duration)
            .field("pending", &self.pending())
            .finish()
    }
}
