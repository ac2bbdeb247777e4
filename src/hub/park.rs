//! Park and unpark: the one way a green thread waits.
//!
//! Every blocking operation in greenrt — sleep, join, a socket read, a lock — is a loop around
//! [`Hub::park`]: check a condition, and if it does not hold yet, arrange to be unparked when
//! it might, then park. Park/unpark work like a *token* (as in crossbeam's `Parker`): `unpark`
//! makes the token available, `park` consumes it. An unpark that arrives before the park is
//! therefore never lost: the park returns at once. Parks may also return spuriously, which is
//! why every caller re-checks its condition in a loop.
//!
//! Park is also where a green thread can be *interrupted*. `kill` and an expired `timeout`
//! mark the target and make it ready; when it comes back from park it unwinds with a private
//! payload (`KillUnwind`, `TimeoutUnwind`), running destructors up to the green thread's entry
//! or the `timeout` call. While a thread is already unwinding, park never starts a second
//! unwind (that would abort the process).

use std::panic::resume_unwind;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::green::{Green, State, Wait};
use super::reactor::Shared;
use super::signals::{self, Delivered};
use super::slab::Key;
use super::{Hub, with_hub};

/// An interrupt handed back instead of unwound (see [`Hub::park_or_interrupt`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interrupt {
    /// The green thread was killed.
    Kill,
    /// A `timeout` around it fired.
    Timeout,
    /// A signal handler ran on this thread while it waited (`restart`: every handler that
    /// ran had `SA_RESTART`). Not pending afterwards: it interrupts one wait.
    Signal { restart: bool },
}

/// How many nested coroutine bodies the overflow report can name; deeper ones still refuse to
/// park, but an overflow in them gets the plain report.
const GUARDS_KEPT: usize = 16;

thread_local! {
    /// How many bodies run right now on stacks the hub does not switch (generator and
    /// greenlet bodies, nested resumes), on this OS thread.
    static OFF_HUB_DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// The guard regions of those stacks and their kinds, innermost last: what the overflow
    /// report reads. Plain cells in TLS, so a signal handler may read them.
    static OFF_HUB_GUARDS: [std::cell::Cell<(usize, usize, OffHubKind)>; GUARDS_KEPT] =
        const { [const { std::cell::Cell::new((0, 0, OffHubKind::Generator)) }; GUARDS_KEPT] };
}

/// What kind of coroutine body runs on a stack of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OffHubKind {
    Generator,
    Greenlet,
}

impl OffHubKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            OffHubKind::Generator => "Generator",
            OffHubKind::Greenlet => "Greenlet",
        }
    }
}

/// Marks code that runs on a stack of its own *inside* a green thread — a `coro` generator
/// or greenlet body — while it lives. Parking there would have to suspend the green thread
/// from the wrong stack, so park refuses with a clear panic instead; and an overflow of that
/// stack is reported by kind, as a green thread's is by name.
pub(crate) struct OffHubStack;

impl OffHubStack {
    pub(crate) fn enter(kind: OffHubKind, guard: (usize, usize)) -> OffHubStack {
        super::overflow::install();
        let depth = OFF_HUB_DEPTH.with(|d| {
            d.set(d.get() + 1);
            d.get()
        });
        if depth <= GUARDS_KEPT {
            OFF_HUB_GUARDS.with(|g| g[depth - 1].set((guard.0, guard.1, kind)));
        }
        OffHubStack
    }
}

impl Drop for OffHubStack {
    fn drop(&mut self) {
        let depth = OFF_HUB_DEPTH.with(|d| d.replace(d.get() - 1));
        if depth <= GUARDS_KEPT {
            OFF_HUB_GUARDS.with(|g| g[depth - 1].set((0, 0, OffHubKind::Generator)));
        }
    }
}

/// The kind of coroutine body whose stack guard contains `addr`, if one runs on this thread.
/// Async-signal-safe: reads thread-local cells only.
pub(crate) fn off_hub_guard_hit(addr: usize) -> Option<OffHubKind> {
    let depth = OFF_HUB_DEPTH.with(std::cell::Cell::get).min(GUARDS_KEPT);
    OFF_HUB_GUARDS.with(|guards| {
        guards[..depth]
            .iter()
            .map(std::cell::Cell::get)
            .find_map(|(low, high, kind)| (low <= addr && addr < high).then_some(kind))
    })
}

/// Panics with a precise message if called from inside a generator or greenlet body.
#[inline]
fn assert_on_hub_stack() {
    if OFF_HUB_DEPTH.with(std::cell::Cell::get) != 0 {
        off_hub_panic();
    }
}

