//! [`GreenPool`]: at most `size` green threads at a time (gevent's `gevent.pool.Pool`).
//!
//! The bound is a green [`Semaphore`]: `spawn` takes a permit — parking the caller while
//! `size` green threads run — and the spawned green thread gives it back when it ends,
//! however it ends (a guard owns the permit, so a panic or a kill releases it too).

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::Rc;

use crate::join::{JoinError, JoinHandle, Watcher};
use crate::sync::{Queue, Semaphore};

struct Inner {
    slots: Semaphore,
    size: usize,
    /// The green threads this pool started that may still run.
    running: RefCell<Vec<Watcher>>,
}

/// gevent's `Group`: a [`GreenPool`] with no bound, made by [`GreenPool::unbounded`].
pub type Group = GreenPool;

/// A bounded set of green threads; see the module docs. Cheap to clone (a shared handle).
///
/// ```
/// use std::time::Duration;
///
/// let pool = greenrt::pool::GreenPool::new(3).unwrap();
/// let squares = pool.map(|x: u64| { greenrt::sleep(Duration::from_millis(1)); x * x }, 1..=5);
/// assert_eq!(squares, [1, 4, 9, 16, 25]);
/// ```
#[derive(Clone)]
pub struct GreenPool {
    inner: Rc<Inner>,
}

/// Gives the pool slot back when the green thread holding it ends in any way.
struct Slot(Rc<Inner>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.slots.release();
    }
}

