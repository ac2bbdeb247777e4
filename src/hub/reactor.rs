//! The reactor: one `mio::Poll` per hub, the table of registered file descriptors, and the
//! part of the hub that other OS threads may touch.
//!
//! A green socket registers its fd once (edge-triggered, readable and writable) and gets a
//! [`Key`] into `sources`. A green thread that hits `WouldBlock` adds itself to the source's
//! readers or writers and parks; when `epoll` reports the fd, every waiter of that direction
//! is unparked and retries its operation. Edge-triggered is enough because a waiter always
//! tried the operation (and saw `WouldBlock`) before it parked, and events are only
//! collected while it is parked.
//!
//! Each source also remembers, per direction, whether it is known *not* ready: set by a
//! `WouldBlock` or a short read or write (the kernel buffer was drained or filled), cleared by
//! the next event. A read that finds it not ready parks at once instead of making a syscall
//! that would only say `EAGAIN` — tokio does the same, and on an echo server it saves about
//! one `recv` in three. A peer's close is remembered for good, since it brings no event
//! after the one that carried the last data.
//!
//! ```text
//!   other OS threads                     the hub's OS thread
//!   ----------------                     -------------------
//!   Unparker::unpark(key) --+
//!                           |  push      +-------------------------+
//!                           +----------> | Shared.remote (Mutex)   |
//!                           |  wake()    | Shared.waker (eventfd)  | --epoll--> Reactor::poll
//!                           +----------> +-------------------------+              |
//!                                                                               v
//!   socket fd readable --------------------------------------epoll--> sources[key].readers
//! ```

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};

use super::green::Green;
use super::slab::{Key, Slab};
use crate::sys::timerfd::TimerFd;

const WAKER_TOKEN: Token = Token(usize::MAX);
const TIMER_TOKEN: Token = Token(usize::MAX - 1);

/// Which way a green thread waits on a file descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Read = 0,
    Write = 1,
}

/// The part of a hub that any OS thread may use: epoll registration, the remote unpark queue
/// and the waker that interrupts the hub's `epoll_wait`.
pub(crate) struct Shared {
    registry: Registry,
    waker: Waker,
    /// Green threads other threads asked to unpark, by key.
    remote_unparks: Mutex<Vec<Key>>,
    /// Sources whose sockets were dropped on another thread; their slots are freed by the hub.
    closed_sources: Mutex<Vec<Key>>,
    /// Set when the waker has been fired and the hub has not drained the queues yet.
    notified: AtomicBool,
    /// Live `Unparker`s: while any exists, another thread may wake us, so no deadlock.
    pub(crate) unparkers: AtomicUsize,
    /// The process that made this hub. After a `fork` the child shares our epoll instance,
    /// so it must not change it (see `hub::reset_after_fork`).
    pid: u32,
}

impl Shared {
    /// Queues an unpark of the green thread `key` and wakes the hub if it sleeps.
    pub(crate) fn unpark_remote(&self, key: Key) {
        lock(&self.remote_unparks).push(key);
        self.notify();
    }

    /// Wakes the hub's `epoll_wait` unless a wake-up is already pending.
    pub(crate) fn notify(&self) {
        if !self.notified.swap(true, Ordering::AcqRel) {
            // An eventfd write can only fail if the counter overflows, which a pending wake
            // already rules out; nothing useful can be done about it here.
            let _ = self.waker.wake();
        }
    }

    /// Removes `fd` from this hub's epoll set. Callable from any thread; does nothing in a
    /// forked child, whose epoll set is the parent's.
    pub(crate) fn deregister(&self, fd: RawFd) {
        if std::process::id() != self.pid {
            return;
        }
        // An fd that was never added, or whose epoll instance is gone, has nothing to remove.
        let _ = self.registry.deregister(&mut SourceFd(&fd));
    }

    /// Asks the hub to free the slot of a source dropped on another thread.
    pub(crate) fn release_source_remote(&self, key: Key) {
        lock(&self.closed_sources).push(key);
        self.notify();
    }
}

