//! [`Generator`]: Python generator semantics on a stackful coroutine.
//!
//! ```text
//!   caller                               generator body (own stack)
//!   ------                               --------------------------
//!   g.resume(None) -- starts ---------->  f(co, None)
//!                  <-- Yielded("") -----  co.yield_("")       (waits for the next value)
//!   g.resume(Some(1)) ----------------->  ... n = Some(1) ...
//!                  <-- Yielded("200 OK")  co.yield_("200 OK")
//!   g.close() ------- unwinds --------->  destructors run, the stack is freed
//! ```
//!
//! The first `resume` starts the body and its value is the body's second argument (Python
//! insists on `send(None)` first; Rust lets you pass something useful). Every later value
//! becomes the result of the `yield_` the body is suspended in. When the body returns, the
//! caller gets `Complete(ret)`; resuming a finished generator panics, like Python's
//! `StopIteration`... except that `Iterator::next` simply returns `None`.

use std::fmt;

use corosensei::{Coroutine, CoroutineResult, Yielder};

use super::DepthGuard;
use crate::hub::DEFAULT_STACK_SIZE;
use crate::hub::park::OffHubKind;
use crate::hub::stack::{GreenStack, InChildren};

/// What one [`Generator::resume`] produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeneratorState<Y, Ret> {
    /// The body yielded this value and waits for the next resume.
    Yielded(Y),
    /// The body returned this value; the generator is finished.
    Complete(Ret),
}

/// The body's handle for yielding: `co.yield_(value)` hands `value` to the caller of `resume`
/// and returns the value of the next `resume`.
#[repr(transparent)]
pub struct Co<Y, R> {
    yielder: Yielder<R, Y>,
}

impl<Y, R> Co<Y, R> {
    /// Hands `value` out and waits; returns what the next `resume` sends in.
    pub fn yield_(&self, value: Y) -> R {
        self.yielder.suspend(value)
    }
}

impl<Y, R> fmt::Debug for Co<Y, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Co")
    }
}

/// A generator yielding `Y`, receiving `R` at each resume, returning `Ret`. See the module docs.
///
/// ```
/// use greenrt::coro::{Generator, GeneratorState};
///
/// // A running total: send numbers in, get the sum so far out.
/// let mut total = Generator::new(|co, first: u32| {
///     let mut sum = first;
///     loop {
///         let next = co.yield_(sum);
///         if next == 0 { return "done"; }
///         sum += next;
///     }
/// });
/// assert_eq!(total.resume(1), GeneratorState::Yielded(1));
/// assert_eq!(total.resume(2), GeneratorState::Yielded(3));
/// assert_eq!(total.resume(0), GeneratorState::Complete("done"));
/// ```
pub struct Generator<Y, R = (), Ret = ()> {
    coro: Coroutine<R, Y, Ret, GreenStack>,
    /// The stack's guard region, for the overflow report.
    guard_range: (usize, usize),
}

impl<Y, R, Ret> Generator<Y, R, Ret>
where
    Y: 'static,
    R: 'static,
    Ret: 'static,
{
    /// Makes a generator with the default stack size; the body does not run yet.
    ///
    /// # Panics
    /// If no stack can be mapped (out of address space).
    pub fn new<F>(body: F) -> Self
    where
        F: FnOnce(&Co<Y, R>, R) -> Ret + 'static,
    {
        let stack = GreenStack::new(DEFAULT_STACK_SIZE, InChildren::Copied)
            .unwrap_or_else(|e| panic!("greenrt: cannot map a generator stack: {e}"));
        let guard_range = stack.guard_range();
        let coro = Coroutine::with_stack(stack, move |yielder: &Yielder<R, Y>, first: R| {
            // SAFETY: `Co` is a `repr(transparent)` wrapper around `Yielder<R, Y>`, so the
            // two references have the same layout and lifetime.
            let co = unsafe { &*(yielder as *const Yielder<R, Y> as *const Co<Y, R>) };
            body(co, first)
        });
        Generator { coro, guard_range }
    }

    /// Runs the body until it yields or returns. The first call starts it with `value`.
    ///
    /// A panic in the body comes out of `resume`, and the generator is finished.
    ///
    /// # Panics
    /// If the generator has already completed (or was closed).
    pub fn resume(&mut self, value: R) -> GeneratorState<Y, Ret> {
        assert!(
            !self.coro.done(),
            "greenrt: resume of a generator that has already completed"
        );
        let _body_runs = DepthGuard::enter(OffHubKind::Generator, self.guard_range);
        match self.coro.resume(value) {
            CoroutineResult::Yield(y) => GeneratorState::Yielded(y),
            CoroutineResult::Return(ret) => GeneratorState::Complete(ret),
        }
    }

    /// True once the body has returned, panicked or been closed.
    pub fn is_complete(&self) -> bool {
        self.coro.done()
    }

    /// Ends the generator now: a suspended body unwinds from its `yield_` (its destructors
    /// run), an unstarted one is dropped. Python's `close()`. Closing twice does nothing.
    pub fn close(&mut self) {
        let _body_runs = DepthGuard::enter(OffHubKind::Generator, self.guard_range); // destructors run on the generator's stack
        self.coro.force_unwind();
    }
}

impl<Y: 'static, Ret: 'static> Iterator for Generator<Y, (), Ret> {
    type Item = Y;

    /// Resumes with `()`: the yielded values, then `None` once the body returns.
    fn next(&mut self) -> Option<Y> {
        if self.coro.done() {
            return None;
        }
        match self.resume(()) {
            GeneratorState::Yielded(y) => Some(y),
            GeneratorState::Complete(_) => None,
        }
    }
}

impl<Y, R, Ret> Drop for Generator<Y, R, Ret> {
    /// Dropping a suspended generator closes it: its body unwinds and its destructors run.
    fn drop(&mut self) {
        let _body_runs = DepthGuard::enter(OffHubKind::Generator, self.guard_range);
        self.coro.force_unwind();
    }
}

impl<Y, R, Ret> fmt::Debug for Generator<Y, R, Ret> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generator")
            .field("started", &self.coro.started())
            .field("complete", &self.coro.done())
            .finish()
    }
}
