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

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar};
use std::time::Duration;

use crate::sync::Event;
use crate::sync::waiter::lock_state;

mod wait;
pub use wait::{AsCompleted, Finished, ReturnWhen, Unfinished, as_completed, wait};

/// A queued job: called with `false` it runs, with `true` it is cancelled instead (its task
/// then says `Cancelled`; true if that cancel is what stopped it): one box for both, so a
/// submit allocates once.
type Job = Box<dyn FnOnce(bool) -> bool + Send + 'static>;

/// Why a [`Task`] has no value.
pub enum TaskError {
    /// The job panicked; this is the payload.
    Panicked(Box<dyn Any + Send + 'static>),
    /// The task was cancelled before it started.
    Cancelled,
    /// The task was submitted after [`ThreadPool::shutdown`] and never ran.
    Rejected,
}

impl TaskError {
    /// The panic message, for a job that panicked with a string.
    pub fn panic_message(&self) -> Option<&str> {
        let TaskError::Panicked(p) = self else {
            return None;
        };
        p.downcast_ref::<&str>()
            .copied()
            .or_else(|| p.downcast_ref::<String>().map(String::as_str))
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Panicked(_) => {
                write!(f, "Panicked({:?})", self.panic_message().unwrap_or(".."))
            }
            TaskError::Cancelled => f.write_str("Cancelled"),
            TaskError::Rejected => f.write_str("Rejected"),
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Panicked(_) => {
                write!(f, "task panicked: {}", self.panic_message().unwrap_or(".."))
            }
            TaskError::Cancelled => f.write_str("task was cancelled"),
            TaskError::Rejected => f.write_str("task submitted after the pool shut down"),
        }
    }
}

impl From<TaskError> for io::Error {
    /// For `?` in functions returning `io::Result`. A panic payload is not `Sync`, so it
    /// becomes its message (kind `Other`); `Cancelled` is `Interrupted`, `Rejected`
    /// `BrokenPipe` (the pool was shut down).
    fn from(e: TaskError) -> io::Error {
        let kind = match e {
            TaskError::Panicked(_) => io::ErrorKind::Other,
            TaskError::Cancelled => io::ErrorKind::Interrupted,
            TaskError::Rejected => io::ErrorKind::BrokenPipe,
        };
        io::Error::new(kind, e.to_string())
    }
}

impl std::error::Error for TaskError {}

type Callback<T> = Box<dyn FnOnce(&Result<T, TaskError>) + Send + 'static>;

enum Status<T> {
    Pending,
    Running,
    Done(Result<T, TaskError>),
    Taken,
}

struct TaskState<T> {
    status: std::sync::Mutex<(Status<T>, Vec<Callback<T>>)>,
    done: Event,
}

/// The handle of a submitted job (a `concurrent.futures.Future`).
pub struct Task<T> {
    state: Arc<TaskState<T>>,
}

impl<T: Send + 'static> Task<T> {
    /// Waits for the job and returns its value (or why there is none). From a green thread
    /// this parks only that green thread.
    pub fn result(self) -> Result<T, TaskError> {
        self.state.done.wait();
        self.take()
    }

    /// Waits at most `timeout`; gives the handle back if the job has not finished by then.
    pub fn result_timeout(self, timeout: Duration) -> Result<Result<T, TaskError>, Task<T>> {
        if self.state.done.wait_timeout(timeout) {
            Ok(self.take())
        } else {
            Err(self)
        }
    }

    /// True once the job has finished, panicked or been cancelled.
    pub fn done(&self) -> bool {
        self.state.done.is_set()
    }

    /// Cancels the job if it has not started; returns whether the task is now cancelled
    /// (true again for a task cancelled before, as in `concurrent.futures`).
    pub fn cancel(&self) -> bool {
        cancel_state(&self.state) != Cancel::TooLate
    }

    /// Runs `callback` with the outcome when the job finishes — on the worker thread that
    /// finished it — or at once, on this thread, if it already has. Callbacks run while the
    /// task's state is locked: they must not call methods of the same task. A callback that
    /// panics is reported (by the panic hook, as any panic) and does not stop the others, nor
    /// reach the code that added it.
    pub fn add_done_callback(&self, callback: impl FnOnce(&Result<T, TaskError>) + Send + 'static) {
        let mut status = lock_state(&self.state.status);
        match &status.0 {
            Status::Done(outcome) => run_callback(Box::new(callback), outcome),
            Status::Taken => panic!("greenrt: add_done_callback after the result was taken"),
            _ => status.1.push(Box::new(callback)),
        }
    }

    fn take(self) -> Result<T, TaskError> {
        let mut status = lock_state(&self.state.status);
        match std::mem::replace(&mut status.0, Status::Taken) {
            Status::Done(outcome) => outcome,
            _ => unreachable!("taken only once, after `done` was set"),
        }
    }
}

