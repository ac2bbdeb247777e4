//! Starting green threads: [`spawn`], [`spawn_later`] and [`Builder`].
//!
//! Spawning makes a record (`hub::green`), takes a stack from the hub's pool, wraps the user's
//! function in a corosensei coroutine and puts the record at the back of the run queue. The
//! function does not run yet: it starts when the spawner blocks or yields (gevent does the
//! same), so `spawn` itself never switches.
//!
//! **Deferred start.** When the pool is empty — a burst of spawns — the stack is not mapped at
//! `spawn`: the record keeps a *start* instead — the function, kept in the join packet's own
//! allocation, so a deferred spawn allocates no more than a pooled one — and the hub takes the
//! stack when the green thread first runs. By then green threads that ran earlier in the
//! burst have often finished and given theirs back, so a burst of 100,000 short green threads
//! maps a handful of stacks instead of 100,000 (each fresh stack costs an `mmap`, a guard and
//! a first-touch page fault: microseconds). A green thread that finds no stack even then (out
//! of memory) ends without running, and its join says [`JoinError::NoStack`].
//!
//! Inside the coroutine the function runs under `catch_unwind`: a panic or a kill ends only
//! that green thread, and its outcome is stored in the join packet.

use std::cell::Cell;
use std::io;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::hub::Hub;
use crate::hub::green::{Coro, DeferredStart, Green};
use crate::hub::park::KillUnwind;
use crate::hub::stack::GreenStack;
use crate::hub::{DEFAULT_STACK_SIZE, next_green_id, with_hub};
use crate::join::{HasPacket, JoinError, JoinHandle, Packet};

/// Spawns a green thread on this OS thread's hub and returns its handle.
///
/// The closure runs when the caller next blocks or yields. It need not be `Send`: green
/// threads never leave their OS thread.
///
/// Spawning never fails for lack of memory: a green thread spawned while the hub has no
/// pooled stack gets one when it first runs (see the module docs), and if none can be mapped
/// then, it ends without running and its join says [`JoinError::NoStack`].
///
/// ```
/// let h = greenrt::spawn(|| 6 * 7);
/// assert_eq!(h.join().unwrap(), 42);
/// ```
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    Builder::new()
        .spawn(f)
        .unwrap_or_else(|e| panic!("greenrt: failed to spawn a green thread: {e}"))
}

/// Spawns a green thread that starts after `delay` (gevent's `spawn_later`).
///
/// ```
/// use std::time::{Duration, Instant};
/// let start = Instant::now();
/// let h = greenrt::spawn_later(Duration::from_millis(20), move || start.elapsed());
/// assert!(h.join().unwrap() >= Duration::from_millis(20));
/// ```
#[track_caller]
pub fn spawn_later<F, T>(delay: Duration, f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    Builder::new()
        .spawn_later(delay, f)
        .unwrap_or_else(|e| panic!("greenrt: failed to spawn a green thread: {e}"))
}

/// Configures a green thread before spawning it, like `std::thread::Builder`.
///
/// ```
/// let h = greenrt::Builder::new()
///     .name("worker".into())
///     .stack_size(64 * 1024)
///     .spawn(|| greenrt::current().name().map(String::from))
///     .unwrap();
/// assert_eq!(h.join().unwrap().as_deref(), Some("worker"));
/// ```
#[derive(Debug, Default)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with no name and the default stack size.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the green thread; the name appears in panics, overflow and deadlock reports.
    pub fn name(mut self, name: String) -> Builder {
        self.name = Some(name);
        self
    }

    /// Sets the usable stack size in bytes (rounded up to pages; at least
    /// [`MIN_STACK_SIZE`](crate::hub::MIN_STACK_SIZE)). Only touched pages use memory.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Spawns the green thread. See [`spawn`]. The `io::Result` has std's shape; greenrt
    /// itself has no error to report here today (a missing stack shows up at join, as
    /// [`JoinError::NoStack`]).
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.spawn_at(None, Location::caller(), f)
    }

    /// Spawns the green thread to start after `delay`. See [`spawn_later`].
    #[track_caller]
    pub fn spawn_later<F, T>(self, delay: Duration, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.spawn_at(Some(crate::time::instant_in(delay)), Location::caller(), f)
    }

    fn spawn_at<F, T>(
        self,
        start: Option<Instant>,
        spawned_at: &'static Location<'static>,
        f: F,
    ) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        with_hub(|hub| {
            let size = self.stack_size.unwrap_or(DEFAULT_STACK_SIZE);
            let name = self.name.map(Into::into);
            let green = Rc::new(Green::new(next_green_id(), name, false, spawned_at));
            let packet: Rc<dyn HasPacket<T>> = match hub.take_pooled_stack(size) {
                Some(stack) => {
                    let packet = Rc::new(Packet::new());
                    let coro = coroutine(stack, green.clone(), packet.clone(), f);
                    *green.coro.borrow_mut() = Some(coro);
                    packet
                }
                // A small function waits inside the packet; a large one in a box of its
                // own, freed when it starts (the packet lives as long as the handle).
                None if size_of::<F>() <= INLINE_START_MAX => defer(&green, f, size),
                None => defer(&green, Box::new(f), size),
            };
            hub.admit(green.clone(), start);
            Ok(JoinHandle::new(green, packet))
        })
    }
}

