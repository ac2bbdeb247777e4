//! The hub: one scheduler per OS thread.
//!
//! The hub owns everything needed to run green threads on its OS thread: the run queue, the
//! table of alive green threads, the timers, the reactor and a pool of stacks. It is created
//! the first time the thread uses greenrt and lives until the thread exits.
//!
//! There is no separate scheduler thread and no `run` wrapper: the OS thread's own stack (the
//! *main context*) drives the hub. When main code calls something that blocks — `join`,
//! `sleep`, a green socket read — the hub runs ready green threads, timers and I/O *inside that
//! call* until main can go on (see `run_loop.rs`). Green threads never run the loop
//! themselves: when one blocks it suspends back to the main context, which picks the next one.
//!
//! ```text
//!   main context (thread stack)                       green threads (own stacks)
//!   ---------------------------                       --------------------------
//!   join(h) -> park(main)
//!              run_until_main_ready:
//!                pop A -------- resume ----------->  A runs ... sleep() -> park
//!                      <------- suspend -----------  (A parked, timer armed)
//!                pop B -------- resume ----------->  B runs ... returns
//!                      <------- return ------------  (B finished: stack to pool,
//!                                                       joiners unparked: main ready)
//!                pop main -> return from park
//!   join returns
//! ```
//!
//! Files: `green.rs` (the record), `stack.rs`, `slab.rs`, `timers.rs`, `reactor.rs`, `park.rs`
//! (park/unpark, interrupts, `Unparker`), `run_loop.rs` (the loop), `deadlock.rs`,
//! `panic_report.rs` and `overflow.rs` (what users see when things go wrong).

mod deadlock;
mod fork;
pub(crate) mod green;
pub(crate) mod io;
mod observer;
mod overflow;
mod panic_report;
pub(crate) mod park;
pub(crate) mod reactor;
mod run_loop;
mod run_queue;
mod seed;
pub(crate) mod signals;
pub(crate) mod slab;
pub(crate) mod stack;
mod stack_pool;
mod stats;
pub(crate) mod timers;
pub(crate) mod trace;
mod waiters;
pub(crate) mod watchdog;

use std::cell::{Cell, RefCell};
use std::panic::Location;
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub use green::Wait;
pub use park::{Unparker, park, unparker};
pub use seed::seed_schedule;

pub use stack::{DEFAULT_STACK_SIZE, MIN_STACK_SIZE};
pub use stats::{Parked, Stats, dump, resident_bytes, stats};
pub use watchdog::{StallReport, dump_on_sigusr1, stall_reports, watchdog};

use green::Green;
use reactor::Reactor;
use run_queue::RunQueue;
use slab::Slab;
use stack_pool::StackPool;
use timers::{TimerAction, TimerKey, Timers};

/// Ids for green threads and main contexts, unique in the process.
static NEXT_GREEN_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_green_id() -> u64 {
    NEXT_GREEN_ID.fetch_add(1, Ordering::Relaxed)
}

/// One OS thread's scheduler. See the module docs.
pub(crate) struct Hub {
    /// The main context's record.
    main: Rc<Green>,
    /// Who runs right now: `main`, or the green thread the loop resumed.
    ///
    /// # Invariant
    /// Points to `main` or to the record that `run_loop::resume` holds an `Rc` to while it
    /// runs, so the record is alive as long as it is current. A plain pointer rather than an
    /// `Rc` because it changes twice per switch (see NOTES.md, "Benchmarks").
    current: Cell<*const Green>,
    run_queue: RunQueue,
    /// Every alive green thread (and main), so remote unparks and reports can find them.
    greens: RefCell<Slab<Rc<Green>>>,
    timers: RefCell<Timers>,
    reactor: Reactor,
    /// Every fd a green thread waits on, and who waits (see `io.rs`).
    io: io::IoTable,
    /// Green threads parked in a call that must not unwind (a `monkey` hook): a signal
    /// handler that runs on this thread wakes them (see `signals.rs`).
    hooked: RefCell<Vec<Rc<Green>>>,
    /// `signals::ran_here()` as of the last poll.
    signals_seen: Cell<(u64, u64)>,
    stacks: RefCell<StackPool>,
    /// Ids for `timeout` scopes.
    next_scope: Cell<u64>,
    /// Green threads (or main) parked on a `greenrt::sync` primitive right now. Another OS
    /// thread may release such a primitive, so while any exist and the process has other
    /// threads, the hub does not report a deadlock (see `deadlock.rs`).
    sync_waiters: Cell<usize>,
    /// Resumes since I/O and timers were last checked (see `run_loop.rs`).
    resumes_since_poll: Cell<u32>,
    /// Counters and the coarse clock for `stats()` and `dump()` (see `stats.rs`).
    counters: stats::Counters,
    /// What the stall watchdog's monitor thread reads (see `watchdog.rs`).
    beat: std::sync::Arc<watchdog::Beat>,
    /// Trace records, while `greenrt::trace` is on (see `trace.rs`).
    trace: trace::Recorder,
    /// An alternate signal stack we installed for this thread, to release on drop.
    alt_stack: Option<(*mut u8, usize)>,
}

