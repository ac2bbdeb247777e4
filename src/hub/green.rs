//! The green thread record: everything the hub knows about one green thread.
//!
//! A green thread is a corosensei coroutine plus a little state. The record is shared
//! (`Rc<Green>`) by the hub's tables, the run queue, its `JoinHandle`, and whoever holds it in
//! a wait list; it never leaves its OS thread.
//!
//! The main context of the OS thread (the code that runs on the thread's own stack) has a
//! record too, with no coroutine: that is how `main` can wait on a socket or a join exactly as
//! a green thread does.
//!
//! ```text
//!              spawn                 resume                suspend (park)
//!   (new) -----------> Ready -----------------> Running ----------------> Parked
//!                        ^                        |  \                      |
//!                        |      yield_now         |   \ return / panic      | unpark,
//!                        +------------------------+    \ / killed           | kill, timeout
//!                        +-----------------------------------------------<--+
//!                                                      v
//!                                                   Finished
//! ```

use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::Location;
use std::rc::Rc;
use std::time::Instant;

use corosensei::{Coroutine, Yielder};

use super::slab::Key;
use super::stack::GreenStack;
use super::waiters::Waiters;

/// The coroutine type every green thread runs as: resumed with `()`, suspends with `()`,
/// returns `()` (its real result goes to the join packet).
pub(crate) type Coro = Coroutine<(), (), (), GreenStack>;

/// How a green thread spawned while the hub had no pooled stack starts: called by the hub
/// when it first runs, it takes a stack then and returns the coroutine — or `None` when no
/// stack could be mapped (the join packet then says so). See `spawn.rs`, where the function
/// waits in the same allocation as the join packet.
pub(crate) trait DeferredStart {
    /// Makes the coroutine of `green` at its first turn, or ends it (`None`).
    fn start(self: Rc<Self>, hub: &super::Hub, green: &Rc<Green>) -> Option<Coro>;
}

/// A deferred start, as the record keeps it.
pub(crate) type Start = Rc<dyn DeferredStart>;

/// Where a green thread is in its life. See the module diagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// In the run queue.
    Ready,
    /// On the CPU right now.
    Running,
    /// Suspended until someone unparks it.
    Parked,
    /// Returned, panicked or was killed; its stack is gone.
    Finished,
}

/// What a parked green thread is waiting for. Shown by the deadlock report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Not waiting.
    Nothing,
    /// Spawned with a delay and not started yet.
    Start,
    /// In `sleep`.
    Sleep,
    /// In `join` (or `kill`) on the green thread with this id.
    Join(u64),
    /// For the file descriptor to become readable.
    Readable(i32),
    /// For the file descriptor to become writable.
    Writable(i32),
    /// On a synchronisation object: its kind and address.
    Sync(&'static str, usize),
    /// For another OS thread to unpark it (through an `Unparker`).
    Unpark,
    /// In `greenrt::wait` (or `ipc::wait_ready`): for any of this many objects to be ready.
    Any(usize),
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Wait::Nothing => write!(f, "nothing"),
            Wait::Start => write!(f, "its delayed start"),
            Wait::Sleep => write!(f, "a sleep"),
            Wait::Join(id) => write!(f, "join of green thread {id}"),
            Wait::Readable(fd) => write!(f, "fd {fd} to become readable"),
            Wait::Writable(fd) => write!(f, "fd {fd} to become writable"),
            Wait::Sync(kind, addr) => write!(f, "{kind} at {addr:#x}"),
            Wait::Unpark => write!(f, "an unpark from another thread"),
            Wait::Any(n) => write!(f, "any of {n} objects to be ready"),
        }
    }
}

