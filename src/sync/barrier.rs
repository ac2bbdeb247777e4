//! [`Barrier`]: `parties` green threads wait until all of them have arrived, then go on
//! together (Python's `threading.Barrier`, with its semantics).
//!
//! A barrier is a cycle of two phases. While *filling*, arrivals wait; the last one to
//! arrive runs the optional action and switches the barrier to *draining*, which releases
//! every waiter. The barrier fills again only once every waiter of the cycle has left, so a
//! fast thread that comes straight back waits for the next cycle instead of slipping into
//! this one:
//!
//! ```text
//!   filling --(last arrival: action)--> draining --(last one out)--> filling
//!      |                                                               ^
//!      +--(timeout, abort, action panics)--> broken --(reset)----------+
//! ```
//!
//! A barrier is *broken* when a waiter times out, when [`Barrier::abort`] is called, or when
//! the action panics: every waiter, present and future, gets [`BrokenBarrier`] until
//! [`Barrier::reset`]. A `reset` while threads wait breaks the cycle for them (they get
//! `BrokenBarrier`) and leaves the barrier filling for the next one.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::{Duration, Instant};

use super::{Condition, Mutex, MutexGuard};

/// Why a [`Barrier::wait`] did not pass: the barrier is broken (a timeout, an abort, a
/// panicking action, or a reset while this thread waited). Python's `BrokenBarrierError`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BrokenBarrier;

impl fmt::Display for BrokenBarrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the barrier is broken")
    }
}

impl std::error::Error for BrokenBarrier {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Filling,
    Draining,
    /// A reset while threads waited: they leave with `BrokenBarrier`, then it fills again.
    Resetting,
    Broken,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// Threads inside `wait` (arrived and not yet left).
    count: usize,
}

/// A barrier for `parties` green threads (on any OS threads); see the module docs.
///
/// ```
/// use std::rc::Rc;
/// use greenrt::sync::Barrier;
///
/// let barrier = Rc::new(Barrier::new(3));
/// let handles: Vec<_> = (0..3)
///     .map(|_| {
///         let b = barrier.clone();
///         greenrt::spawn(move || b.wait().unwrap()) // each gets its arrival index
///     })
///     .collect();
/// let mut indexes: Vec<usize> = greenrt::joinall(handles).into_iter().map(Result::unwrap).collect();
/// indexes.sort();
/// assert_eq!(indexes, [0, 1, 2]);
/// ```
pub struct Barrier {
    parties: usize,
    action: Option<Box<dyn Fn() + Send + Sync>>,
    timeout: Option<Duration>,
    state: Mutex<State>,
    changed: Condition,
}

impl Barrier {
    /// A barrier for `parties` green threads, with no action and no default timeout.
    ///
    /// # Panics
    /// If `parties` is 0 (Python's `ValueError`).
    pub fn new(parties: usize) -> Barrier {
        assert!(parties > 0, "a Barrier needs at least one party");
        Barrier {
            parties,
            action: None,
            timeout: None,
            state: Mutex::new(State {
                phase: Phase::Filling,
                count: 0,
            }),
            changed: Condition::new(),
        }
    }

    /// Runs `action` in the last thread to arrive, before any is released. If it panics,
    /// the barrier breaks (the others get `BrokenBarrier`) and the panic goes on in that thread.
    pub fn with_action(mut self, action: impl Fn() + Send + Sync + 'static) -> Barrier {
        self.action = Some(Box::new(action));
        self
    }

    /// The timeout a plain [`wait`](Barrier::wait) uses (Python's `timeout=` argument).
    pub fn with_timeout(mut self, timeout: Duration) -> Barrier {
        self.timeout = Some(timeout);
        self
    }

    /// Waits until all parties have arrived. Returns this thread's arrival index,
    /// `0..parties` (the last to arrive, which ran the action, gets `parties - 1`).
    ///
    /// # Errors
    /// [`BrokenBarrier`], if the barrier is or becomes broken (or reset) while waiting, or the
    /// default timeout passes (which breaks it for everyone).
    pub fn wait(&self) -> Result<usize, BrokenBarrier> {
        self.wait_until(self.timeout.and_then(crate::time::deadline_in))
    }