thread_local! {
    /// This thread's hub, or null. A plain pointer with no destructor, so it can be read at
    /// any time, even while thread-locals are being torn down (it is nulled first).
    static HUB: Cell<*const Hub> = const { Cell::new(ptr::null()) };
    /// Owns the hub and destroys it when the thread exits.
    static OWNER: HubOwner = const { HubOwner(Cell::new(ptr::null_mut())) };
}

struct HubOwner(Cell<*mut Hub>);

impl Drop for HubOwner {
    fn drop(&mut self) {
        let hub = self.0.replace(ptr::null_mut());
        if !hub.is_null() {
            HUB.with(|h| h.set(ptr::null()));
            // SAFETY: the pointer came from Box::into_raw in `create` and is dropped only here,
            // once; HUB was nulled first so nothing can reach it any more.
            drop(unsafe { Box::from_raw(hub) });
        }
    }
}

/// Runs `f` with this thread's hub, creating the hub on first use.
pub(crate) fn with_hub<R>(f: impl FnOnce(&Hub) -> R) -> R {
    let mut hub = HUB.with(|h| h.get());
    if hub.is_null() {
        hub = Hub::create();
    }
    // SAFETY: a non-null HUB points to the Box owned by OWNER, which is freed only by OWNER's
    // destructor at thread exit after nulling HUB; `f` runs on this thread before that.
    f(unsafe { &*hub })
}

/// Runs `f` with this thread's hub if it has one; never creates one.
#[inline(always)]
pub(crate) fn with_existing_hub<R>(f: impl FnOnce(&Hub) -> R) -> Option<R> {
    let hub = HUB.with(|h| h.get());
    // SAFETY: as in `with_hub`.
    (!hub.is_null()).then(|| f(unsafe { &*hub }))
}

/// Forgets this thread's hub without touching it: call it in the child right after a
/// hand-written `fork()`, before any other greenrt call.
///
/// After `fork` the child shares the parent's `epoll` instance (the fd was copied), so the
/// child must never register, deregister or wait on it: that would steal the parent's
/// events. This function leaks the inherited hub (its memory stays valid, nothing is freed
/// or closed) and the next greenrt call in the child makes a fresh hub. Green threads of the
/// parent are not carried over. Sockets inherited from the parent never touch the parent's
/// epoll set from the child either: each hub remembers the process that made it.
///
/// Called inside a green thread, the child keeps running on that green thread's stack and
/// must end with `std::process::exit` rather than returning from the green thread's function.
///
/// ```
/// greenrt::sleep(std::time::Duration::ZERO); // this thread has a hub now
/// // ... in a forked child:
/// greenrt::hub::reset_after_fork();
/// let h = greenrt::spawn(|| 1); // a fresh hub
/// assert_eq!(h.join().unwrap(), 1);
/// ```
pub fn reset_after_fork() {
    HUB.with(|h| h.set(ptr::null()));
    // The Box is leaked on purpose: dropping it would deregister and close fds whose
    // epoll interest the parent still relies on.
    let _ = OWNER.try_with(|o| o.0.set(ptr::null_mut()));
}

/// The hub pointer for the fault handler, which may not allocate or touch RefCells safely.
pub(crate) fn raw_hub() -> *const Hub {
    HUB.try_with(|h| h.get()).unwrap_or(ptr::null())
}

impl Hub {
    #[cold]
    fn create() -> *const Hub {
        overflow::install();
        fork::ensure_registered();
        panic_report::install();
        let hub = Box::into_raw(Box::new(Hub::new()));
        let owned = OWNER.try_with(|o| o.0.set(hub));
        if owned.is_err() {
            // SAFETY: `hub` came from Box::into_raw just above and was shared with no one.
            drop(unsafe { Box::from_raw(hub) });
            panic!(
                "greenrt: this thread's hub is already gone (greenrt used during thread teardown)"
            );
        }
        HUB.with(|h| h.set(hub));
        if let Some(seed) = seed::from_env() {
            // SAFETY: `hub` was just made and published for this thread; nothing else uses it.
            seed::apply(unsafe { &*hub }, seed, false);
        }
        hub
    }

