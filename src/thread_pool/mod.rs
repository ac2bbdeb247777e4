//! [`ThreadPool`]: OS worker threads with futures and callbacks (Python's
//! `concurrent.futures.ThreadPoolExecutor`).
//!
//! Work that must not run on a hub — CPU-heavy code, a blocking library — goes to a pool of
//! OS threads. `submit` queues a job and returns a [`Task`] handle. The handle's completion
//! flag is a green [`Event`], so waiting for a result from a green thread parks only that
//! green thread: the worker that finishes the job sets the event from its own OS thread,
//! which reaches the waiter's hub through its remote wake-up queue.
//!
//! ```text
//!   green thread: pool.submit(f) --> jobs (Mutex + Condvar) --> worker OS thread runs f
//!                 task.result() parks on task.done (Event) <-- set() by the worker
//! ```
//!
//! A pool made [`with_initializer`](ThreadPool::with_initializer) runs the initializer once
//! on each worker thread before that worker takes a job. If it panics, the pool is *broken*
//! (Python's `BrokenThreadPool`): every queued job ends with [`TaskError::Broken`] without
//! running, every later `submit` too, and the workers exit.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, MutexGuard};
use std::time::Duration;

use crate::sync::Event;
use crate::sync::waiter::lock_state;

mod task;
mod wait;
pub use task::{Task, TaskError};
pub use wait::{AsCompleted, Finished, ReturnWhen, Unfinished, as_completed, wait};

use task::{Cancel, end_unstarted, new_task, run_job, unwrap_mapped};

/// A queued job, called with what becomes of it: one box for running and for ending it
/// unrun, so a submit allocates once. Returns true if this call is what ended it unrun.
type Job = Box<dyn FnOnce(Fate) -> bool + Send + 'static>;

/// What a worker, a shutdown or a submit does with a job.
#[derive(Clone, Copy)]
enum Fate {
    Run,
    /// Ends it with `TaskError::Cancelled`.
    Cancel,
    /// Ends it with `TaskError::Rejected` (submitted after a shutdown).
    Reject,
    /// Ends it with `TaskError::Broken`.
    Break,
}

impl Fate {
    /// The error a job that does not run ends with.
    fn error(self) -> Option<TaskError> {
        match self {
            Fate::Run => None,
            Fate::Cancel => Some(TaskError::Cancelled),
            Fate::Reject => Some(TaskError::Rejected),
            Fate::Break => Some(TaskError::Broken),
        }
    }
}

/// The job queue and the pool's state, under one mutex.
struct Jobs {
    queue: VecDeque<Job>,
    shut_down: bool,
    /// An initializer panicked (implies `shut_down`).
    broken: bool,
}

/// Runs once on each worker thread before its first job.
type Initializer = Arc<dyn Fn() + Send + Sync + 'static>;

struct Shared {
    jobs: std::sync::Mutex<Jobs>,
    available: Condvar,
    exited: Vec<Event>,
    initializer: Option<Initializer>,
}

/// A fixed set of OS worker threads; see the module docs.
///
/// ```
/// let pool = greenrt::thread_pool::ThreadPool::new(3).unwrap();
/// let task = pool.submit(|| 6 * 7);
/// assert_eq!(task.result().unwrap(), 42);
/// let squares = pool.map(|i: u64| i * i, 0..5);
/// assert_eq!(squares, [0, 1, 4, 9, 16]);
/// pool.shutdown(true);
/// ```
pub struct ThreadPool {
    shared: Arc<Shared>,
}

impl ThreadPool {
    /// Starts `workers` OS threads; `InvalidInput` for 0 (as `process::Pool::new` and
    /// `GreenPool::new`), or the error of a thread that could not start.
    pub fn new(workers: usize) -> io::Result<ThreadPool> {
        ThreadPool::start(workers, None)
    }

