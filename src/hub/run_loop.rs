//! The hub loop: run ready green threads, then wait for the nearest timer or I/O.
//!
//! It runs only on the main context's stack, inside a blocking call, and returns as soon as
//! the main context itself comes out of the run queue:
//!
//! ```text
//!   loop:
//!     pop the front of the run queue
//!       - main?            -> return (the blocking call can go on)
//!       - a green thread?  -> resume it until it parks, yields or finishes
//!       - nothing?         -> timeout = nearest timer; nothing can ever wake us? deadlock report
//!                             poll(timeout); make ready what I/O (`io.rs`), signals
//!                             (`signals.rs`) and other threads woke; fire due timers
//! ```
//!
//! A busy run queue must not starve I/O and timers, so every `POLL_INTERVAL` resumes the loop
//! also polls without blocking (tokio's `event_interval` plays the same role).
//!
//! **Fair wake-ups.** What a poll makes ready — green threads whose timer fired, whose fd is
//! ready, whom another OS thread or a signal woke — joins the run queue's *woken* lane, which
//! runs ahead of everything else (`run_queue.rs`). Without it, in a burst (100,000 green
//! threads spawned at once, each sleeping a moment) a sleeper whose timer fired waited behind
//! tens of thousands of green threads that had not even started: p99 lateness of tens to
//! hundreds of milliseconds. The woken lane is itself first in first out — a first version
//! put each poll's wake-ups at the very front, and under a steady flood of I/O (an echo server
//! at 1,000 connections) newer wake-ups kept jumping older ones: p99 67 ms instead of 16 —
//! and it yields to the other lane after `WOKEN_STREAK` turns in a row, so the rest still
//! moves. Everything green threads do to each other (spawn, `yield_now` / `sleep(0)`, a mutex
//! or an event handing over) stays in one first-in-first-out lane: `sleep(0)` still lets every
//! other ready green thread run once, and gevent's orders hold. This is gevent's order too —
//! its loop runs the callbacks queued so far, then polls, and the watchers that fired switch
//! to their greenlets before the next round of callbacks.

use std::rc::Rc;
use std::time::{Duration, Instant};

use corosensei::CoroutineResult;

use super::Hub;
use super::green::{Green, State};
use super::reactor::Until;
use super::timers::TimerAction;

/// Resumes between two non-blocking polls while the run queue stays busy.
const POLL_INTERVAL: u32 = 61;

/// How many turns a green thread's first run counts for (see `first_run`).
const FIRST_RUN_WEIGHT: u32 = 4;

/// The longest slice of an idle moment the hub spends giving stacks back (`stack.rs`).
const TRIM_SLICE: Duration = Duration::from_micros(500);

/// Time kept free before the next timer when the hub trims (a slice may overrun a little).
const TRIM_MARGIN: Duration = Duration::from_micros(200);

impl Hub {
    /// Runs everything else until the main context is made ready. See the module docs.
    pub(crate) fn run_until_main_ready(&self) {
        loop {
            let next = self.run_queue.pop();
            match next {
                Some(green) if green.is_main => {
                    green.state.set(State::Running);
                    // Main's own turns count too: a main context that only yields must not
                    // keep timers and I/O from ever being looked at.
                    self.count_turn();
                    return;
                }
                Some(green) => {
                    self.prefetch_woken_ahead();
                    self.resume(green)
                }
                None => self.wait_for_work(),
            }
        }
    }

    /// While the green thread about to run runs, fetches the stack lines the next woken one
    /// resumes on, and the record line of the one after, where that one's hint is (see
    /// `park::prefetch_resume`). Only the `woken` lane: green threads that yield take turns
    /// in few stacks that stay in the cache, and pay nothing for this.
    #[inline(always)]
    fn prefetch_woken_ahead(&self) {
        self.run_queue.peek_woken(|next, after| {
            super::park::prefetch_resume(next);
            if let Some(after) = after {
                crate::sys::cpu::prefetch_for_read(after.resume_hint.as_ptr().cast::<u8>());
            }
        });
    }

    /// Switches to `green` until it suspends or finishes.
    #[inline(always)]
    fn resume(&self, green: Rc<Green>) {
        green.state.set(State::Running);
        let previous = self.set_current(&green);
        self.observe_run(&green);
        let result = if let Some(coro) = green.coro.borrow_mut().as_mut() {
            coro.resume(())
        } else {
            self.first_run(&green)
        };
        self.observe_stop(&green);
        self.current.set(previous);
        if let CoroutineResult::Return(()) = result {
            self.finish(&green);
        }
        self.count_turn();
    }

    /// The first run of a green thread whose start was deferred (spawned while no stack was
    /// pooled): its stack is taken now, most often one a finished green thread just gave
    /// back. Without a stack it finishes at once (its join says `NoStack`).
    #[cold]
    #[inline(never)]
    fn first_run(&self, green: &Rc<Green>) -> CoroutineResult<(), ()> {
        let start = green
            .start
            .take()
            .expect("a ready green thread has a coroutine or a deferred start");
        // A first run may fault in a fresh stack page (microseconds, not nanoseconds): it
        // counts as FIRST_RUN_WEIGHT turns, so a burst of them still polls every ~100 µs.
        self.resumes_since_poll
            .set(self.resumes_since_poll.get() + FIRST_RUN_WEIGHT - 1);
        match start.start(self, green) {
            Some(coro) => {
                let mut slot = green.coro.borrow_mut();
                slot.insert(coro).resume(())
            }
            None => CoroutineResult::Return(()),
        }
    }