    fn new() -> Hub {
        let reactor =
            Reactor::new().unwrap_or_else(|e| panic!("greenrt: cannot create the reactor: {e}"));
        let alt_stack = crate::sys::signal::ensure_alt_stack()
            .unwrap_or_else(|e| panic!("greenrt: cannot set up an alternate signal stack: {e}"));
        let name = std::thread::current().name().map(Into::into);
        let main = Rc::new(Green::new(next_green_id(), name, true, Location::caller()));
        let mut greens = Slab::new();
        main.key.set(greens.insert(main.clone()));
        let beat = watchdog::new_beat(reactor.shared.clone());
        Hub {
            current: Cell::new(Rc::as_ptr(&main)),
            main,
            run_queue: RunQueue::default(),
            greens: RefCell::new(greens),
            timers: RefCell::new(Timers::new()),
            reactor,
            io: io::IoTable::new(),
            hooked: RefCell::new(Vec::new()),
            signals_seen: Cell::new(signals::ran_here()),
            stacks: RefCell::new(StackPool::default()),
            next_scope: Cell::new(1),
            sync_waiters: Cell::new(0),
            resumes_since_poll: Cell::new(0),
            counters: stats::Counters::new(),
            beat,
            trace: trace::Recorder::default(),
            alt_stack,
        }
    }

    /// The green thread (or main context) running now.
    #[inline]
    pub(crate) fn current(&self) -> Rc<Green> {
        let ptr = self.current.get();
        // SAFETY: by the field's invariant `ptr` came from `Rc::as_ptr` of an `Rc` that is
        // alive now, so taking one more strong reference to it is sound.
        unsafe {
            Rc::increment_strong_count(ptr);
            Rc::from_raw(ptr)
        }
    }

    /// Runs `f` on the current record without touching its reference count. `f` may park:
    /// the reference stays valid across the switch.
    #[inline]
    pub(crate) fn with_current<R>(&self, f: impl FnOnce(&Green) -> R) -> R {
        // SAFETY: by the field's invariant the record is alive now. If `f` parks, the record
        // stays alive until `f` runs again: an unfinished green thread is in `greens` (which
        // holds an `Rc`) and the main record is held by `main`; a green thread cannot finish
        // while `f`, running on its own stack, has not returned.
        f(unsafe { &*self.current.get() })
    }

    /// Makes `green` current; returns who was.
    #[inline]
    pub(crate) fn set_current(&self, green: &Rc<Green>) -> *const Green {
        self.current.replace(Rc::as_ptr(green))
    }

    /// A fresh id for a `timeout` scope.
    pub(crate) fn new_scope_id(&self) -> u64 {
        let id = self.next_scope.get();
        self.next_scope.set(id + 1);
        id
    }

    /// Arms a timer that is cancelled when the returned guard drops.
    pub(crate) fn arm_timer(&self, deadline: Instant, action: TimerAction) -> TimerGuard<'_> {
        let key = self.timers.borrow_mut().insert(deadline, action);
        TimerGuard { hub: self, key }
    }

    /// Adds a new green thread to the tables and to the back of the run queue (or, with a
    /// `start` time, parks it until then).
    pub(crate) fn admit(&self, green: Rc<Green>, start: Option<Instant>) {
        self.counters.spawns.set(self.counters.spawns.get() + 1);
        self.trace.record(green.id, || trace::What::Spawn {
            by: self.with_current(|me| me.id),
        });
        self.trace
            .name(green.id, || green.display_name().to_string());
        green
            .key
            .set(self.greens.borrow_mut().insert(green.clone()));
        match start {
            None => self.run_queue.push(green),
            Some(at) => {
                green.state.set(green::State::Parked);
                green.wait.set(Wait::Start);
                self.timers
                    .borrow_mut()
                    .insert(at, TimerAction::Wake(green));
            }
        }
    }
}