/// One green thread (or the main context). See the module docs.
pub(crate) struct Green {
    /// Process-wide unique id, shown to users.
    pub(crate) id: u64,
    /// The name given with `Builder::name`, if any.
    pub(crate) name: Option<Box<str>>,
    /// True for the main context of the OS thread, which has no coroutine.
    pub(crate) is_main: bool,
    /// Where `spawn` was called.
    pub(crate) spawned_at: &'static Location<'static>,
    /// Our key in the hub's table of alive green threads.
    pub(crate) key: Cell<Key>,
    pub(crate) state: Cell<State>,
    /// What we are parked on, for reports.
    pub(crate) wait: Cell<Wait>,
    /// The park token: an unpark that finds us not parked leaves it here, and the next park
    /// consumes it and returns at once (so unpark-then-park never loses the wake-up).
    pub(crate) token: Cell<bool>,
    /// Set by `kill`: the next park point unwinds.
    pub(crate) kill_requested: Cell<bool>,
    /// Scope id of the outermost `timeout` that fired and has not unwound yet (0 = none).
    pub(crate) timeout_fired: Cell<u64>,
    /// The coroutine; `None` for the main context, once finished, and until a deferred
    /// start (`start`) has run.
    pub(crate) coro: RefCell<Option<Coro>>,
    /// Set instead of `coro` when the green thread was spawned with no pooled stack: makes
    /// the coroutine when it first runs.
    pub(crate) start: Cell<Option<Start>>,
    /// The coroutine's yielder, set when it first runs.
    ///
    /// # Invariant
    /// Null, or the yielder on this green thread's own stack, valid until it finishes.
    pub(crate) yielder: Cell<*const Yielder<(), ()>>,
    /// Who waits for us to finish (joiners and killers).
    pub(crate) exit_waiters: RefCell<Waiters>,
    /// Our stack's whole mapping `(start, len)`, guard page included, for `stats()` and the
    /// overflow report (0, 0 for the main context and before the first run).
    pub(crate) stack_span: Cell<(usize, usize)>,
    /// When we last parked, by the hub's coarse clock (the time of its last poll).
    pub(crate) parked_at: Cell<Option<Instant>>,
    /// Roughly where our stack pointer was when we last suspended: an address in the frames
    /// the switch back to us touches first, so the hub can fetch those lines while the green
    /// thread before us runs (`park::prefetch_resume`); 0 before the first suspend.
    pub(crate) resume_hint: Cell<usize>,
}

impl Green {
    /// Our stack's guard region `(low, high)`, the lowest page of its mapping: a fault in
    /// here is an overflow of this stack. `None` without a stack of our own.
    pub(crate) fn guard_range(&self) -> Option<(usize, usize)> {
        let (start, len) = self.stack_span.get();
        (len != 0).then_some((start, start + super::stack::GUARD_SIZE))
    }

    pub(crate) fn new(
        id: u64,
        name: Option<Box<str>>,
        is_main: bool,
        spawned_at: &'static Location<'static>,
    ) -> Green {
        Green {
            id,
            name,
            is_main,
            spawned_at,
            key: Cell::new(Key::from_usize(usize::MAX)),
            state: Cell::new(if is_main {
                State::Running
            } else {
                State::Ready
            }),
            wait: Cell::new(Wait::Nothing),
            token: Cell::new(false),
            kill_requested: Cell::new(false),
            timeout_fired: Cell::new(0),
            coro: RefCell::new(None),
            start: Cell::new(None),
            yielder: Cell::new(std::ptr::null()),
            exit_waiters: RefCell::new(Waiters::default()),
            stack_span: Cell::new((0, 0)),
            parked_at: Cell::new(None), // not Instant::now(): that would cost every spawn ~20 ns
            resume_hint: Cell::new(0),
        }
    }

    /// The name for messages: the given name, or `<unnamed>` as std says.
    pub(crate) fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or("<unnamed>")
    }

    /// Suspends this green thread back to the hub. Must be called on its own stack.
    #[inline(always)]
    pub(crate) fn suspend(&self) {
        let yielder = self.yielder.get();
        assert!(
            !yielder.is_null(),
            "greenrt: suspend called outside a started green thread"
        );
        // A local of this frame, forced onto the stack: where the switch back lands.
        let here = 0u8;
        self.resume_hint
            .set(std::hint::black_box(&here) as *const u8 as usize);
        // SAFETY: by the field's invariant the yielder lives on our own stack until we finish,
        // and we are running on that stack (the caller's contract), so it is alive.
        unsafe { (*yielder).suspend(()) }
    }

    /// Removes `waiter` from our exit waiters, if it is there.
    pub(crate) fn forget_exit_waiter(&self, waiter: &Rc<Green>) {
        let mut waiters = self.exit_waiters.borrow_mut();
        while waiters.remove(waiter) {}
    }
}

impl fmt::Debug for Green {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Green")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("state", &self.state.get())
            .field("wait", &self.wait.get())
            .finish()
    }
}
