//! What a `fork` copies of the green threads: only the stack it runs on.
//!
//! A forked child has one thread, the one that called `fork`, and a fresh hub (see
//! `reset_after_fork`): none of the parent's green threads goes on in it. Their stacks are
//! therefore mapped `MADV_DONTFORK` (`stack.rs`, [`InChildren::Left`]): absent in the
//! child, and not copied. Copying them was what made a fork slow after a burst — the page
//! tables of every parked or pooled stack, 4.4 GB after a million green threads, about a
//! second per `fork`.
//!
//! One of them must be copied: when a green thread forks, the child goes on running on *its*
//! stack. So just before each fork (a `pthread_atfork` prepare handler, run by glibc's
//! `fork` in the forking thread) the running green thread's stack is marked copied, and just
//! after, in the parent, marked left out again:
//!
//! ```text
//!   prepare (parent)          fork                  parent handler
//!   madvise(stack, DOFORK) -> child gets this  ->   madvise(stack, DONTFORK)
//!                             stack and no other    (the child keeps its copy)
//!                             green thread's
//! ```
//!
//! A raw `syscall(SYS_fork)` or `clone` without `CLONE_VM` runs no atfork handler: called
//! on a green thread, its child would find its own stack missing. `vfork` and
//! `posix_spawn` (how `std::process::Command` starts programs) share the parent's memory
//! until `exec` and need nothing.
//!
//! [`InChildren::Left`]: super::stack::InChildren::Left

use crate::sys::{self, mem};

/// The stack of the green thread running on this OS thread, `(start, len)`, if one runs.
fn running_green_stack() -> Option<(usize, usize)> {
    let hub = super::raw_hub();
    if hub.is_null() {
        return None;
    }
    // SAFETY: a non-null hub pointer is valid on its own thread (see `with_hub`) and the
    // handlers run on the forking thread, in ordinary (not signal) context; `current` points
    // to a live record (its invariant).
    let green = unsafe { &*(*hub).current.get() };
    let (start, len) = green.stack_span.get();
    (!green.is_main && len != 0).then_some((start, len))
}

/// Marks the running green thread's stack copied (`copied`) or left out of children.
fn mark_running_stack(copied: bool) {
    if let Some((start, len)) = running_green_stack() {
        // SAFETY: the span is the running green thread's stack mapping, owned by its hub; a
        // child touches it only while it is marked copied (from prepare to parent handler).
        if let Err(e) = unsafe { mem::set_copied_on_fork(start as *mut u8, len, copied) } {
            // Not copied, the child would fault at once on its own stack; say why first.
            sys::signal::write_stderr(b"greenrt: cannot mark the forking green thread's stack (");
            sys::signal::write_stderr(e.kind().to_string().as_bytes());
            sys::signal::write_stderr(b")\n");
        }
    }
}

extern "C" fn before_fork() {
    mark_running_stack(true);
}

extern "C" fn after_fork_in_parent() {
    mark_running_stack(false);
}

extern "C" fn register() {
    sys::process::on_fork(before_fork, after_fork_in_parent);
}

/// Registered by the C runtime before `main` (`.init_array`), while the process has one
/// thread: no fork can come between a stack's `MADV_DONTFORK` and the handlers.
#[used]
#[unsafe(link_section = ".init_array")]
static REGISTER: extern "C" fn() = register;

/// Keeps [`REGISTER`] in the link: a hub calls this when it is made.
pub(crate) fn ensure_registered() {
    std::hint::black_box(&REGISTER);
}