/// One registered fd: the green threads parked on it, and what we know of its readiness.
struct Source {
    readers: Vec<Rc<Green>>,
    writers: Vec<Rc<Green>>,
    /// Per direction: false once an operation said `WouldBlock` (or transferred less than
    /// asked), true again at the next event. Starts true: a fresh fd may well be ready.
    ready: [bool; 2],
    /// Per direction: the peer closed it, or the fd has an error. Final: never cleared, since
    /// an end of stream that arrived with the last data brings no further event (tokio keeps
    /// its `READ_CLOSED` the same way).
    closed: [bool; 2],
}

impl Source {
    fn new() -> Source {
        Source {
            readers: Vec::new(),
            writers: Vec::new(),
            ready: [true, true],
            closed: [false, false],
        }
    }

    fn waiters(&mut self, dir: Direction) -> &mut Vec<Rc<Green>> {
        match dir {
            Direction::Read => &mut self.readers,
            Direction::Write => &mut self.writers,
        }
    }
}

/// See the module docs.
pub(crate) struct Reactor {
    poll: RefCell<Poll>,
    events: RefCell<Events>,
    sources: RefCell<Slab<Source>>,
    /// Green threads parked on some source right now.
    io_waiters: Cell<usize>,
    /// Wakes `epoll_wait` at the nearest timer deadline with sub-millisecond precision.
    timer: TimerFd,
    /// The deadline `timer` is armed for, if it has not fired yet.
    armed: Cell<Option<Instant>>,
    pub(crate) shared: Arc<Shared>,
}

/// How long [`Reactor::poll`] may block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Until {
    /// Do not block: just collect what is ready.
    Now,
    /// Block until this deadline at the latest.
    Deadline(Instant),
    /// Block until something happens.
    Forever,
}

