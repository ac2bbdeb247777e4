//! [`GreenPool`]: at most `size` green threads at a time (gevent's `gevent.pool.Pool`).
//!
//! The bound is a green [`Semaphore`]: `spawn` takes a permit — parking the caller while
//! `size` green threads run — and the spawned green thread gives it back when it ends,
//! however it ends (a guard owns the permit, so a panic or a kill releases it too).

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use crate::join::{JoinError, JoinHandle, Watcher};
use crate::sync::{Queue, Semaphore};

struct Inner {
    slots: Semaphore,
    size: usize,
    /// The green threads this pool started that may still run.
    running: RefCell<Vec<Watcher>>,
}

/// A bounded set of green threads; see the module docs. Cheap to clone (a shared handle).
///
/// ```
/// use std::time::Duration;
///
/// let pool = greenrt::pool::GreenPool::new(3);
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
    /// A pool that runs at most `size` green threads at once.
    ///
    /// # Panics
    /// If `size` is 0 (nothing could ever run).
    pub fn new(size: usize) -> GreenPool {
        assert!(size > 0, "greenrt: a GreenPool needs a size of at least 1");
        GreenPool {
            inner: Rc::new(Inner {
                slots: Semaphore::new(size),
                size,
                running: RefCell::new(Vec::new()),
            }),
        }
    }

    /// Spawns `f` in the pool, first parking the caller while `size` green threads run.
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.inner.slots.acquire().forget(); // owned by the Slot from here on
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
    /// let pool = greenrt::pool::GreenPool::new(4);
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
            let tasks: Vec<_> = items
                .into_iter()
                .map(|item| {
                    let (f, out) = (f.clone(), out.clone());
                    pool.spawn(move || {
                        let outcome =
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(item)));
                        let _ = out.put(outcome.map_err(JoinError::Panicked));
                    })
                })
                .collect();
            let count = tasks.len();
            for task in tasks {
                if let Err(JoinError::Killed) = task.join() {
                    let _ = out.put(Err(JoinError::Killed));
                }
            }
            out.close();
            count
        });
        ImapUnordered {
            results,
            _feeder: feeder,
        }
    }

    /// Parks until every green thread of the pool has finished.
    pub fn join(&self) {
        let running = std::mem::take(&mut *self.inner.running.borrow_mut());
        for watcher in running {
            watcher.wait_finished(None);
        }
    }

    /// Kills every green thread of the pool (each unwinds at its park point).
    pub fn kill_all(&self) {
        let running = std::mem::take(&mut *self.inner.running.borrow_mut());
        for watcher in running {
            watcher.kill();
        }
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

/// Re-raises a task's failure in the caller (gevent re-raises the greenlet's exception).
fn reraise(error: JoinError) -> ! {
    match error {
        JoinError::Panicked(payload) => std::panic::resume_unwind(payload),
        other => panic!("greenrt: a GreenPool task failed: {other}"),
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
            .field("ready", &self.results.qsize())
            .finish()
    }
}
