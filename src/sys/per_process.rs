//! Globals that belong to one process, not to its forks.
//!
//! A `fork` copies every global, including a mutex some other thread held at that instant
//! (the child has no such thread: the mutex stays locked forever) and a `Once` that was
//! running. [`PerProcess`] sidesteps both: it tags its value with the pid that made it, and a
//! forked child that finds another pid's value makes its own, leaving the inherited one
//! untouched (leaked).

use std::sync::atomic::{AtomicPtr, Ordering};

use crate::sys::process::cached_pid;

/// A lazily made value per process; see the module docs.
pub(crate) struct PerProcess<T> {
    current: AtomicPtr<(u32, T)>,
}

impl<T> PerProcess<T> {
    pub(crate) const fn new() -> PerProcess<T> {
        PerProcess {
            current: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// This process's value, made with `init` on first use in this process.
    pub(crate) fn get(&self, init: impl FnOnce() -> T) -> &T {
        let pid = cached_pid();
        let current = self.current.load(Ordering::Acquire);
        // SAFETY: a non-null pointer came from Box::into_raw below and is never freed.
        if let Some((owner, value)) = unsafe { current.as_ref() }
            && *owner == pid
        {
            return value;
        }
        let fresh = Box::into_raw(Box::new((pid, init())));
        match self
            .current
            .compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire)
        {
            // SAFETY: just published; never freed.
            Ok(_) => unsafe { &(*fresh).1 },
            Err(winner) => {
                // SAFETY: `fresh` came from Box::into_raw above and was never shared.
                drop(unsafe { Box::from_raw(fresh) });
                // SAFETY: `winner` was published by another thread of this process; never freed.
                unsafe { &(*winner).1 }
            }
        }
    }
}

/// A "run this once" flag that never makes anyone wait, unlike `std::sync::Once`: a thread
/// that finds another one running the function goes on without it. That is what one-time
/// installations (signal handlers, the panic hook) need in a program that forks: a child
/// forked while another thread ran a `Once` would wait for that thread forever.
pub(crate) struct OnceFlag(std::sync::atomic::AtomicU8);

impl OnceFlag {
    pub(crate) const fn new() -> OnceFlag {
        OnceFlag(std::sync::atomic::AtomicU8::new(0))
    }

    /// Runs `f` if no thread has started it yet; never waits.
    pub(crate) fn run(&self, f: impl FnOnce()) {
        if self
            .0
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            f();
            self.0.store(2, Ordering::Release);
        }
    }
}