impl GreenPool {
    /// A pool that runs at most `size` green threads at once; `InvalidInput` for 0 (nothing
    /// could ever run), as `ThreadPool::new` and `process::Pool::new`.
    pub fn new(size: usize) -> io::Result<GreenPool> {
        if size == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "greenrt: a GreenPool needs a size of at least 1",
            ));
        }
        Ok(GreenPool {
            inner: Rc::new(Inner {
                slots: Semaphore::new(size),
                size,
                running: RefCell::new(Vec::new()),
            }),
        })
    }

    /// A group with no bound (gevent's `gevent.pool.Group`): every spawn starts at once, and
    /// `join`, `kill_all`, `map`, `imap` work on the members as for a bounded pool.
    ///
    /// ```
    /// let group = greenrt::pool::GreenPool::unbounded();
    /// let handles: Vec<_> = (0..3).map(|i| group.spawn(move || i)).collect();
    /// group.join();
    /// assert!(handles.iter().all(|h| h.is_finished()));
    /// ```
    pub fn unbounded() -> GreenPool {
        GreenPool::new(usize::MAX).expect("usize::MAX is not 0")
    }

    /// Spawns `f` in the pool, first parking the caller while `size` green threads run.
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.inner.slots.acquire().forget(); // owned by the Slot from here on
        self.spawn_in_slot(f)
    }

    /// Spawns `f` only if a slot is free now (gevent's `spawn` on a full pool with
    /// `block=False`); `Err(f)` hands the function back if the pool is full.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = greenrt::pool::GreenPool::new(1).unwrap();
    /// let busy = pool.spawn(|| greenrt::sleep(Duration::from_millis(50)));
    /// assert!(pool.try_spawn(|| ()).is_err(), "the only slot is taken");
    /// busy.join().unwrap();
    /// assert!(pool.try_spawn(|| ()).is_ok());
    /// ```
    #[track_caller]
    pub fn try_spawn<F, T>(&self, f: F) -> Result<JoinHandle<T>, F>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        match self.inner.slots.try_acquire() {
            Some(permit) => {
                permit.forget();
                Ok(self.spawn_in_slot(f))
            }
            None => Err(f),
        }
    }

    /// Spawns `f`, waiting at most `timeout` for a free slot (gevent's `spawn` with
    /// `timeout=`); `Err(f)` if none came free in time.
    #[track_caller]
    pub fn spawn_timeout<F, T>(
        &self,
        f: F,
        timeout: std::time::Duration,
    ) -> Result<JoinHandle<T>, F>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        match self.inner.slots.acquire_timeout(timeout) {
            Some(permit) => {
                permit.forget();
                Ok(self.spawn_in_slot(f))
            }
            None => Err(f),
        }
    }

    /// Waits until at least one slot is free, at most `timeout` (`None`: no limit); returns
    /// how many are free then (gevent's `wait_available`). Takes no slot: a spawn may still
    /// have to wait if another green thread takes it first.
    pub fn wait_available(&self, timeout: Option<std::time::Duration>) -> usize {
        let permit = match timeout {
            None => Some(self.inner.slots.acquire()),
            Some(t) => self.inner.slots.acquire_timeout(t),
        };
        drop(permit); // only looked: the slot goes back at once
        self.free_count()
    }

    /// Runs `f` in the pool and waits for its value (gevent's `apply`): parks while the pool
    /// is full, then until `f` returns. A panic in `f` goes on in the caller.
    ///
    /// ```
    /// let pool = greenrt::pool::GreenPool::new(2).unwrap();
    /// assert_eq!(pool.apply(|| 6 * 7), 42);
    /// ```
    #[track_caller]
    pub fn apply<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> T {
        self.spawn(f).join().unwrap_or_else(|e| reraise(e))
    }

    /// [`spawn`](GreenPool::spawn) with a callback on the value (gevent's `apply_async(func,
    /// callback=)`): `callback` runs with it when `f` returns (a link; see
    /// [`JoinHandle::link_value`]).
    #[track_caller]
    pub fn apply_async<T: 'static>(
        &self,
        f: impl FnOnce() -> T + 'static,
        callback: impl FnOnce(&T) + 'static,
    ) -> JoinHandle<T> {
        let handle = self.spawn(f);
        handle.link_value(callback);
        handle
    }

    /// Spawns `f` in a slot already taken for it.
    #[track_caller]
    fn spawn_in_slot<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let slot = Slot(self.inner.clone());
        let handle = crate::spawn(move || {
            let _slot = slot;
            f()
        });
        let mut running = self.inner.running.borrow_mut();
        running.retain(|w| !w.is_finished());
        running.push(handle.watcher());
        handle
    }

    /// Runs `f` on every item, at most `size` at a time, and returns the results in input
    /// order. A task that panicked (or was killed) makes `map` panic with its payload.
    pub fn map<A, R, I>(&self, f: impl Fn(A) -> R + 'static, items: I) -> Vec<R>
    where
        A: 'static,
        R: 'static,
        I: IntoIterator<Item = A>,
    {
        let f = Rc::new(f);
        let handles: Vec<_> = items
            .into_iter()
            .map(|item| {
                let f = f.clone();
                self.spawn(move || f(item))
            })
            .collect();
        crate::joinall(handles)
            .into_iter()
            .map(|r| r.unwrap_or_else(|e| reraise(e)))
            .collect()
    }

    /// Runs `f` on every item, at most `size` at a time, yielding each outcome as soon as its
    /// task finishes (completion order, not input order).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = greenrt::pool::GreenPool::new(4).unwrap();
    /// let order: Vec<u64> = pool
    ///     .imap_unordered(|ms: u64| { greenrt::sleep(Duration::from_millis(ms)); ms }, [30, 10, 20])
    ///     .map(Result::unwrap)
    ///     .collect();
    /// assert_eq!(order, [10, 20, 30]);
    /// ```
    pub fn imap_unordered<A, R, I>(
        &self,
        f: impl Fn(A) -> R + 'static,
        items: I,
    ) -> ImapUnordered<R>
    where
        A: 'static,
        R: 'static,
        I: IntoIterator<Item = A> + 'static,
    {
        let results: Rc<Queue<Result<R, JoinError>>> = Rc::new(Queue::new(0));
        let (pool, out, f) = (self.clone(), results.clone(), Rc::new(f));
        // A feeder spawns the tasks (parking while the pool is full) as the caller consumes.
        let feeder = crate::spawn(move || {
            // However the feeder ends (the input panics, the feeder is killed), the consumer
            // sees the end of the results instead of waiting forever.
            let _close = CloseOnDrop(out.clone());
            let mut tasks = Vec::new();
            let fed = catch_unwind(AssertUnwindSafe(|| {
                for item in items {
                    let (f, out) = (f.clone(), out.clone());
                    tasks.push(pool.spawn(move || {
                        let outcome = catch_unwind(AssertUnwindSafe(|| f(item)));
                        if let Err(payload) = &outcome
                            && crate::hub::park::is_interrupt(&**payload)
                        {
                            let Err(payload) = outcome else {
                                unreachable!()
                            };
                            resume_unwind(payload); // killed: the feeder reports `Killed`
                        }
                        let _ = out.put(outcome.map_err(JoinError::Panicked));
                    }));
                }
            }));
            let count = tasks.len();
            for task in tasks {
                if let Err(JoinError::Killed) = task.join() {
                    let _ = out.put(Err(JoinError::Killed));
                }
            }
            if let Err(payload) = fed {
                if crate::hub::park::is_interrupt(&*payload) {
                    resume_unwind(payload); // a kill or timeout of the feeder goes on
                }
                // The input iterator panicked: the consumer gets that panic as the last item.
                let _ = out.put(Err(JoinError::Panicked(payload)));
            }
            count
        });
        ImapUnordered {
            results,
            _feeder: feeder,
        }
    }

    /// Runs `f` on every item, at most `size` at a time, yielding the outcomes in *input*
    /// order (gevent's `imap`). With back-pressure: the feeder runs at most `size` tasks ahead
    /// of the one the consumer waits for, so a slow consumer holds back the input instead of
    /// piling up results. An input iterator that panics ends the sequence with that panic as
    /// its last item. Dropping the iterator stops the feeding (tasks already started finish).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = greenrt::pool::GreenPool::new(4).unwrap();
    /// let order: Vec<u64> = pool
    ///     .imap(|ms: u64| { greenrt::sleep(Duration::from_millis(ms)); ms }, [30, 10, 20])
    ///     .map(Result::unwrap)
    ///     .collect();
    /// assert_eq!(order, [30, 10, 20]); // input order, though 10 finished first
    /// ```
    pub fn imap<A, R, I>(&self, f: impl Fn(A) -> R + 'static, items: I) -> Imap<R>
    where
        A: 'static,
        R: 'static,
        I: IntoIterator<Item = A> + 'static,
    {
        let handles: Rc<Queue<JoinHandle<R>>> = Rc::new(Queue::new(self.size()));
        let (pool, out, f) = (self.clone(), handles.clone(), Rc::new(f));
        let feeder = crate::spawn(move || {
            let _close = CloseOnDrop(out.clone());
            let fed = catch_unwind(AssertUnwindSafe(|| {
                for item in items {
                    let f = f.clone();
                    // Parks while `size` handles wait for the consumer: the back-pressure.
                    if out.put(pool.spawn(move || f(item))).is_err() {
                        return; // the consumer is gone
                    }
                }
            }));
            if let Err(payload) = fed {
                if crate::hub::park::is_interrupt(&*payload) {
                    resume_unwind(payload);
                }
                // The input panicked: its payload becomes the last outcome, in order.
                let _ = out.put(crate::spawn(move || -> R { resume_unwind(payload) }));
            }
        });
        Imap {
            handles,
            _feeder: feeder,
        }
    }

    /// Parks until every green thread of the pool has finished — also those spawned while it
    /// waits. Interrupted (a `timeout`, a kill), it forgets no one: the next `join` waits for
    /// the members still running.
    pub fn join(&self) {
        while let Some(member) = self.first_running() {
            member.wait_finished(None);
        }
    }

    /// [`join`](GreenPool::join) for at most `timeout`; true if every member finished.
    pub fn join_timeout(&self, timeout: std::time::Duration) -> bool {
        let deadline = crate::time::deadline_in(timeout);
        while let Some(member) = self.first_running() {
            if !member.wait_finished(deadline) {
                return false;
            }
        }
        true
    }

    /// Kills every green thread of the pool: all are marked first, so members that have not
    /// started yet never start, then waited for (each unwinds at its park point).
    pub fn kill_all(&self) {
        self.request_kill_all();
        self.join();
    }

    /// [`kill_all`](GreenPool::kill_all), waiting at most `timeout`: returns how many
    /// members are still running then (gevent's `kill(timeout=)`). A member survives a kill
    /// while it runs without parking (a busy loop, a blocking call) — it dies at its next
    /// park point.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = greenrt::pool::GreenPool::new(4).unwrap();
    /// for _ in 0..3 {
    ///     pool.spawn(|| greenrt::sleep(Duration::from_secs(60)));
    /// }
    /// assert_eq!(pool.kill_all_timeout(Duration::from_secs(1)), 0);
    /// ```
    pub fn kill_all_timeout(&self, timeout: std::time::Duration) -> usize {
        self.request_kill_all();
        if self.join_timeout(timeout) {
            return 0;
        }
        let mut running = self.inner.running.borrow_mut();
        running.retain(|w| !w.is_finished());
        running.len()
    }

    fn request_kill_all(&self) {
        let members = self.inner.running.borrow().clone();
        members.iter().for_each(Watcher::request_kill);
    }

    /// The first member not finished yet, dropping the finished ones from the list.
    fn first_running(&self) -> Option<Watcher> {
        let mut running = self.inner.running.borrow_mut();
        running.retain(|w| !w.is_finished());
        running.first().cloned()
    }

    /// How many more green threads could start right now without waiting.
    pub fn free_count(&self) -> usize {
        self.inner.slots.available()
    }

    /// The most green threads the pool runs at once.
    pub fn size(&self) -> usize {
        self.inner.size
    }
}

/// Closes the queue of an `imap` or `imap_unordered` when its feeder ends, however it ends.
struct CloseOnDrop<T>(Rc<Queue<T>>);

impl<T> Drop for CloseOnDrop<T> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Re-raises a task's failure in the caller (gevent re-raises the greenlet's exception).
fn reraise(error: JoinError) -> ! {
    match error {
        JoinError::Panicked(payload) => std::panic::resume_unwind(payload),
        other => panic!("greenrt: a GreenPool task failed: {other}"),
    }
}