    /// [`new`](ThreadPool::new) with an `initializer` that each worker thread runs once
    /// before its first job (Python's `initializer=`): set up a thread-local, open a
    /// per-thread connection. If it panics on any worker, the pool is broken: queued and
    /// later jobs end with [`TaskError::Broken`] without running, and
    /// [`is_broken`](ThreadPool::is_broken) says so.
    ///
    /// ```
    /// use std::cell::Cell;
    /// thread_local!(static READY: Cell<bool> = const { Cell::new(false) });
    ///
    /// let pool = greenrt::thread_pool::ThreadPool::with_initializer(2, || READY.set(true))?;
    /// assert!(pool.submit(|| READY.get()).result().unwrap());
    ///
    /// let broken = greenrt::thread_pool::ThreadPool::with_initializer(1, || panic!("no db"))?;
    /// let task = broken.submit(|| 1);
    /// assert!(matches!(task.result(), Err(greenrt::thread_pool::TaskError::Broken)));
    /// assert!(broken.is_broken());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_initializer(
        workers: usize,
        initializer: impl Fn() + Send + Sync + 'static,
    ) -> io::Result<ThreadPool> {
        ThreadPool::start(workers, Some(Arc::new(initializer)))
    }

    /// True once a worker's initializer has panicked.
    pub fn is_broken(&self) -> bool {
        lock_state(&self.shared.jobs).broken
    }

    fn start(workers: usize, initializer: Option<Initializer>) -> io::Result<ThreadPool> {
        if workers == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "greenrt: a ThreadPool needs at least one worker",
            ));
        }
        let shared = Arc::new(Shared {
            jobs: std::sync::Mutex::new(Jobs {
                queue: VecDeque::new(),
                shut_down: false,
                broken: false,
            }),
            available: Condvar::new(),
            exited: (0..workers).map(|_| Event::new()).collect(),
            initializer,
        });
        let pool = ThreadPool {
            shared: shared.clone(),
        };
        for i in 0..workers {
            let shared = shared.clone();
            let started = std::thread::Builder::new()
                .name(format!("greenrt-worker-{i}"))
                .spawn(move || work(&shared, i));
            if let Err(e) = started {
                // The workers already started exit once shut down; the missing ones count as
                // exited so that the shutdown's wait does not wait for them.
                pool.shared.exited[i..].iter().for_each(Event::set);
                return Err(e);
            }
        }
        Ok(pool)
    }

    /// Queues `f` for a worker and returns its [`Task`]. After [`ThreadPool::shutdown`] the
    /// job never runs: the task is done at once with `Err(TaskError::Rejected)` (the process
    /// pool answers a task after `close` the same way); in a broken pool, with
    /// `Err(TaskError::Broken)`.
    pub fn submit<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Task<T> {
        let (task, state) = new_task();
        let job: Job = Box::new(move |fate: Fate| match fate.error() {
            None => {
                run_job(&state, f);
                false
            }
            Some(error) => end_unstarted(&state, error) == Cancel::Now,
        });
        let mut jobs = lock_state(&self.shared.jobs);
        if jobs.shut_down {
            let fate = if jobs.broken {
                Fate::Break
            } else {
                Fate::Reject
            };
            drop(jobs);
            job(fate);
            return task;
        }
        jobs.queue.push_back(job);
        drop(jobs);
        self.shared.available.notify_one();
        task
    }

    /// Runs `f` on every item in the pool and returns the results in input order; a job's
    /// panic is re-raised here.
    pub fn map<A, T, I>(&self, f: impl Fn(A) -> T + Send + Sync + 'static, items: I) -> Vec<T>
    where
        A: Send + 'static,
        T: Send + 'static,
        I: IntoIterator<Item = A>,
    {
        self.submit_all(f, items)
            .into_iter()
            .map(|t| unwrap_mapped(t.result()))
            .collect()
    }

    /// [`map`](ThreadPool::map) that gives up after `timeout` (Python's `map(timeout=)`):
    /// the results in input order if every job finished in time; else `Unfinished` with how
    /// many had not, and those not yet started are cancelled (running ones finish unseen).
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = greenrt::thread_pool::ThreadPool::new(1)?;
    /// let slow = |ms: u64| { std::thread::sleep(Duration::from_millis(ms)); ms };
    /// assert_eq!(pool.map_timeout(slow, [1, 2], Duration::from_secs(5)), Ok(vec![1, 2]));
    /// let late = pool.map_timeout(slow, [300, 1, 1], Duration::from_millis(50)).unwrap_err();
    /// assert_eq!((late.count, late.of), (3, 3)); // the two queued ones were cancelled
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn map_timeout<A, T, I>(
        &self,
        f: impl Fn(A) -> T + Send + Sync + 'static,
        items: I,
        timeout: Duration,
    ) -> Result<Vec<T>, Unfinished>
    where
        A: Send + 'static,
        T: Send + 'static,
        I: IntoIterator<Item = A>,
    {
        let tasks = self.submit_all(f, items);
        let finished = wait(&tasks, ReturnWhen::AllCompleted, Some(timeout));
        if !finished.not_done.is_empty() {
            for &i in &finished.not_done {
                tasks[i].cancel();
            }
            return Err(Unfinished {
                count: finished.not_done.len(),
                of: tasks.len(),
            });
        }
        Ok(tasks
            .into_iter()
            .map(|t| unwrap_mapped(t.result()))
            .collect())
    }

    /// Submits `f` on every item, in order.
    fn submit_all<A, T, I>(
        &self,
        f: impl Fn(A) -> T + Send + Sync + 'static,
        items: I,
    ) -> Vec<Task<T>>
    where
        A: Send + 'static,
        T: Send + 'static,
        I: IntoIterator<Item = A>,
    {
        let f = Arc::new(f);
        items
            .into_iter()
            .map(|item| {
                let f = f.clone();
                self.submit(move || f(item))
            })
            .collect()
    }

    /// Stops accepting jobs and cancels every job that has not started (Python's
    /// `shutdown(cancel_futures=True)`): their tasks say `Cancelled`, their callbacks run.
    /// Jobs already running finish; with `wait`, parks until they have. Returns how many
    /// were cancelled.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = greenrt::thread_pool::ThreadPool::new(1)?;
    /// let running = pool.submit(|| std::thread::sleep(Duration::from_millis(50)));
    /// std::thread::sleep(Duration::from_millis(10)); // it has started
    /// let queued = pool.submit(|| 1);
    /// assert_eq!(pool.shutdown_cancelling(true), 1);
    /// assert!(running.result().is_ok());
    /// assert!(matches!(queued.result(), Err(greenrt::thread_pool::TaskError::Cancelled)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown_cancelling(&self, wait: bool) -> usize {
        let pending = take_queued(lock_state(&self.shared.jobs));
        let cancelled = pending.into_iter().map(|job| job(Fate::Cancel));
        let cancelled = cancelled.filter(|&now| now).count(); // not those cancelled before
        self.shutdown(wait);
        cancelled
    }

    /// Stops accepting jobs; the workers finish what is queued and exit. With `wait`, parks
    /// (only the calling green thread) until they have.
    pub fn shutdown(&self, wait: bool) {
        lock_state(&self.shared.jobs).shut_down = true;
        self.shared.available.notify_all();
        if wait {
            self.shared.exited.iter().for_each(Event::wait);
        }
    }
}

