//! Signal handlers that ran on this OS thread, so the hub can interrupt green threads parked
//! in hooked calls as the kernel interrupts a blocked system call (feature `monkey`; the
//! counting trampoline is in `monkey/signals.rs`).
//!
//! The counts live in a thread-local that the signal handler bumps: a const-initialised
//! `Cell` with no destructor is a plain slot in the thread's TLS block, so touching it from a
//! handler is async-signal-safe. The hub reads it after each poll; a green thread parked in a
//! hooked call notes the hub's view when it parks and compares when it wakes.

use std::cell::Cell;

thread_local! {
    /// (handlers that ran on this thread, those of them without `SA_RESTART`).
    static RAN: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Called by the signal trampoline on the thread the signal was delivered to.
#[cfg(feature = "monkey")]
pub(crate) fn handler_ran(restart: bool) {
    RAN.with(|ran| {
        let (all, no_restart) = ran.get();
        ran.set((
            all.wrapping_add(1),
            no_restart.wrapping_add(u64::from(!restart)),
        ));
    });
}

/// The counts so far, for this thread.
pub(crate) fn ran_here() -> (u64, u64) {
    RAN.with(Cell::get)
}

/// What a signal does to a hooked call that waited while it arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivered {
    /// No handler ran.
    None,
    /// Handlers ran, all installed with `SA_RESTART`.
    Restart,
    /// At least one handler without `SA_RESTART` ran.
    Interrupt,
}

/// Compares two snapshots of [`ran_here`] (as the hub saw them).
pub(crate) fn between(before: (u64, u64), after: (u64, u64)) -> Delivered {
    if after.1 != before.1 {
        Delivered::Interrupt
    } else if after.0 != before.0 {
        Delivered::Restart
    } else {
        Delivered::None
    }
}
