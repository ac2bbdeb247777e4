//! What the run loop tells the people watching it: the trace recorder (`trace.rs`), the stall
//! watchdog's beat (`watchdog.rs`) and the SIGUSR1 dump. The loop calls these four hooks and
//! nothing else of them, so it reads as the scheduler alone; each hook costs a relaxed load
//! or two while its observer is off.

use std::sync::atomic::Ordering;

use super::Hub;
use super::green::Green;
use super::trace::{self, What};

impl Hub {
    /// `green` is about to run.
    #[inline(always)]
    pub(super) fn observe_run(&self, green: &Green) {
        self.beat.enter(green.id, green.spawned_at);
        self.trace.record(green.id, || What::Run);
    }

    /// `green` stopped running (parked, yielded or finished).
    #[inline(always)]
    pub(super) fn observe_stop(&self, green: &Green) {
        self.trace.record(green.id, || What::Stop);
        if let Some(ran_ms) = self.beat.leave() {
            super::watchdog::report_ended(green, &self.beat, ran_ms);
        }
    }

    /// Runs one reactor poll, timing it for the trace when tracing is on.
    #[inline]
    pub(super) fn observe_poll(&self, poll: impl FnOnce() -> usize) {
        let started = trace::ON.load(Ordering::Relaxed).then(trace::now_ns);
        let events = poll();
        if let Some(t0) = started {
            let took_ns = trace::now_ns().saturating_sub(t0);
            self.trace.record(self.main.id, || What::Poll {
                events: events as u64,
                took_ns,
            });
        }
    }

    /// After a turn of the reactor: answer a pending SIGUSR1 dump request.
    #[inline]
    pub(super) fn observe_after_poll(&self) {
        if self.beat.dump_requested.load(Ordering::Relaxed) {
            self.answer_dump_request();
        }
    }

    /// SIGUSR1 asked for a dump (see `watchdog::dump_on_sigusr1`).
    #[cold]
    fn answer_dump_request(&self) {
        if self.beat.dump_requested.swap(false, Ordering::AcqRel) {
            // Straight to fd 2, like the fault reports: not through a captured `eprint!`.
            crate::sys::signal::write_stderr(super::stats::dump().as_bytes());
        }
    }
}
