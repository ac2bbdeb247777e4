//! [`wait`] and [`iwait`]: wait for any, some or all of a mix of objects — green threads,
//! events, results, queues, sockets, pipe ends, processes (gevent's `wait` and `iwait`).
//!
//! Each kind of object already has a way to wake the green threads waiting for it: a wait
//! list of [`Waiter`]s (events, results, queues), an exit-waiter list (a green thread's end),
//! or the hub's I/O table (an fd becoming readable). A [`Waitable`] object lets one green
//! thread join *its* list without taking anything from it — a *watch* — and says whether it
//! is ready now. `wait` then watches every object that is not ready yet and parks once,
//! however many lists it is on:
//!
//! ```text
//!   loop:
//!     watch every pending object  (join its wait list, or name its fd)
//!     look: an object ready now counts as ready from now on, and is no longer watched
//!     enough ready (count), or the deadline passed -> unwatch all, return them
//!     park on the fds at once; any list's notify, or any fd event, unparks
//!     unwatch all (a list that already woke us has dropped us itself)
//! ```
//!
//! Watching again on every round keeps it simple and always right — a queue item another
//! getter took first, an event cleared again — at O(pending objects) per wake-up. As in
//! gevent, an object counts once it has been seen ready, even if it stops being ready
//! before `wait` returns (another getter takes the item): readiness is a moment, not a
//! promise.

use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::hub::green::Green;
use crate::hub::io::{Fail, Interrupts, Stop, wait_any};
use crate::hub::reactor::Direction;
use crate::hub::with_hub;
use crate::sync::waiter::{Waiter, lock_state, unqueue};

/// An object [`wait`] can wait for: it says whether it is ready now, and how to be told
/// when it may have become ready.
///
/// What *ready* means for each: a green thread ([`JoinHandle`](crate::JoinHandle)) has
/// ended; an [`Event`](crate::sync::Event) is set; an
/// [`AsyncResult`](crate::sync::AsyncResult), a thread-pool
/// [`Task`](crate::thread_pool::Task) or a process-pool
/// [`AsyncResult`](crate::process::AsyncResult) has its outcome; a
/// [`Queue`](crate::sync::Queue) has an item for a getter (or is closed); a socket, a pipe
/// end ([`Connection`](crate::ipc::Connection)) or any fd is readable (a pipe end with a
/// message already read ahead too); a [`Process`](crate::process::Process) has ended.
pub trait Waitable {
    /// True if it is ready now.
    fn is_ready(&self) -> bool;

    /// Joins this object's wait list (or names its fd) for `watcher`, until the returned
    /// value drops. For [`wait`]; not meant to be called otherwise.
    #[doc(hidden)]
    fn watch<'a>(&'a self, watcher: &Watcher) -> Watching<'a>;
}

/// The green thread a [`wait`] runs on, as the object lists know it.
#[doc(hidden)]
pub struct Watcher {
    waiter: Arc<Waiter>,
    green: Rc<Green>,
}

impl Watcher {
    fn for_current() -> Watcher {
        Watcher {
            waiter: Waiter::for_current(),
            green: with_hub(|hub| hub.current()),
        }
    }
}

/// One object watched for one round of [`wait`]: an fd to park on, and what takes the
/// watcher off the object's list when it drops.
#[doc(hidden)]
pub struct Watching<'a> {
    fd: Option<RawFd>,
    unwatch: Option<Box<dyn FnOnce() + 'a>>,
}

impl<'a> Watching<'a> {
    /// Parks on `fd` becoming readable.
    pub(crate) fn fd(fd: RawFd) -> Watching<'a> {
        Watching {
            fd: Some(fd),
            unwatch: None,
        }
    }

    /// Joins a wait list of [`Waiter`]s whose notifications hand nothing over (an event's).
    pub(crate) fn list(
        list: &'a std::sync::Mutex<std::collections::VecDeque<Arc<Waiter>>>,
        watcher: &Watcher,
    ) -> Watching<'a> {
        let waiter = watcher.waiter.clone();
        lock_state(list).push_back(waiter.clone());
        Watching::until(move || {
            unqueue(&mut lock_state(list), &waiter);
        })
    }

    /// Nothing to watch: the object is ready, or never will be, by itself.
    pub(crate) fn none() -> Watching<'a> {
        Watching {
            fd: None,
            unwatch: None,
        }
    }

    /// Runs `unwatch` when the round ends.
    pub(crate) fn until(unwatch: impl FnOnce() + 'a) -> Watching<'a> {
        Watching {
            fd: None,
            unwatch: Some(Box::new(unwatch)),
        }
    }
}

impl Watcher {
    /// The waiter to put on a primitive's own watcher list.
    pub(crate) fn waiter(&self) -> &Arc<Waiter> {
        &self.waiter
    }

    /// The green thread to put on an exit-waiter list.
    pub(crate) fn green(&self) -> &Rc<Green> {
        &self.green
    }
}

impl Drop for Watching<'_> {
    fn drop(&mut self) {
        if let Some(unwatch) = self.unwatch.take() {
            unwatch();
        }
    }
}