impl Reactor {
    pub(crate) fn new() -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER_TOKEN)?;
        let timer = TimerFd::new()?;
        poll.registry().register(
            &mut SourceFd(&timer.as_raw_fd()),
            TIMER_TOKEN,
            Interest::READABLE,
        )?;
        let shared = Shared {
            registry: poll.registry().try_clone()?,
            waker,
            remote_unparks: Mutex::new(Vec::new()),
            closed_sources: Mutex::new(Vec::new()),
            notified: AtomicBool::new(false),
            unparkers: AtomicUsize::new(0),
            pid: std::process::id(),
        };
        Ok(Reactor {
            poll: RefCell::new(poll),
            events: RefCell::new(Events::with_capacity(1024)),
            sources: RefCell::new(Slab::new()),
            io_waiters: Cell::new(0),
            timer,
            armed: Cell::new(None),
            shared: Arc::new(shared),
        })
    }

    /// Adds `fd` to the epoll set, edge-triggered for both directions.
    pub(crate) fn register(&self, fd: RawFd) -> io::Result<Key> {
        let key = self.sources.borrow_mut().insert(Source::new());
        let interest = Interest::READABLE | Interest::WRITABLE;
        let token = Token(key.to_usize());
        if let Err(e) = self
            .shared
            .registry
            .register(&mut SourceFd(&fd), token, interest)
        {
            self.sources.borrow_mut().remove(key);
            return Err(e);
        }
        Ok(key)
    }

    /// Frees the slot of a source whose fd has been deregistered.
    pub(crate) fn release_source(&self, key: Key) {
        self.sources.borrow_mut().remove(key);
    }

    /// Whether `key` may be ready for `dir` (true for an unknown key: then just try).
    pub(crate) fn is_ready(&self, key: Key, dir: Direction) -> bool {
        let sources = self.sources.borrow();
        sources
            .get(key)
            .is_none_or(|s| s.ready[dir as usize] || s.closed[dir as usize])
    }

    /// Records that `key` is not ready for `dir` until its next event.
    pub(crate) fn set_unready(&self, key: Key, dir: Direction) {
        if let Some(source) = self.sources.borrow_mut().get_mut(key) {
            source.ready[dir as usize] = false;
        }
    }

    /// Puts `green` on the wait list of `key` for `dir`. False if the source is gone.
    pub(crate) fn add_waiter(&self, key: Key, dir: Direction, green: &Rc<Green>) -> bool {
        let mut sources = self.sources.borrow_mut();
        let Some(source) = sources.get_mut(key) else {
            return false;
        };
        source.waiters(dir).push(green.clone());
        self.io_waiters.set(self.io_waiters.get() + 1);
        true
    }

    /// Takes `green` off the wait list of `key` for `dir`, if it is still there.
    pub(crate) fn remove_waiter(&self, key: Key, dir: Direction, green: &Rc<Green>) {
        let mut sources = self.sources.borrow_mut();
        if let Some(source) = sources.get_mut(key) {
            let list = source.waiters(dir);
            if let Some(i) = list.iter().position(|g| Rc::ptr_eq(g, green)) {
                list.swap_remove(i);
                self.io_waiters.set(self.io_waiters.get() - 1);
            }
        }
    }

    /// True while something outside the run queue and timers could still wake a green
    /// thread: a parked I/O waiter, a live `Unparker`, or a queued remote unpark.
    pub(crate) fn can_wake_anyone(&self) -> bool {
        self.io_waiters.get() > 0
            || self.shared.unparkers.load(Ordering::Acquire) > 0
            || self.shared.notified.load(Ordering::Acquire)
    }

    /// Waits (see [`Until`]) for I/O, a remote wake or the timer, and hands every green thread
    /// that became runnable to `wake`. Returns how many events came back.
    pub(crate) fn poll(&self, until: Until, wake: &mut dyn FnMut(Rc<Green>)) -> usize {
        let timeout = match until {
            Until::Now => Some(Duration::ZERO),
            Until::Forever => None,
            Until::Deadline(at) => self.arm_timer(at),
        };
        let mut events = self.events.borrow_mut();
        if let Err(e) = self.poll.borrow_mut().poll(&mut events, timeout) {
            assert!(
                e.kind() == io::ErrorKind::Interrupted,
                "greenrt: epoll_wait failed: {e}"
            );
            return 0;
        }
        let mut count = 0;
        for event in events.iter() {
            count += 1;
            if event.token() == WAKER_TOKEN {
                continue; // the queues are drained by `take_remote_unparks`
            }
            if event.token() == TIMER_TOKEN {
                self.armed.set(None); // fired; the hub fires due timers after polling
                continue;
            }
            let key = Key::from_usize(event.token().0);
            let read_closed = event.is_read_closed() || event.is_error();
            if event.is_readable() || read_closed {
                self.wake_all(key, Direction::Read, read_closed, wake);
            }
            let write_closed = event.is_write_closed() || event.is_error();
            if event.is_writable() || write_closed {
                self.wake_all(key, Direction::Write, write_closed, wake);
            }
        }
        count
    }

    /// Arms the timerfd for `at` unless it already is; returns the epoll timeout to use.
    fn arm_timer(&self, at: Instant) -> Option<Duration> {
        let left = at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Some(Duration::ZERO);
        }
        if self.armed.get() == Some(at) {
            return None;
        }
        match self.timer.arm(left) {
            Ok(()) => {
                self.armed.set(Some(at));
                None
            }
            Err(_) => Some(left), // cannot happen for a valid timerfd; epoll's ms timeout is the fallback
        }
    }

    fn wake_all(&self, key: Key, dir: Direction, closed: bool, wake: &mut dyn FnMut(Rc<Green>)) {
        let mut sources = self.sources.borrow_mut();
        let Some(source) = sources.get_mut(key) else {
            return;
        };
        source.ready[dir as usize] = true;
        source.closed[dir as usize] |= closed;
        let list = source.waiters(dir);
        self.io_waiters.set(self.io_waiters.get() - list.len());
        for green in list.drain(..) {
            wake(green);
        }
    }

    /// Handles what other threads queued since the last call: frees the slots of sources
    /// closed elsewhere and returns the keys of green threads to unpark.
    pub(crate) fn take_remote_unparks(&self) -> Vec<Key> {
        if !self.shared.notified.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        let closed = std::mem::take(&mut *lock(&self.shared.closed_sources));
        for key in closed {
            self.release_source(key);
        }
        std::mem::take(&mut *lock(&self.shared.remote_unparks))
    }
}

/// Locks a queue; a panic elsewhere while holding it cannot leave a `Vec` half-written.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