#[cold]
fn off_hub_panic() -> ! {
    panic!(
        "greenrt: cannot block (sleep, join, socket, park) inside a Generator body: it runs on the \
         generator's own stack; block in the code that resumes it, or use a green thread"
    )
}

/// The unwind payload of a killed green thread.
pub(crate) struct KillUnwind;

/// True for the unwind payloads of a kill or an expired `timeout`: code that catches unwinds
/// (to turn a panic into a value) must let these go on.
pub(crate) fn is_interrupt(payload: &(dyn std::any::Any + Send)) -> bool {
    payload.is::<KillUnwind>() || payload.is::<TimeoutUnwind>()
}

/// The unwind payload of an expired `timeout` scope.
pub(crate) struct TimeoutUnwind {
    pub(crate) scope: u64,
}

/// Starts bringing a parked green thread's record into the cache as it is woken: the run
/// loop reads fields on every line of it when it resumes the thread, and with a thousand green
/// threads that record was last touched a thousand switches ago. Woken now, the thread runs
/// after the rest of this poll's wake-ups, by when the lines are in. Only hints.
#[inline(always)]
fn prefetch_record(green: &Rc<Green>) {
    let record = Rc::as_ptr(green).cast::<u8>();
    for offset in (0..size_of::<Green>()).step_by(64) {
        crate::sys::cpu::prefetch_for_read(record.wrapping_add(offset));
    }
}

/// Starts fetching, for writing, the stack lines `next` will touch first when the hub
/// switches back to it: the switch pops its return address and saved registers from just
/// below where it suspended (`Green::resume_hint`), then returns through the frames above —
/// a socket's wait, its retry loop, the handler's loop — until it parks again. With a
/// thousand green threads woken by I/O, each resumes on a stack last touched a thousand
/// switches ago: fetched only at the switch, its lines (and page-table entries) stalled the
/// first instruction after it — 3% of an echo server's samples at 1,000 connections, where
/// the run loop now issues this one green thread ahead (NOTES §2). The window is 3 lines
/// below the hint and 9 above: a socket wait's frames under an echo handler are ~390 bytes
/// (session 12); 5 lines instead cost 4% more server CPU at 1,000 connections, 19 lines
/// gained nothing more. Only hints: a stale address is harmless.
#[inline(always)]
pub(super) fn prefetch_resume(next: &Green) {
    let hint = next.resume_hint.get();
    if hint == 0 {
        return;
    }
    crate::sys::cpu::prefetch_lines_for_write::<13>(hint.wrapping_sub(192) as *const u8);
}

impl Hub {
    /// Parks the current green thread (or main context) until it is unparked. Unwinds if it
    /// is killed or a `timeout` around it expires.
    #[inline]
    pub(crate) fn park(&self, wait: Wait) {
        assert_on_hub_stack();
        self.with_current(|me| {
            self.check_interrupt(me);
            if me.token.replace(false) {
                return;
            }
            self.suspend_parked(me, wait);
            self.check_interrupt(me);
        })
    }

    /// The park itself, shared by [`Hub::park`] and [`Hub::park_or_interrupt`]: marks `me`
    /// parked on `wait`, switches out, and comes back when unparked.
    #[inline(always)]
    fn suspend_parked(&self, me: &Green, wait: Wait) {
        me.state.set(State::Parked);
        me.wait.set(wait);
        me.parked_at.set(Some(self.counters.clock.get()));
        self.trace.record(me.id, || super::trace::What::Park(wait));
        self.switch_out(me);
        me.wait.set(Wait::Nothing);
    }

    /// Puts `me` at the back of the run queue and switches out: a yield.
    #[inline(always)]
    fn requeue_and_switch(&self, me: &Green) {
        me.state.set(State::Ready);
        self.run_queue.push(self.current());
        self.switch_out(me);
    }

