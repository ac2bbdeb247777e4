//! The owner's side of one task: [`AsyncResult`] and how a finished task reaches it.
//!
//! When the manager thread learns a task's outcome (bytes from a worker, or a failure such as
//! a dead worker), it calls the task's *completion*: a boxed closure made at submit time that
//! knows the result type. It decodes the value, runs the user's callback or error callback
//! (on the manager thread, like Python's result-handler thread), stores the value and sets a
//! green `Event` that `get` waits on — parking only the calling green thread.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::sync::Event;

/// Why a pool task produced no value.
///
/// Not the same type as [`thread_pool::TaskError`](crate::thread_pool::TaskError): a thread
/// pool hands back a panic's *payload* (to `resume_unwind` it), which cannot cross a process
/// boundary, so here a panic is its message. Both convert into `io::Error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskError {
    /// The task panicked with this message. The worker lives on.
    Panicked(String),
    /// The argument or the result could not be encoded or decoded (serde failed on this
    /// value: e.g. a map with non-string keys in a format that needs them). The worker lives on.
    Codec(String),
    /// The worker running the task died (SIGKILL, abort, segfault...). It has been replaced.
    WorkerDied {
        /// The dead worker's pid.
        pid: u32,
        /// Its exit code, if it exited.
        code: Option<i32>,
        /// The signal that ended it, if one did.
        signal: Option<i32>,
    },
    /// The pool was terminated (or dropped) before the task finished.
    Terminated,
    /// `get_timeout`: not finished in time (the result can still be had later).
    TimedOut,
    /// The value was already taken by an earlier `get`.
    Taken,
    /// The task was not run: see [`Rejection`].
    Rejected(Rejection),
}

/// Why a pool did not run a task.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The pool was closed (or terminated) before the task was submitted.
    Closed,
    /// The encoded argument is larger than a worker's inbox takes.
    TooLarge {
        /// Encoded size in bytes.
        size: usize,
        /// The largest message the inbox takes.
        max: usize,
    },
    /// The worker refused it: the task's function tag did not match, so the shared memory
    /// between the pool and its workers was altered.
    BadTag,
    /// The queue between the pool and a worker failed (corrupt shared memory), or the result
    /// could not be sent back; the message says which.
    Channel(String),
    /// A worker's initializer panicked (with this message), so the pool runs nothing more
    /// (Python's `BrokenProcessPool`; `multiprocessing.Pool` would respawn and fail forever).
    Broken(String),
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Closed => f.write_str("the pool is closed"),
            Rejection::TooLarge { size, max } => write!(
                f,
                "the argument encodes to {size} bytes, more than a worker's inbox takes ({max})"
            ),
            Rejection::BadTag => {
                f.write_str("the worker refused it: wrong function tag (shared memory altered?)")
            }
            Rejection::Channel(why) => write!(f, "the pool's channel failed: {why}"),
            Rejection::Broken(why) => write!(
                f,
                "the pool is broken: a worker's initializer panicked: {why}"
            ),
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Panicked(msg) => write!(f, "the task panicked: {msg}"),
            TaskError::Codec(msg) => write!(f, "the task's data could not be carried: {msg}"),
            TaskError::WorkerDied { pid, code, signal } => match (code, signal) {
                (_, Some(sig)) => write!(
                    f,
                    "worker {pid} died from signal {sig} while running the task"
                ),
                (Some(code), None) => {
                    write!(f, "worker {pid} exited with {code} while running the task")
                }
                (None, None) => write!(f, "worker {pid} died while running the task"),
            },
            TaskError::Terminated => {
                f.write_str("the pool was terminated before the task finished")
            }
            TaskError::TimedOut => f.write_str("the task has not finished yet"),
            TaskError::Taken => f.write_str("the task's result was already taken"),
            TaskError::Rejected(why) => write!(f, "the task was not submitted: {why}"),
        }
    }
}

impl std::error::Error for TaskError {}

impl From<TaskError> for std::io::Error {
    /// An `io::Error` whose kind says what happened (`TimedOut`, `InvalidData` for codec
    /// failures, `Other` for a panic or a dead worker...) and which carries the `TaskError`
    /// (`get_ref().downcast_ref()`), so `?` works in functions returning `io::Result`.
    fn from(e: TaskError) -> std::io::Error {
        use std::io::ErrorKind;
        let kind = match &e {
            TaskError::TimedOut => ErrorKind::TimedOut,
            TaskError::Codec(_) => ErrorKind::InvalidData,
            TaskError::Rejected(Rejection::TooLarge { .. }) => ErrorKind::InvalidInput,
            TaskError::Rejected(Rejection::Broken(_)) => ErrorKind::Other,
            TaskError::Rejected(Rejection::BadTag | Rejection::Channel(_)) => {
                ErrorKind::InvalidData
            }
            TaskError::Rejected(_) | TaskError::Terminated => ErrorKind::BrokenPipe,
            TaskError::Panicked(_) | TaskError::WorkerDied { .. } | TaskError::Taken => {
                ErrorKind::Other
            }
        };
        std::io::Error::new(kind, e)
    }
}