    /// [`wait`](Barrier::wait) for at most `timeout`, then break the barrier.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BrokenBarrier> {
        self.wait_until(crate::time::deadline_in(timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<usize, BrokenBarrier> {
        let mut state = self.wait_for_filling(self.state.lock())?;
        let index = state.count;
        state.count += 1;
        let outcome = if index + 1 == self.parties {
            self.release(state)
        } else {
            self.wait_for_release(state, deadline)
        };
        let mut state = outcome.0;
        state.count -= 1;
        if state.count == 0 && matches!(state.phase, Phase::Draining | Phase::Resetting) {
            state.phase = Phase::Filling; // the last one out: the next cycle may fill
            self.changed.notify_all();
        }
        drop(state);
        match outcome.1 {
            Passed::Yes => Ok(index),
            Passed::Broken => Err(BrokenBarrier),
            Passed::ActionPanicked(payload) => resume_unwind(payload),
        }
    }

    /// Waits while the previous cycle drains or resets (no deadline here, as in CPython: the
    /// draining threads are already on their way out); fails if the barrier is broken.
    fn wait_for_filling<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
    ) -> Result<MutexGuard<'a, State>, BrokenBarrier> {
        while matches!(state.phase, Phase::Draining | Phase::Resetting) {
            state = self.changed.wait(state);
        }
        if state.phase == Phase::Broken {
            return Err(BrokenBarrier);
        }
        Ok(state)
    }

    /// The last arrival: run the action, then release everyone.
    fn release<'a>(&'a self, mut state: MutexGuard<'a, State>) -> (MutexGuard<'a, State>, Passed) {
        if let Some(action) = &self.action
            && let Err(payload) = catch_unwind(AssertUnwindSafe(action))
        {
            self.break_now(&mut state);
            return (state, Passed::ActionPanicked(payload));
        }
        state.phase = Phase::Draining;
        self.changed.notify_all();
        (state, Passed::Yes)
    }

    /// Any other arrival: wait for the release, a break, a reset or the deadline.
    fn wait_for_release<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        deadline: Option<Instant>,
    ) -> (MutexGuard<'a, State>, Passed) {
        loop {
            match state.phase {
                Phase::Draining => return (state, Passed::Yes),
                Phase::Broken | Phase::Resetting => return (state, Passed::Broken),
                Phase::Filling => {}
            }
            let (guard, timed_out) = match deadline {
                None => (self.changed.wait(state), false),
                Some(d) => self
                    .changed
                    .wait_timeout(state, d.saturating_duration_since(Instant::now())),
            };
            state = guard;
            if timed_out && state.phase == Phase::Filling {
                self.break_now(&mut state);
                return (state, Passed::Broken);
            }
        }
    }

    fn break_now(&self, state: &mut State) {
        state.phase = Phase::Broken;
        self.changed.notify_all();
    }

    /// Breaks the barrier: every waiter, and every later `wait`, gets [`BrokenBarrier`] until
    /// [`reset`](Barrier::reset).
    pub fn abort(&self) {
        self.break_now(&mut self.state.lock());
    }

    /// Back to the empty, unbroken state. Threads waiting now get [`BrokenBarrier`].
    pub fn reset(&self) {
        let mut state = self.state.lock();
        state.phase = match (state.count, state.phase) {
            (0, _) => Phase::Filling,
            // The waiters leave broken; the last one out makes it fill.
            (_, Phase::Filling | Phase::Broken) => Phase::Resetting,
            (_, phase) => phase, // draining: those threads have passed; let them leave
        };
        self.changed.notify_all();
    }

    /// How many threads must arrive to pass.
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// How many threads wait now, in the cycle that is filling.
    pub fn n_waiting(&self) -> usize {
        let state = self.state.lock();
        if state.phase == Phase::Filling {
            state.count
        } else {
            0
        }
    }

    /// True once broken (and until reset).
    pub fn is_broken(&self) -> bool {
        self.state.lock().phase == Phase::Broken
    }
}

/// How a `wait` ended.
enum Passed {
    Yes,
    Broken,
    ActionPanicked(Box<dyn std::any::Any + Send>),
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .field("phase", &state.phase)
            .field("waiting", &state.count)
            .finish()
    }
}