    /// [`Hub::park`] for callers that must not unwind (the `monkey` hooks run inside
    /// `extern "C"` functions): a kill or an expired `timeout` is returned instead, and stays
    /// pending, so the next park point that can unwind does. While the thread is already
    /// unwinding, interrupts are not reported (destructors may block), as with `park`.
    pub(crate) fn park_or_interrupt(&self, wait: Wait) -> Result<(), Interrupt> {
        assert_on_hub_stack();
        self.with_current(|me| {
            if let Some(interrupt) = pending_interrupt(me) {
                // Said before, and the caller came back: let the others run first, so a
                // caller that swallows the error and retries cannot starve the hub.
                self.requeue_and_switch(me);
                return Err(interrupt);
            }
            if me.token.replace(false) {
                return Ok(());
            }
            let signals_before = self.signals_seen.get();
            self.hooked.borrow_mut().push(self.current());
            self.suspend_parked(me, wait);
            self.unlist_hooked(me);
            if let Some(interrupt) = pending_interrupt(me) {
                return Err(interrupt);
            }
            match signals::between(signals_before, self.signals_seen.get()) {
                Delivered::None => Ok(()),
                Delivered::Restart => Err(Interrupt::Signal { restart: true }),
                Delivered::Interrupt => Err(Interrupt::Signal { restart: false }),
            }
        })
    }

    fn unlist_hooked(&self, me: &Green) {
        let mut hooked = self.hooked.borrow_mut();
        if let Some(i) = hooked.iter().position(|g| std::ptr::eq(Rc::as_ptr(g), me)) {
            hooked.swap_remove(i);
        }
    }

    /// After a poll: if a signal handler ran on this thread since the last look, wake every
    /// green thread parked in a hooked call (each decides what the signal means for it).
    pub(crate) fn notice_signals(&self) {
        let now = signals::ran_here();
        if now != self.signals_seen.get() {
            self.signals_seen.set(now);
            let hooked = self.hooked.borrow().clone();
            for green in &hooked {
                self.unpark(green);
            }
        }
    }

    /// Lets every other ready green thread run once, then continues (gevent's `sleep(0)`).
    #[inline(always)]
    pub(crate) fn yield_now(&self) {
        assert_on_hub_stack();
        self.with_current(|me| {
            self.check_interrupt(me);
            self.requeue_and_switch(me);
            self.check_interrupt(me);
        })
    }

    /// Gives up the CPU: a green thread suspends to the main context; the main context runs
    /// the loop until something puts it back in the run queue.
    ///
    /// `me` stays valid across the switch: an unfinished green thread is always in the hub's
    /// `greens` table, which holds an `Rc` to it (see `Hub::with_current`).
    #[inline(always)]
    fn switch_out(&self, me: &Green) {
        if me.is_main {
            self.run_until_main_ready();
        } else {
            me.suspend();
        }
    }

    /// Makes `green` runnable: a parked one joins the back of the run queue; one that is not
    /// parked gets the token, so its next park returns at once.
    pub(crate) fn unpark(&self, green: &Rc<Green>) {
        match green.state.get() {
            State::Parked => {
                green.state.set(State::Ready);
                prefetch_record(green);
                // Who woke it is looked up only while tracing: this is the wake path.
                self.trace.record(green.id, || super::trace::What::Wake {
                    by: self.with_current(|me| if me.is_main { 0 } else { me.id }),
                });
                self.run_queue.push(green.clone());
            }
            State::Running | State::Ready => green.token.set(true),
            State::Finished => {}
        }
    }

    /// Wakes `green` for an interrupt (kill, timeout) without leaving a token behind: the
    /// interrupt itself is noticed at its next park point.
    pub(crate) fn interrupt(&self, green: &Rc<Green>) {
        if green.state.get() == State::Parked {
            green.state.set(State::Ready);
            self.run_queue.push(green.clone());
        }
    }

    /// Unwinds the current green thread if it has been killed or a timeout fired.
    ///
    /// The same test as `pending_interrupt`, written out: built on it (an `Option` of an
    /// enum, then a match) the Event ping-pong bench was ~20% slower — this runs twice per
    /// park.
    #[inline(always)]
    fn check_interrupt(&self, me: &Green) {
        if std::thread::panicking() {
            return;
        }
        if me.kill_requested.get() {
            resume_unwind(Box::new(KillUnwind));
        }
        let scope = me.timeout_fired.get();
        if scope != 0 {
            resume_unwind(Box::new(TimeoutUnwind { scope }));
        }
    }
}

/// A kill or fired timeout not yet acted on (none while unwinding: a second unwind would
/// abort the process).
#[inline(always)]
fn pending_interrupt(me: &Green) -> Option<Interrupt> {
    if std::thread::panicking() {
        None
    } else if me.kill_requested.get() {
        Some(Interrupt::Kill)
    } else if me.timeout_fired.get() != 0 {
        Some(Interrupt::Timeout)
    } else {
        None
    }
}