/// The coroutine of a green thread on `stack`.
fn coroutine<F, T, P>(stack: GreenStack, green: Rc<Green>, packet: Rc<P>, f: F) -> Coro
where
    F: FnOnce() -> T + 'static,
    T: 'static,
    P: HasPacket<T> + 'static,
{
    green.stack_span.set(stack.span());
    Coro::with_stack(stack, entry(green, packet, f))
}

/// The largest function (its captures, in bytes) a deferred start keeps inside the join
/// packet: eight words. The packet lives as long as the `JoinHandle`, so a larger one goes in
/// a box of its own, freed when the green thread starts.
const INLINE_START_MAX: usize = 64;

/// Makes `green` a deferred start of `f` (see [`Deferred`]); returns its packet.
fn defer<G, T>(green: &Rc<Green>, f: G, size: usize) -> Rc<dyn HasPacket<T>>
where
    G: FnOnce() -> T + 'static,
    T: 'static,
{
    let deferred = Rc::new(Deferred {
        packet: Packet::new(),
        start: Cell::new(Some((f, size))),
    });
    green.start.set(Some(deferred.clone()));
    deferred
}

/// A green thread spawned while the pool had no stack (see the module docs): its join packet,
/// and its function until the first run takes it — in one allocation, so a burst of spawns
/// allocates twice per green thread (record, this) instead of three times (the allocator was
/// half of a spawn+join's instructions in a burst of 100,000). `F` is the function itself, or
/// a box of it when it is larger than [`INLINE_START_MAX`].
struct Deferred<F, T> {
    packet: Packet<T>,
    /// The function and its stack size, until the first run.
    start: Cell<Option<(F, usize)>>,
}

impl<F, T> HasPacket<T> for Deferred<F, T> {
    fn packet(&self) -> &Packet<T> {
        &self.packet
    }
}

impl<F, T> DeferredStart for Deferred<F, T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    fn start(self: Rc<Self>, hub: &Hub, green: &Rc<Green>) -> Option<Coro> {
        let (f, size) = self.start.take().expect("a green thread starts once");
        match hub.take_stack(size) {
            Ok(stack) => Some(coroutine(stack, green.clone(), self, f)),
            Err(e) => {
                eprintln!(
                    "greenrt: green thread {} '{}' never started: no stack could be mapped: {e}",
                    green.id,
                    green.display_name()
                );
                drop(f);
                self.packet.set(Err(JoinError::NoStack(e)));
                None
            }
        }
    }
}

/// The function every green thread's coroutine runs: remember the yielder, run `f` unless
/// killed before starting, and store the outcome for `join`.
fn entry<F, T, P>(
    green: Rc<Green>,
    packet: Rc<P>,
    f: F,
) -> impl FnOnce(&corosensei::Yielder<(), ()>, ()) + 'static
where
    F: FnOnce() -> T + 'static,
    T: 'static,
    P: HasPacket<T> + 'static,
{
    move |yielder, ()| {
        green.yielder.set(yielder);
        let outcome = if green.kill_requested.get() {
            drop(f);
            Err(JoinError::Killed)
        } else {
            match catch_unwind(AssertUnwindSafe(f)) {
                // Killed in a call that could not unwind (a `monkey` hook), which returned an
                // error instead; the function then returned without parking again.
                Ok(_) if green.kill_requested.get() => Err(JoinError::Killed),
                Ok(value) => Ok(value),
                Err(payload) if payload.is::<KillUnwind>() => Err(JoinError::Killed),
                Err(payload) => Err(JoinError::Panicked(payload)),
            }
        };
        packet.packet().set(outcome);
    }
}