impl Drop for ThreadPool {
    /// Shuts down and waits for queued jobs, like leaving a Python `with` block.
    fn drop(&mut self) {
        self.shutdown(true);
    }
}

/// Shuts the pool down and takes the jobs no worker has started.
fn take_queued(mut jobs: MutexGuard<'_, Jobs>) -> Vec<Job> {
    jobs.shut_down = true;
    jobs.queue.drain(..).collect()
}

/// A worker: run the initializer, then take jobs until shut down and drained.
fn work(shared: &Shared, index: usize) {
    if initialize(shared) {
        while let Some(job) = next_job(shared) {
            job(Fate::Run);
        }
    }
    shared.exited[index].set();
}

/// Runs the pool's initializer on this worker; if it panics (the panic hook reports it),
/// breaks the pool — every queued job ends `Broken` — and returns false.
fn initialize(shared: &Shared) -> bool {
    let Some(initializer) = &shared.initializer else {
        return true;
    };
    if catch_unwind(AssertUnwindSafe(|| initializer())).is_ok() {
        return true;
    }
    let queued = {
        let mut jobs = lock_state(&shared.jobs);
        jobs.broken = true;
        take_queued(jobs)
    };
    shared.available.notify_all(); // the other workers: shut down, drained
    queued.into_iter().for_each(|job| {
        job(Fate::Break);
    });
    false
}

/// The next queued job, or `None` once the pool is shut down and drained.
fn next_job(shared: &Shared) -> Option<Job> {
    let mut jobs = lock_state(&shared.jobs);
    loop {
        if let Some(job) = jobs.queue.pop_front() {
            return Some(job);
        }
        if jobs.shut_down {
            return None;
        }
        jobs = shared
            .available
            .wait(jobs)
            .unwrap_or_else(|e| e.into_inner());
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("workers", &self.shared.exited.len())
            .finish()
    }
}