impl From<super::wire::Failure> for TaskError {
    fn from(failure: super::wire::Failure) -> TaskError {
        use super::wire::Failure;
        match failure {
            Failure::Panicked(msg) => TaskError::Panicked(msg),
            Failure::Codec(msg) => TaskError::Codec(msg),
            Failure::BadTag => TaskError::Rejected(Rejection::BadTag),
            Failure::NotSent(why) => TaskError::Rejected(Rejection::Channel(why)),
        }
    }
}

/// A finished task as the manager sees it: the encoded value, or why there is none.
pub(crate) type Outcome = Result<Vec<u8>, TaskError>;

/// Delivers one task's outcome to its `AsyncResult` (see the module docs).
pub(crate) type Completion = Box<dyn FnOnce(Outcome) + Send>;

/// Stores a task's (decoded) outcome in its `AsyncResult`, running the user's callbacks.
pub(crate) type Fill<R> = Box<dyn FnOnce(Result<R, TaskError>) + Send>;

/// A user callback on the value, or on the error.
pub(crate) type Callback<R> = Box<dyn FnOnce(&R) + Send>;
pub(crate) type ErrorCallback = Box<dyn FnOnce(&TaskError) + Send>;

struct Slot<R> {
    done: Event,
    value: Mutex<Option<Result<R, TaskError>>>,
    /// Whether the task succeeded, kept after its value is taken (for `successful`).
    succeeded: std::sync::OnceLock<bool>,
}

/// The result of a task submitted with `apply_async` (multiprocessing's `AsyncResult`).
pub struct AsyncResult<R> {
    slot: Arc<Slot<R>>,
}

impl<R> fmt::Debug for AsyncResult<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.ready())
            .finish()
    }
}

impl<R: Send + 'static> AsyncResult<R> {
    /// A pending result and what fills it with a decoded outcome (after the callbacks).
    pub(crate) fn pending(
        callback: Option<Callback<R>>,
        error_callback: Option<ErrorCallback>,
    ) -> (AsyncResult<R>, Fill<R>) {
        let slot = Arc::new(Slot {
            done: Event::new(),
            value: Mutex::new(None),
            succeeded: std::sync::OnceLock::new(),
        });
        let filler = slot.clone();
        let fill: Fill<R> = Box::new(move |value| {
            match &value {
                Ok(v) => callback.into_iter().for_each(|cb| cb(v)),
                Err(e) => error_callback.into_iter().for_each(|cb| cb(e)),
            }
            let _ = filler.succeeded.set(value.is_ok());
            *filler.value.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
            filler.done.set();
        });
        (AsyncResult { slot }, fill)
    }
}

impl<R: DeserializeOwned + Send + 'static> AsyncResult<R> {
    /// A pending result and the completion that will decode a worker's bytes into it.
    pub(crate) fn new(
        callback: Option<Callback<R>>,
        error_callback: Option<ErrorCallback>,
    ) -> (AsyncResult<R>, Completion) {
        let (result, fill) = AsyncResult::pending(callback, error_callback);
        let completion: Completion = Box::new(move |outcome| fill(decode(outcome)));
        (result, completion)
    }
}

/// A worker's encoded value as an `R`, or why there is none.
pub(crate) fn decode<R: DeserializeOwned>(outcome: Outcome) -> Result<R, TaskError> {
    outcome.and_then(|bytes| {
        postcard::from_bytes::<R>(&bytes)
            .map_err(|e| TaskError::Codec(format!("cannot decode the task's result: {e}")))
    })
}

impl<R> AsyncResult<R> {
    /// Waits for the task and returns its value (parking only the calling green thread).
    pub fn get(self) -> Result<R, TaskError> {
        self.slot.done.wait();
        self.take()
    }

    /// Waits at most `timeout`: `Err(TaskError::TimedOut)` if the task has not finished (the
    /// result can still be had later); the value, or `Err(Taken)` if an earlier call took it.
    pub fn get_timeout(&self, timeout: Duration) -> Result<R, TaskError> {
        if !self.slot.done.wait_timeout(timeout) {
            return Err(TaskError::TimedOut);
        }
        self.take()
    }

    fn take(&self) -> Result<R, TaskError> {
        self.slot
            .value
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or(Err(TaskError::Taken))
    }

    /// Waits for the task to finish.
    pub fn wait(&self) {
        self.slot.done.wait();
    }

    /// Waits at most `timeout`; true if the task finished.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.slot.done.wait_timeout(timeout)
    }

    /// True once the task has finished (either way).
    pub fn ready(&self) -> bool {
        self.slot.done.is_set()
    }

    /// `Some(true)` if the task finished with a value, `Some(false)` if it failed, `None` while
    /// it runs (Python raises an error there).
    pub fn successful(&self) -> Option<bool> {
        if !self.ready() {
            return None;
        }
        self.slot.succeeded.get().copied() // also after `get` took the value
    }
}

/// Ready once the task has finished (either way).
impl<R> crate::Waitable for AsyncResult<R> {
    fn is_ready(&self) -> bool {
        self.ready()
    }

    fn watch<'a>(&'a self, watcher: &crate::Watcher) -> crate::Watching<'a> {
        self.slot.done.watch(watcher)
    }
}
