//! The reactor: one `mio::Poll` (an epoll instance) per hub, and the part of the hub that
//! other OS threads may touch.
//!
//! It knows nothing of green threads or of what a registration means: it adds, re-arms and
//! removes fds under a [`Key`] chosen by the I/O table (`io.rs`), and `poll` hands each
//! readiness event back as `(key, direction, closed)`. Registrations are edge-triggered for
//! both directions; `io.rs` explains why that is enough.
//!
//! Besides sockets, the epoll set holds an eventfd (the *waker*, written by other threads
//! that want the hub's attention) and a timerfd (for sub-millisecond timer wake-ups).
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
//!   socket fd readable ------------------------------epoll--> io table: sources[key].readers
//! ```

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};

use super::slab::Key;
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
    pub(crate) fn remove(&self, fd: RawFd) {
        if crate::sys::process::cached_pid() != self.pid {
            return;
        }
        // An fd that was never added, or whose epoll instance is gone, has nothing to remove.
        let _ = self.registry.deregister(&mut SourceFd(&fd));
    }

    /// Asks the hub to free the slot of a source dropped on another thread.
    pub(crate) fn release_source_remote(&self, key: Key) {
        if crate::sys::process::cached_pid() != self.pid {
            return; // a forked child: this hub is the parent's, whose eventfd we share
        }
        lock(&self.closed_sources).push(key);
        self.notify();
    }
}

/// See the module docs.
pub(crate) struct Reactor {
    poll: RefCell<Poll>,
    events: RefCell<Events>,
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
            timer,
            armed: Cell::new(None),
            shared: Arc::new(shared),
        })
    }

    /// Adds `fd` to the epoll set under `key`, edge-triggered for both directions.
    pub(crate) fn add(&self, fd: RawFd, key: Key) -> io::Result<()> {
        let interest = Interest::READABLE | Interest::WRITABLE;
        self.shared
            .registry
            .register(&mut SourceFd(&fd), Token(key.to_usize()), interest)
    }

    /// Re-arms `fd` under `key` (`EPOLL_CTL_MOD`). Fails with `ENOENT` when the epoll set
    /// holds no entry for the file `fd` names *now*: the fd was closed (and maybe reused)
    /// since it was added. Edge-triggered, so a ready fd reports one more event.
    pub(crate) fn refresh(&self, fd: RawFd, key: Key) -> io::Result<()> {
        let interest = Interest::READABLE | Interest::WRITABLE;
        self.shared
            .registry
            .reregister(&mut SourceFd(&fd), Token(key.to_usize()), interest)
    }

    /// True while another OS thread could still wake a green thread: a live `Unparker` or a
    /// queued remote unpark.
    pub(crate) fn remote_wake_possible(&self) -> bool {
        self.shared.unparkers.load(Ordering::Acquire) > 0
            || self.shared.notified.load(Ordering::Acquire)
    }

    /// Waits (see [`Until`]) for I/O, a remote wake or the timer, and hands each readiness
    /// event to `on_io` as (key, direction, closed). Returns how many events came back.
    pub(crate) fn poll(&self, until: Until, on_io: &mut dyn FnMut(Key, Direction, bool)) -> usize {
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
                on_io(key, Direction::Read, read_closed);
            }
            let write_closed = event.is_write_closed() || event.is_error();
            if event.is_writable() || write_closed {
                on_io(key, Direction::Write, write_closed);
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

    /// What other threads queued since the last call: the keys of sources they closed (to
    /// forget) and of green threads to unpark.
    pub(crate) fn take_remote(&self) -> (Vec<Key>, Vec<Key>) {
        if !self.shared.notified.swap(false, Ordering::AcqRel) {
            return (Vec::new(), Vec::new());
        }
        let closed = std::mem::take(&mut *lock(&self.shared.closed_sources));
        (
            closed,
            std::mem::take(&mut *lock(&self.shared.remote_unparks)),
        )
    }
}

/// Locks a queue; a panic elsewhere while holding it cannot leave a `Vec` half-written.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