impl Hub {
    /// Counts the caller as parked on a `greenrt::sync` primitive until the guard drops
    /// (see `sync_waiters`).
    pub(crate) fn sync_wait(&self) -> SyncWait<'_> {
        self.sync_waiters.set(self.sync_waiters.get() + 1);
        SyncWait(self)
    }

    /// Arms a timer that lives until it fires or [`Hub::cancel_timer`] (for timers whose
    /// owner is not a stack frame, like an async `Sleep`).
    pub(crate) fn add_timer(&self, deadline: Instant, action: TimerAction) -> TimerKey {
        self.timers.borrow_mut().insert(deadline, action)
    }

    /// Cancels a timer from [`Hub::add_timer`]; a key that already fired does nothing.
    pub(crate) fn cancel_timer(&self, key: TimerKey) {
        self.timers.borrow_mut().cancel(key);
    }

    /// A stack of at least `size` bytes for a new green thread, from the pool if it has one.
    pub(crate) fn take_stack(&self, size: usize) -> std::io::Result<stack::GreenStack> {
        self.stacks.borrow_mut().take(size)
    }

    /// A pooled stack of `size` bytes, if there is one: no system call.
    pub(crate) fn take_pooled_stack(&self, size: usize) -> Option<stack::GreenStack> {
        self.stacks.borrow_mut().take_pooled(size)
    }

    /// A number naming this hub among the live ones (the address of its shared part).
    pub(crate) fn id(&self) -> usize {
        std::sync::Arc::as_ptr(&self.reactor.shared) as usize
    }
}

/// Keeps `Hub::sync_waiters` right, also when a park unwinds.
pub(crate) struct SyncWait<'a>(&'a Hub);

impl Drop for SyncWait<'_> {
    fn drop(&mut self) {
        self.0.sync_waiters.set(self.0.sync_waiters.get() - 1);
    }
}

/// Cancels its timer when dropped: on normal exit and when the stack unwinds alike.
pub(crate) struct TimerGuard<'a> {
    hub: &'a Hub,
    key: TimerKey,
}

impl Drop for TimerGuard<'_> {
    fn drop(&mut self) {
        self.hub.timers.borrow_mut().cancel(self.key);
    }
}

impl Drop for Hub {
    /// At thread exit, green threads still parked cannot be unwound (their destructors might
    /// need this very hub), so their coroutines are leaked, as `mem::forget` would: their
    /// stacks stay mapped and their destructors never run. See NOTES.md, "Rules".
    fn drop(&mut self) {
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_string();
        self.trace.flush(&thread, self.main.id);
        drop(self.run_queue.take_all());
        self.greens.borrow_mut().drain_with(|green| {
            if let Some(coro) = green.coro.borrow_mut().take()
                && coro.started()
                && !coro.done()
            {
                std::mem::forget(coro);
            }
            *green.exit_waiters.borrow_mut() = waiters::Waiters::default();
        });
        if let Some((mem, len)) = self.alt_stack.take() {
            // SAFETY: installed by `ensure_alt_stack` on this thread, which is the one exiting.
            unsafe { crate::sys::signal::release_alt_stack(mem, len) };
        }
    }
}

/// True when blocking this OS thread would stall other green threads: the caller is a green
/// thread, or the main context of a hub that has green threads. ipc waits then park instead
/// of sleeping in the kernel.
pub(crate) fn others_could_run() -> bool {
    with_existing_hub(|hub| !hub.with_current(|me| me.is_main) || hub.greens.borrow().len() > 1)
        .unwrap_or(false)
}

/// Who is calling, as a number unique in this process: the green thread's id, or for a
/// plain thread or a hub's main context an id drawn once per OS thread from the same counter.
/// ipc's RLock records it as its owner.
pub(crate) fn caller_token() -> u64 {
    thread_local! {
        static THREAD_TOKEN: u64 = next_green_id();
    }
    with_existing_hub(|hub| hub.with_current(|me| (!me.is_main).then_some(me.id)))
        .flatten()
        .unwrap_or_else(|| THREAD_TOKEN.with(|t| *t))
}

/// True when the caller is a green thread (not a hub's main context, not a plain thread).
/// The `monkey` hooks cooperate only then: the scheduler loop itself runs as the main
/// context, so its own system calls never come back into the hub.
#[cfg(feature = "monkey")]
pub(crate) fn on_green_thread() -> bool {
    with_existing_hub(|hub| hub.with_current(|me| !me.is_main)).unwrap_or(false)
}

/// Hands this thread's trace records to the global collection (for `trace::stop`).
pub(crate) fn flush_trace() {
    with_existing_hub(|hub| {
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_string();
        hub.trace.flush(&thread, hub.main.id);
    });
}

/// Records a fork in this thread's hub's trace (if tracing).
pub(crate) fn trace_fork(pid: u32) {
    with_existing_hub(|hub| {
        let me = hub.with_current(|g| g.id);
        hub.trace.record(me, || trace::What::Fork { pid });
    });
}