/// The address of a green thread for waking it from any thread: its hub's shared part and
/// its key there. Unlike an [`Unparker`] it does not keep the hub from reporting a deadlock:
/// greenrt's own wait queues use it, and count their waiters separately (`Hub::sync_wait`).
pub(crate) struct WakeKey {
    shared: Arc<Shared>,
    key: Key,
}

impl WakeKey {
    /// The current green thread's (or main context's).
    pub(crate) fn current() -> WakeKey {
        with_hub(|hub| WakeKey {
            shared: hub.reactor.shared.clone(),
            key: hub.with_current(|me| me.key.get()),
        })
    }

    /// Unparks it: directly on its own hub's thread, through the remote queue elsewhere.
    pub(crate) fn wake(&self) {
        unpark_key(&self.shared, self.key);
    }
}

/// Unparks green thread `key` of the hub owning `shared`, from any thread.
pub(crate) fn unpark_key(shared: &Arc<Shared>, key: Key) {
    let local = super::with_existing_hub(|hub| {
        if !Arc::ptr_eq(&hub.reactor.shared, shared) {
            return false;
        }
        let green = hub.greens.borrow().get(key).cloned();
        if let Some(green) = green {
            hub.unpark(&green);
        }
        true
    });
    if local != Some(true) {
        shared.unpark_remote(key);
    }
}

/// Parks the current green thread until an [`Unparker`] for it is used (or spuriously).
///
/// This is the primitive that greenrt's own blocking calls are made of; use it to build your
/// own. Always call it in a loop that re-checks the condition you wait for.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// let done = Arc::new(AtomicBool::new(false));
/// let unparker = greenrt::hub::unparker();
/// let flag = done.clone();
/// std::thread::spawn(move || {
///     flag.store(true, Ordering::Release);
///     unparker.unpark(); // wakes the main context from another OS thread
/// });
/// while !done.load(Ordering::Acquire) {
///     greenrt::hub::park();
/// }
/// ```
pub fn park() {
    with_hub(|hub| hub.park(Wait::Unpark));
}

/// A handle that wakes the current green thread (or main context) from any OS thread.
pub fn unparker() -> Unparker {
    with_hub(|hub| {
        let key = hub.with_current(|me| me.key.get());
        Unparker::new(hub.reactor.shared.clone(), key)
    })
}

/// Wakes one green thread from any OS thread: `Send + Sync + Clone`.
///
/// `unpark` makes the green thread's park token available; if it is parked it becomes ready.
/// Using an `Unparker` whose green thread has finished does nothing. While an `Unparker`
/// exists, the hub does not report a deadlock, since it might still be used.
pub struct Unparker {
    shared: Arc<Shared>,
    key: Key,
}

impl Unparker {
    fn new(shared: Arc<Shared>, key: Key) -> Unparker {
        shared.unparkers.fetch_add(1, Ordering::AcqRel);
        Unparker { shared, key }
    }

    /// Wakes the green thread: directly when called on its own hub's thread, otherwise
    /// through the hub's remote queue (a mutex push and, if the hub sleeps in `epoll_wait`,
    /// an `eventfd` write).
    pub fn unpark(&self) {
        unpark_key(&self.shared, self.key);
    }
}

impl Clone for Unparker {
    fn clone(&self) -> Unparker {
        Unparker::new(self.shared.clone(), self.key)
    }
}

impl Drop for Unparker {
    fn drop(&mut self) {
        if self.shared.unparkers.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The last one is gone: wake the hub so it can re-check for a deadlock instead of
            // sleeping forever on a wake-up that can no longer come.
            self.shared.notify();
        }
    }
}

impl std::fmt::Debug for Unparker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unparker").field("key", &self.key).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// The resume hint a parked green thread leaves must point into its own stack, near the
    /// top where its frames are: anywhere else, the hub prefetches lines nobody touches.
    #[test]
    fn a_parked_green_thread_leaves_a_resume_hint_in_its_own_stack() {
        let handle = crate::spawn(|| crate::sleep(Duration::from_millis(100)));
        crate::yield_now(); // it runs to its sleep and parks
        let green = handle.green();
        let (start, len) = green.stack_span.get();
        let hint = green.resume_hint.get();
        assert!(len > 0, "a parked green thread has a stack");
        assert!(
            (start..start + len).contains(&hint),
            "hint {hint:#x} outside the stack {start:#x}..{:#x}",
            start + len
        );
        let depth = start + len - hint;
        assert!(
            depth < 16 * 1024,
            "hint {depth} bytes below the stack's top"
        );
        handle.join().unwrap();
    }
}