/// Waits until `count` of `objects` are ready (`None`: all of them), or until `timeout`
/// passes (`None`: as long as it takes), and returns the indices of those seen ready, in
/// ascending order — fewer than `count` only on a timeout (gevent's `wait(objects, timeout,
/// count)`). Parks only the calling green thread. `Some(0)`, or no objects, only looks.
///
/// Each object's `Waitable` impl says what *ready* means for it (the list is on
/// [`Waitable`]); the implementations live beside their types.
///
/// ```
/// use std::time::Duration;
/// use greenrt::sync::{Event, Queue};
/// use greenrt::{sleep, spawn, wait};
///
/// let flag = Event::new();
/// let queue: Queue<u32> = Queue::new(0);
/// let slow = spawn(|| sleep(Duration::from_secs(5)));
/// let quick = spawn(|| sleep(Duration::from_millis(10)));
/// // The first ready of four very different things:
/// assert_eq!(wait(&[&flag, &queue, &slow, &quick], Some(1), None), [3]);
/// queue.put(7).unwrap();
/// assert_eq!(wait(&[&flag, &queue, &slow], Some(1), None), [1]);
/// // All of them, or what is ready after 20 ms:
/// assert_eq!(wait(&[&flag, &queue, &slow], None, Some(Duration::from_millis(20))), [1]);
/// slow.abort();
/// ```
pub fn wait(
    objects: &[&dyn Waitable],
    count: Option<usize>,
    timeout: Option<Duration>,
) -> Vec<usize> {
    let need = count.unwrap_or(objects.len()).min(objects.len());
    let deadline = timeout.and_then(crate::time::deadline_in);
    let mut ready = vec![false; objects.len()];
    let mut found = 0;
    loop {
        let watcher = Watcher::for_current();
        let mut fds = Vec::new();
        let mut watching = Vec::new();
        for i in 0..objects.len() {
            if ready[i] {
                continue;
            }
            let object = objects[i];
            let watch = object.watch(&watcher);
            if object.is_ready() {
                ready[i] = true;
                found += 1;
                continue; // `watch` drops: unwatched at once
            }
            fds.extend(watch.fd.map(|fd| (fd, Direction::Read)));
            watching.push(watch);
        }
        let timed_out = deadline.is_some_and(|at| Instant::now() >= at);
        if found >= need || timed_out {
            break;
        }
        if park(&fds, deadline) == Parked::TimedOut {
            drop(watching);
            mark_ready_now(objects, &mut ready);
            break;
        }
    }
    (0..objects.len()).filter(|&i| ready[i]).collect()
}

/// True if `fd` is readable now — or broken: then the caller's next read reports why.
pub(crate) fn fd_is_readable(fd: RawFd) -> bool {
    crate::sys::poll::ready_now(fd, false).unwrap_or(true)
}

/// Marks the objects that are ready now (the last look, after a timeout).
fn mark_ready_now(objects: &[&dyn Waitable], ready: &mut [bool]) {
    for (i, object) in objects.iter().enumerate() {
        ready[i] |= object.is_ready();
    }
}

#[derive(PartialEq, Eq)]
enum Parked {
    Woken,
    TimedOut,
}

/// Parks once on `fds` (and whatever lists the caller watches), counted as a sync wait: an
/// event another OS thread may set is not a deadlock.
fn park(fds: &[(RawFd, Direction)], deadline: Option<Instant>) -> Parked {
    with_hub(|hub| {
        let _counted = hub.sync_wait();
        match wait_any(fds, deadline, Interrupts::Unwind) {
            Ok(()) | Err(Fail::Stop(Stop::Closed)) | Err(Fail::Os(_)) => Parked::Woken,
            Err(Fail::Stop(Stop::TimedOut)) => Parked::TimedOut,
            Err(Fail::Stop(Stop::Interrupted(_))) => unreachable!("interrupts unwind"),
        }
    })
}

/// Yields each of `objects` (its index) as it becomes ready, each once, until all have or
/// `timeout` passes (gevent's `iwait`). The timeout covers the whole iteration.
///
/// ```
/// use std::time::Duration;
/// let handles: Vec<_> = [30u64, 10, 20]
///     .into_iter()
///     .map(|ms| greenrt::spawn(move || greenrt::sleep(Duration::from_millis(ms))))
///     .collect();
/// let objects: Vec<&dyn greenrt::Waitable> = handles.iter().map(|h| h as _).collect();
/// let order: Vec<usize> = greenrt::iwait(&objects, None).collect();
/// assert_eq!(order, [1, 2, 0]);
/// ```
pub fn iwait<'a>(objects: &'a [&'a dyn Waitable], timeout: Option<Duration>) -> Iwait<'a> {
    Iwait {
        objects,
        yielded: vec![false; objects.len()],
        pending: Vec::new(),
        deadline: timeout.and_then(crate::time::deadline_in),
    }
}

/// The iterator of [`iwait`].
pub struct Iwait<'a> {
    objects: &'a [&'a dyn Waitable],
    yielded: Vec<bool>,
    /// Seen ready together, not yielded yet.
    pending: Vec<usize>,
    deadline: Option<Instant>,
}

impl Iterator for Iwait<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.pending.is_empty() {
            let left: Vec<usize> = (0..self.objects.len())
                .filter(|&i| !self.yielded[i])
                .collect();
            if left.is_empty() {
                return None;
            }
            let subset: Vec<&dyn Waitable> = left.iter().map(|&i| self.objects[i]).collect();
            let timeout = self
                .deadline
                .map(|at| at.saturating_duration_since(Instant::now()));
            let found = wait(&subset, Some(1), timeout);
            self.pending = found.into_iter().rev().map(|j| left[j]).collect();
        }
        let next = self.pending.pop()?;
        self.yielded[next] = true;
        Some(next)
    }
}

impl std::fmt::Debug for Iwait<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iwait")
            .field("objects", &self.objects.len())
            .field("pending", &self.pending)
            .finish()
    }
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("green", &self.green.id)
            .finish()
    }
}

impl std::fmt::Debug for Watching<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watching").field("fd", &self.fd).finish()
    }
}
