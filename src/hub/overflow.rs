//! Reporting a green thread's stack overflow.
//!
//! The guard region under each stack (see `stack.rs`) turns an overflow into a SIGSEGV. Our
//! fault hook, running on the alternate signal stack, checks whether the faulting address lies
//! in the guard region of the green thread that is running on this OS thread. If so it prints
//!
//! ```text
//! green thread '<name>' (id N) has overflowed its stack
//! fatal runtime error: stack overflow, aborting
//! ```
//!
//! and aborts, as std does for OS threads. A `coro` Generator or Greenlet body runs on a
//! guarded stack of its own; an overflow there is reported by its kind (`a Generator has
//! overflowed its stack`, and inside which green thread). Anything else goes to the previous
//! handler.
//! Everything here must be async-signal-safe: no allocation, no locks, only `write(2)`.

use crate::sys::signal;

pub(crate) fn install() {
    signal::install_fault_hook(is_green_overflow);
}

fn is_green_overflow(fault_addr: usize) -> bool {
    if let Some(kind) = super::park::off_hub_guard_hit(fault_addr) {
        report_coroutine_overflow(kind);
        return true;
    }
    let hub = super::raw_hub();
    if hub.is_null() {
        return false;
    }
    // SAFETY: a non-null hub pointer is valid on its own thread (see `with_hub`) and the
    // fault happened on this thread; `current` points to a live record (its invariant). The
    // fault is synchronous, so no field we read is half-written, and we abort right after.
    let green = unsafe { &*(*hub).current.get() };
    let Some((low, high)) = green.guard_range() else {
        return false; // the main context, or no stack of its own
    };
    if fault_addr < low || fault_addr >= high {
        return false;
    }
    let mut digits = [0u8; 20];
    signal::write_stderr(b"\ngreen thread '");
    signal::write_stderr(green.display_name().as_bytes());
    signal::write_stderr(b"' (id ");
    signal::write_stderr(format_u64(green.id, &mut digits));
    signal::write_stderr(
        b") has overflowed its stack\nfatal runtime error: stack overflow, aborting\n",
    );
    true
}

/// A `coro` Generator's or Greenlet's stack overflowed: say which kind, and on which green
/// thread it ran if it ran on one.
fn report_coroutine_overflow(kind: super::park::OffHubKind) {
    signal::write_stderr(b"\ngreenrt: a ");
    signal::write_stderr(kind.name().as_bytes());
    signal::write_stderr(b" has overflowed its stack");
    let hub = super::raw_hub();
    if !hub.is_null() {
        // SAFETY: as in `is_green_overflow`.
        let green = unsafe { &*(*hub).current.get() };
        if !green.is_main {
            let mut digits = [0u8; 20];
            signal::write_stderr(b" (inside green thread '");
            signal::write_stderr(green.display_name().as_bytes());
            signal::write_stderr(b"', id ");
            signal::write_stderr(format_u64(green.id, &mut digits));
            signal::write_stderr(b")");
        }
    }
    signal::write_stderr(b"\nfatal runtime error: stack overflow, aborting\n");
}

/// Formats `n` in decimal into `buf` without allocating.
fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}