/// The iterator of [`GreenPool::imap`]: outcomes in input order.
pub struct Imap<R: 'static> {
    handles: Rc<Queue<JoinHandle<R>>>,
    _feeder: JoinHandle<()>,
}

impl<R: 'static> Iterator for Imap<R> {
    type Item = Result<R, JoinError>;

    fn next(&mut self) -> Option<Self::Item> {
        let handle = self.handles.get().ok()?;
        Some(handle.join())
    }
}

impl<R: 'static> Drop for Imap<R> {
    /// Stops the feeder: its next put fails and it ends.
    fn drop(&mut self) {
        self.handles.close();
    }
}

impl<R> fmt::Debug for Imap<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imap")
            .field("queued", &self.handles.len())
            .finish()
    }
}

/// The iterator of [`GreenPool::imap_unordered`].
pub struct ImapUnordered<R: 'static> {
    results: Rc<Queue<Result<R, JoinError>>>,
    _feeder: JoinHandle<usize>,
}

impl<R: 'static> Iterator for ImapUnordered<R> {
    type Item = Result<R, JoinError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.results.get().ok()
    }
}

impl fmt::Debug for GreenPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GreenPool")
            .field("size", &self.inner.size)
            .field("free", &self.free_count())
            .finish()
    }
}

impl<R> fmt::Debug for ImapUnordered<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapUnordered")
            .field("ready", &self.results.len())
            .finish()
    }
}
