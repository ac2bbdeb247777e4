//! Coroutines you drive by hand, next to the green threads the hub drives for you.
//!
//! * [`Generator`]: Python's generators — `resume(value)` runs the body until it yields a
//!   value out (and waits for the next value in) or returns.
//! * [`Greenlet`]: the greenlet library's symmetric `switch`, built on a trampoline.
//!
//! A generator (or greenlet) runs on its own stack, but *inside* whichever green thread (or main context)
//! resumes it, and it gives control back only to that caller. It must therefore not block on
//! the hub (sleep, join, a socket): that would have to suspend the green thread from the
//! generator's stack. greenrt refuses that with a clear panic instead of switching stacks in
//! an order corosensei does not define.

mod generator;
mod greenlet;

pub use generator::{Co, Generator, GeneratorState};
pub use greenlet::Greenlet;

use std::cell::Cell;

thread_local! {
    /// How many generator bodies are running on this OS thread right now (nested resumes).
    static GENERATOR_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Panics with a precise message if called from inside a generator body. The hub calls this
/// before every park.
#[inline]
pub(crate) fn assert_not_in_generator() {
    if GENERATOR_DEPTH.with(Cell::get) != 0 {
        in_generator_panic();
    }
}

#[cold]
fn in_generator_panic() -> ! {
    panic!(
        "greenrt: cannot block (sleep, join, socket, park) inside a Generator body: it runs on the \
         generator's own stack; block in the code that resumes it, or use a green thread"
    )
}

/// Counts a running generator body for as long as it lives (also when the body unwinds).
struct DepthGuard;

impl DepthGuard {
    fn enter() -> DepthGuard {
        GENERATOR_DEPTH.with(|d| d.set(d.get() + 1));
        DepthGuard
    }
}

impl Drop for DepthGuard {
    fn drop(&mut self) {
        GENERATOR_DEPTH.with(|d| d.set(d.get() - 1));
    }
}
