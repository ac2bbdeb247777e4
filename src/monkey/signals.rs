//! Signals for green threads: a handled signal interrupts a hooked call the way the kernel
//! interrupts a blocked system call.
//!
//! For a plain thread blocked in `read`, a signal with a handler makes the call fail with
//! `EINTR` after the handler ran — or, if the handler was installed with `SA_RESTART`,
//! restarts it (never for `poll`, `select`, the sleeps, or a socket with
//! `SO_RCVTIMEO`/`SO_SNDTIMEO`: those always fail with `EINTR`; signal(7)). A green thread
//! blocked in a hooked call is parked on the hub instead of in the kernel, so the kernel has
//! nothing to interrupt: the hub must be told a handler ran, and which kind it was.
//!
//! So `sigaction` (and `signal`) are interposed too. A real handler is installed behind a
//! small trampoline that counts, per OS thread, the handlers that ran and those without
//! `SA_RESTART` (`hub::signals`), then calls the user's handler exactly as the kernel would
//! have. The hub compares the counts after every poll (`epoll_wait` itself returns `EINTR`
//! when the handler ran on the hub's thread while it slept) and wakes the green threads parked
//! in hooked calls; each then fails with `EINTR` or goes back to waiting, by the rule above.
//!
//! ```text
//!   kernel ── signal ──> trampoline ── count (this thread) ──> user's handler
//!                                                   │
//!   hub: epoll_wait = EINTR ──> counts changed? ──> unpark green threads in hooked calls
//!                                                   └──> each: EINTR, or wait again (SA_RESTART)
//! ```
//!
//! `sigaction` reports the user's own handler and flags back (never the trampoline), so code
//! that saves and restores a disposition round-trips. Handlers installed inside libc by its
//! internal alias (`system`, `posix_spawn`) are not seen, and are not counted.

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use crate::sys::c::{self, c_int, c_void, siginfo_t};

use crate::sys::raw;

/// Signal numbers 1..=64 (Linux: `SIGRTMAX` is 64).
const SIGNALS: usize = 65;

/// The user's handler for each signal, as installed through us (0 = none of ours).
static HANDLER: [AtomicUsize; SIGNALS] = [const { AtomicUsize::new(0) }; SIGNALS];
/// The user's `sa_flags` for each signal.
static FLAGS: [AtomicI32; SIGNALS] = [const { AtomicI32::new(0) }; SIGNALS];

/// True for a disposition that is a function (not `SIG_DFL`, `SIG_IGN` or `SIG_ERR`).
fn is_function(handler: usize) -> bool {
    handler != c::SIG_DFL && handler != c::SIG_IGN && handler != c::SIG_ERR
}

/// The trampoline's address, taken once: Rust does not promise one address per function
/// (an optimised build may hold copies), and `sigaction` must recognise the one it installed.
fn trampoline_address() -> usize {
    static ADDRESS: AtomicUsize = AtomicUsize::new(0);
    match ADDRESS.load(Ordering::Acquire) {
        0 => {
            let address = trampoline as *const () as usize;
            match ADDRESS.compare_exchange(0, address, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => address,
                Err(first) => first,
            }
        }
        address => address,
    }
}

/// What runs for every signal whose handler was installed through us.
extern "C" fn trampoline(signal: c_int, info: *mut siginfo_t, context: *mut c_void) {
    let saved_errno = raw::errno();
    let Some(index) = usize::try_from(signal).ok().filter(|&i| i < SIGNALS) else {
        return;
    };
    let flags = FLAGS[index].load(Ordering::Acquire);
    crate::hub::signals::handler_ran(flags & c::SA_RESTART != 0);
    raw::set_errno(saved_errno);
    let handler = HANDLER[index].load(Ordering::Acquire);
    if !is_function(handler) {
        return; // replaced by SIG_DFL/SIG_IGN an instant ago
    }
    if flags & c::SA_SIGINFO != 0 {
        // SAFETY: the user installed a three-argument handler; these are the kernel's own
        // arguments for it.
        let f: extern "C" fn(c_int, *mut siginfo_t, *mut c_void) =
            unsafe { std::mem::transmute(handler) };
        f(signal, info, context);
    } else {
        // SAFETY: the user installed a one-argument handler.
        let f: extern "C" fn(c_int) = unsafe { std::mem::transmute(handler) };
        f(signal);
    }
}

/// `sigaction`: a function handler goes in behind the trampoline; `oldact` shows the user's.
///
/// # Safety
/// As sigaction(2): `act` and `oldact` are null or valid.
pub(crate) unsafe fn sigaction(
    signal: c_int,
    act: *const c::SigAction,
    oldact: *mut c::SigAction,
) -> c_int {
    let real = |signal, act, oldact| {
        // SAFETY: forwarded with the caller's contract.
        unsafe { crate::sys::signal::own_sigaction(signal, act, oldact) }
    };
    let Some(index) = usize::try_from(signal)
        .ok()
        .filter(|&i| (1..SIGNALS).contains(&i))
    else {
        return real(signal, act, oldact); // libc reports EINVAL
    };
    let previous = (
        HANDLER[index].load(Ordering::Acquire),
        FLAGS[index].load(Ordering::Acquire),
    );
    // SAFETY: `act` is null or valid by the contract.
    let rc = match unsafe { act.as_ref() } {
        Some(new) if is_function(new.sa_sigaction) => {
            FLAGS[index].store(new.sa_flags, Ordering::Release);
            HANDLER[index].store(new.sa_sigaction, Ordering::Release);
            let mut ours = *new;
            ours.sa_sigaction = trampoline_address();
            ours.sa_flags |= c::SA_SIGINFO;
            real(signal, &ours, oldact) // `ours` lives on this frame
        }
        _ => {
            let rc = real(signal, act, oldact);
            if rc == 0 && !act.is_null() {
                HANDLER[index].store(0, Ordering::Release);
            }
            rc
        }
    };
    // SAFETY: `oldact` is null or valid by the contract.
    if let (0, Some(old)) = (rc, unsafe { oldact.as_mut() })
        && old.sa_sigaction == trampoline_address()
    {
        old.sa_sigaction = previous.0;
        old.sa_flags = previous.1;
    }
    rc
}

/// `signal`: glibc's BSD semantics (`SA_RESTART`, the signal blocked in its own handler),
/// through [`sigaction`].
///
/// # Safety
/// As signal(2).
pub(crate) unsafe fn signal(signal: c_int, handler: c::sighandler_t) -> c::sighandler_t {
    // SAFETY: a zeroed sigaction is a valid "default, empty mask" value.
    let mut new: c::SigAction = unsafe { std::mem::zeroed() };
    new.sa_sigaction = handler;
    new.sa_flags = c::SA_RESTART;
    new.sa_mask = raw::sigset_of(signal);
    // SAFETY: as above.
    let mut old: c::SigAction = unsafe { std::mem::zeroed() };
    // SAFETY: both point to valid sigactions on this frame.
    match unsafe { sigaction(signal, &new, &mut old) } {
        0 => old.sa_sigaction,
        _ => c::SIG_ERR,
    }
}