/// What a cancel found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cancel {
    /// It had not started: cancelled now.
    Now,
    /// Cancelled before.
    Already,
    /// Running or done: it cannot be.
    TooLate,
}

/// A `map` job's value; its panic goes on in the caller.
fn unwrap_mapped<T>(outcome: Result<T, TaskError>) -> T {
    match outcome {
        Ok(value) => value,
        Err(TaskError::Panicked(p)) => std::panic::resume_unwind(p),
        Err(e) => panic!("greenrt: a ThreadPool::map task did not run: {e}"),
    }
}

/// Cancels a task that has not started (see [`Task::cancel`]).
fn cancel_state<T>(state: &TaskState<T>) -> Cancel {
    let callbacks = {
        let mut status = lock_state(&state.status);
        match status.0 {
            Status::Pending => {}
            Status::Done(Err(TaskError::Cancelled)) => return Cancel::Already,
            _ => return Cancel::TooLate,
        }
        status.0 = Status::Done(Err(TaskError::Cancelled));
        std::mem::take(&mut status.1)
    };
    finish(state, callbacks);
    Cancel::Now
}

/// Runs the callbacks (outside the status lock), then wakes the waiters.
fn finish<T>(state: &TaskState<T>, callbacks: Vec<Callback<T>>) {
    if !callbacks.is_empty() {
        let status = lock_state(&state.status);
        if let Status::Done(outcome) = &status.0 {
            for callback in callbacks {
                run_callback(callback, outcome);
            }
        }
    }
    state.done.set();
}

/// Runs one done-callback. A panicking callback is reported by the panic hook and must not
/// take the worker, the other callbacks or the waiters' wake-up down with it.
fn run_callback<T>(callback: Callback<T>, outcome: &Result<T, TaskError>) {
    let _ = catch_unwind(AssertUnwindSafe(|| callback(outcome)));
}

struct Shared {
    jobs: std::sync::Mutex<(VecDeque<Job>, bool)>, // (queue, shut down)
    available: Condvar,
    exited: Vec<Event>,
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
        if workers == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "greenrt: a ThreadPool needs at least one worker",
            ));
        }
        let shared = Arc::new(Shared {
            jobs: std::sync::Mutex::new((VecDeque::new(), false)),
            available: Condvar::new(),
            exited: (0..workers).map(|_| Event::new()).collect(),
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
    /// pool answers a task after `close` the same way).
    pub fn submit<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Task<T> {
        let state = Arc::new(TaskState {
            status: std::sync::Mutex::new((Status::Pending, Vec::new())),
            done: Event::new(),
        });
        let job_state = state.clone();
        let job: Job = Box::new(move |cancel| {
            if cancel {
                return cancel_state(&job_state) == Cancel::Now;
            }
            run_job(&job_state, f);
            false
        });
        {
            let mut jobs = lock_state(&self.shared.jobs);
            if jobs.1 {
                drop(jobs);
                lock_state(&state.status).0 = Status::Done(Err(TaskError::Rejected));
                state.done.set();
                return Task { state };
            }
            jobs.0.push_back(job);
        }
        self.shared.available.notify_one();
        Task { state }
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
        let pending: Vec<Job> = {
            let mut jobs = lock_state(&self.shared.jobs);
            jobs.1 = true;
            jobs.0.drain(..).collect()
        };
        let cancelled = pending.into_iter().map(|job| job(true));
        let cancelled = cancelled.filter(|&now| now).count(); // not those cancelled before
        self.shutdown(wait);
        cancelled
    }

    /// Stops accepting jobs; the workers finish what is queued and exit. With `wait`, parks
    /// (only the calling green thread) until they have.
    pub fn shutdown(&self, wait: bool) {
        lock_state(&self.shared.jobs).1 = true;
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

fn run_job<T>(state: &TaskState<T>, f: impl FnOnce() -> T) {
    {
        let mut status = lock_state(&state.status);
        if !matches!(status.0, Status::Pending) {
            return; // cancelled
        }
        status.0 = Status::Running;
    }
    let outcome = catch_unwind(AssertUnwindSafe(f)).map_err(TaskError::Panicked);
    let callbacks = {
        let mut status = lock_state(&state.status);
        status.0 = Status::Done(outcome);
        std::mem::take(&mut status.1)
    };
    finish(state, callbacks);
}

/// A worker: take jobs until shut down and drained.
fn work(shared: &Shared, index: usize) {
    loop {
        let job = {
            let mut jobs = lock_state(&shared.jobs);
            loop {
                if let Some(job) = jobs.0.pop_front() {
                    break Some(job);
                }
                if jobs.1 {
                    break None;
                }
                jobs = shared
                    .available
                    .wait(jobs)
                    .unwrap_or_else(|e| e.into_inner());
            }
        };
        match job {
            Some(job) => {
                job(false);
            }
            None => break,
        }
    }
    shared.exited[index].set();
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("done", &self.state.done.is_set())
            .finish()
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("workers", &self.shared.exited.len())
            .finish()
    }
}
