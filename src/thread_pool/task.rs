//! [`Task`]: the handle of a job submitted to a [`ThreadPool`](super::ThreadPool) (a
//! `concurrent.futures.Future`), and [`TaskError`], why a task has no value.
//!
//! A task's state is a small state machine under a mutex, with the done-callbacks beside it,
//! and a green [`Event`] that is set once it is done:
//!
//! ```text
//!   Pending --run--> Running --job returns or panics--> Done(outcome) --result()--> Taken
//!      \--cancel, shutdown_cancelling, a broken pool--> Done(Err(..))
//! ```
//!
//! Callbacks run once, on whichever thread moves the task to `Done`, before the event is set.

use std::any::Any;
use std::fmt;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use crate::sync::Event;
use crate::sync::waiter::lock_state;

/// Why a [`Task`] has no value.
pub enum TaskError {
    /// The job panicked; this is the payload.
    Panicked(Box<dyn Any + Send + 'static>),
    /// The task was cancelled before it started.
    Cancelled,
    /// The task was submitted after [`ThreadPool::shutdown`] and never ran.
    ///
    /// [`ThreadPool::shutdown`]: super::ThreadPool::shutdown
    Rejected,
    /// A worker's initializer panicked, so the pool is broken (Python's `BrokenThreadPool`):
    /// the job was queued or submitted after that and never ran.
    Broken,
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
            TaskError::Broken => f.write_str("Broken"),
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
            TaskError::Broken => f.write_str(
                "task never ran: a worker's initializer panicked and the pool is broken",
            ),
        }
    }
}

impl From<TaskError> for io::Error {
    /// For `?` in functions returning `io::Result`. A panic payload is not `Sync`, so it
    /// becomes its message (kind `Other`); `Cancelled` is `Interrupted`, `Rejected`
    /// `BrokenPipe` (the pool was shut down), `Broken` `Other`.
    fn from(e: TaskError) -> io::Error {
        let kind = match e {
            TaskError::Panicked(_) => io::ErrorKind::Other,
            TaskError::Cancelled => io::ErrorKind::Interrupted,
            TaskError::Rejected => io::ErrorKind::BrokenPipe,
            TaskError::Broken => io::ErrorKind::Other,
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

pub(super) struct TaskState<T> {
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
        end_unstarted(&self.state, TaskError::Cancelled) != Cancel::TooLate
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

/// A new task, pending, and the state its job will finish.
pub(super) fn new_task<T>() -> (Task<T>, Arc<TaskState<T>>) {
    let state = Arc::new(TaskState {
        status: std::sync::Mutex::new((Status::Pending, Vec::new())),
        done: Event::new(),
    });
    (
        Task {
            state: state.clone(),
        },
        state,
    )
}

/// What ending an unstarted task found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cancel {
    /// It had not started: cancelled now.
    Now,
    /// Ended before with the same error (a task cancelled twice).
    Already,
    /// Running or done: it cannot be.
    TooLate,
}

/// A `map` job's value; its panic goes on in the caller.
pub(super) fn unwrap_mapped<T>(outcome: Result<T, TaskError>) -> T {
    match outcome {
        Ok(value) => value,
        Err(TaskError::Panicked(p)) => std::panic::resume_unwind(p),
        Err(e) => panic!("greenrt: a ThreadPool::map task did not run: {e}"),
    }
}

/// Ends a task that has not started with `error` — `Cancelled` (see [`Task::cancel`]),
/// `Rejected` or `Broken` — running its callbacks and waking its waiters.
pub(super) fn end_unstarted<T>(state: &TaskState<T>, error: TaskError) -> Cancel {
    let callbacks = {
        let mut status = lock_state(&state.status);
        match &status.0 {
            Status::Pending => {}
            Status::Done(Err(e)) if same_kind(e, &error) => return Cancel::Already,
            _ => return Cancel::TooLate,
        }
        status.0 = Status::Done(Err(error));
        std::mem::take(&mut status.1)
    };
    finish(state, callbacks);
    Cancel::Now
}

/// Both `Cancelled`, both `Rejected` or both `Broken`.
fn same_kind(a: &TaskError, b: &TaskError) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
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

/// Runs a job's function, unless its task was ended before it started.
pub(super) fn run_job<T>(state: &TaskState<T>, f: impl FnOnce() -> T) {
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

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("done", &self.state.done.is_set())
            .finish()
    }
}

/// Ready once the job has finished, panicked or been cancelled.
impl<T> crate::Waitable for Task<T> {
    fn is_ready(&self) -> bool {
        self.state.done.is_set()
    }

    fn watch<'a>(&'a self, watcher: &crate::Watcher) -> crate::Watching<'a> {
        self.state.done.watch(watcher)
    }
}