    /// Counts one turn on the CPU; every `POLL_INTERVAL` turns, polls without blocking.
    #[inline(always)]
    fn count_turn(&self) {
        let turns = self.resumes_since_poll.get() + 1;
        if turns >= POLL_INTERVAL {
            self.poll_and_fire(Until::Now);
        } else {
            self.resumes_since_poll.set(turns);
        }
    }

    /// Retires a green thread whose function has returned: frees its slot, recycles its
    /// stack and wakes whoever joins it.
    fn finish(&self, green: &Rc<Green>) {
        self.trace.record(green.id, || super::trace::What::Exit);
        green.state.set(State::Finished);
        self.greens.borrow_mut().remove(green.key.get());
        if let Some(coro) = green.coro.borrow_mut().take() {
            self.stacks.borrow_mut().give_back(coro.into_stack());
        }
        let waiters = std::mem::take(&mut *green.exit_waiters.borrow_mut());
        for waiter in waiters.iter() {
            self.unpark(waiter);
        }
    }

    /// The run queue is empty: block until a timer is due or I/O or another thread wakes
    /// something. If nothing ever could, report the deadlock instead of hanging.
    fn wait_for_work(&self) {
        let next_timer = self.timers.borrow_mut().next_deadline();
        // The cheap look first: a timer, awaited I/O or a live `Unparker` can wake us, and then
        // the other threads need not be counted (a read of /proc each time the hub idles).
        // Otherwise order matters: count the other threads *before* looking for pending
        // wake-ups again. A thread may wake us and exit between the two looks; read the other
        // way round we would miss its wake-up and then find it gone, and report a deadlock
        // that is not.
        if next_timer.is_none() && !self.can_be_woken() {
            let sync_wake_possible = self.sync_wake_possible();
            if !sync_wake_possible && !self.can_be_woken() {
                self.report_deadlock();
            }
        }
        let until = self.trim_stacks(next_timer);
        self.poll_and_fire(until);
    }

    /// About to sleep until `next_timer`: a moment to give surplus stacks back (`stack.rs`),
    /// in a slice that ends well before that timer. Returns how long to sleep.
    fn trim_stacks(&self, next_timer: Option<Instant>) -> Until {
        let now = Instant::now();
        let stop = match next_timer {
            None => now + TRIM_SLICE,
            Some(at) => (now + TRIM_SLICE).min(at.checked_sub(TRIM_MARGIN).unwrap_or(now)),
        };
        let back = self.stacks.borrow_mut().trim_when_idle(now, stop);
        match (next_timer, back) {
            (Some(at), Some(back)) => Until::Deadline(at.min(back)),
            (Some(at), None) | (None, Some(at)) => Until::Deadline(at),
            (None, None) => Until::Forever,
        }
    }

    /// One turn of the reactor: poll (see [`Until`]), then fire due timers.
    pub(crate) fn poll_and_fire(&self, until: Until) {
        self.resumes_since_poll.set(0);
        self.run_queue.set_from_poll(true);
        self.counters.polls.set(self.counters.polls.get() + 1);
        let nothing_to_poll = until == Until::Now && !self.can_be_woken();
        if !nothing_to_poll {
            self.observe_poll(|| {
                self.reactor.poll(until, &mut |key, dir, closed| {
                    self.io_event(key, dir, closed)
                })
            });
        }
        self.notice_signals();
        self.take_remote_requests();
        self.fire_timers();
        self.run_queue.set_from_poll(false);
        self.observe_after_poll();
    }

    /// What other OS threads asked of this hub: sockets they closed, green threads to unpark.
    fn take_remote_requests(&self) {
        let (closed, unparks) = self.reactor.take_remote();
        for key in closed {
            self.io_forget(key);
        }
        for key in unparks {
            let green = self.greens.borrow().get(key).cloned();
            if let Some(green) = green {
                self.unpark(&green);
            }
        }
    }

    /// True while something outside the run queue and timers could still wake a green
    /// thread: a waiter on an fd, a live `Unparker`, or a queued remote unpark.
    fn can_be_woken(&self) -> bool {
        self.io_waiting() > 0 || self.reactor.remote_wake_possible()
    }

    /// Runs the action of every timer whose deadline has passed.
    fn fire_timers(&self) {
        let now = Instant::now();
        self.counters.clock.set(now);
        loop {
            let due = self.timers.borrow_mut().pop_due(now);
            match due {
                None => return,
                Some(TimerAction::Wake(green)) => self.unpark(&green),
                Some(TimerAction::Waker(waker)) => waker.wake(),
                Some(TimerAction::Timeout { green, scope }) => {
                    let fired = green.timeout_fired.get();
                    if fired == 0 || scope < fired {
                        green.timeout_fired.set(scope); // the outermost expired scope wins
                    }
                    self.interrupt(&green);
                }
            }
        }
    }
}
