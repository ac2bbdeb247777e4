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

/// Counts a running generator or greenlet body as a stack the hub may not park on (see
/// `hub::park::OffHubStack`), for as long as it lives — also when the body unwinds.
pub(crate) use crate::hub::park::OffHubStack as DepthGuard;
