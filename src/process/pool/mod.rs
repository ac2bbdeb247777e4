//! `process::Pool`: a pool of worker processes (multiprocessing.Pool), which never hangs on
//! a dead worker.
//!
//! ```text
//!   owner process                                  factory process       worker processes
//!   -------------                                  ---------------       ----------------
//!   apply_async / map --submit--> manager thread --control--> fork ----> worker 0 .. n-1
//!        ^                         (own hub)     <--events---  join       |  inbox[k] (ipc)
//!        |                           |  ^                                 |  runs fn(A) -> R
//!        +--- AsyncResult <---------+  +---------------- results (ipc) <--+
//! ```
//!
//! * `f` is a plain `fn(A) -> R`: it is named by address, valid in the forked workers (see
//!   `wire.rs`); `A` and `R` travel as postcard-encoded serde values.
//! * A panicking task fails with its message ([`TaskError::Panicked`]); the worker lives on.
//! * A worker that dies (SIGKILL, abort, segfault) fails exactly the task it was running
//!   with [`TaskError::WorkerDied`]; tasks queued behind it are re-sent to other workers, and
//!   it is replaced (see `manager.rs`). Python's Pool hangs in this case.
//! * Callbacks run on the pool's manager thread, in completion order, like Python's
//!   result-handler thread; they must not block for long.
//! * `close` then `join` waits for every task; `terminate` (and dropping the pool) kills the
//!   workers at once. No zombies: the factory reaps workers, the owner reaps the factory.
//! * Functions from libraries loaded with `dlopen` after `Pool::new` cannot run in the
//!   workers (the factory was forked before they were loaded).
//! * [`PoolBuilder`] adds Python's `initializer` (run once in each worker process before its
//!   first task; one that panics *breaks* the pool: queued and later tasks fail with
//!   [`Rejection::Broken`] instead of the endless respawning of Python's Pool) and
//!   `maxtasksperchild` (a worker exits after that many tasks and is replaced; what waited in
//!   its inbox goes to the others, as after a death).
//!
//! The `map` family (`map`, `map_async`, `starmap`, `imap`, `imap_unordered`) lives in
//! `map.rs`.

mod builder;
mod factory;
mod manager;
mod map;
mod task;
mod wire;

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use builder::PoolBuilder;
pub use task::{AsyncResult, Rejection, TaskError};

use crate::ipc::Queue;
use crate::sync::Event as GreenEvent;
use manager::Job;
use task::{Callback, Completion, ErrorCallback};
use wire::{Control, Done, Event, TagKey, Task};

/// Runs once in each worker process before its first task.
pub(crate) type Initializer = Arc<dyn Fn() + Send + Sync + 'static>;

/// The shared queues of one pool, made before the factory is forked, and what the workers
/// inherit with them.
pub(crate) struct Channels {
    control: Queue<Control>,
    events: Queue<Event>,
    inboxes: Vec<Queue<Task>>,
    results: Queue<Done>,
    key: TagKey,
    initializer: Option<Initializer>,
    /// A worker exits after this many tasks (`maxtasksperchild`).
    max_tasks: Option<usize>,
}

/// What the owner's threads hand the manager thread.
pub(crate) enum Submit {
    Job(Job),
    Close,
    Terminate,
}

/// Bytes of each worker's inbox (the largest task argument is a little less).
const INBOX_BYTES: usize = 1 << 20;
/// Bytes of the shared results queue (the largest result is a little less).
const RESULTS_BYTES: usize = 4 << 20;

/// A misuse of the pool's life cycle (Python raises `ValueError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// `join` before `close` or `terminate`.
    StillRunning,
    /// `close` or `join` after `terminate`... or a task after `close`.
    Closed,
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::StillRunning => {
                f.write_str("the pool is still running: call close() or terminate() before join()")
            }
            PoolError::Closed => f.write_str("the pool is closed"),
        }
    }
}

impl std::error::Error for PoolError {}

impl From<PoolError> for io::Error {
    /// `StillRunning` is `WouldBlock` (close or terminate first), `Closed` `BrokenPipe`;
    /// both carry the `PoolError`.
    fn from(e: PoolError) -> io::Error {
        let kind = match e {
            PoolError::StillRunning => io::ErrorKind::WouldBlock,
            PoolError::Closed => io::ErrorKind::BrokenPipe,
        };
        io::Error::new(kind, e)
    }
}

/// A pool of worker processes; see the module docs.
///
/// ```
/// use greenrt::process::Pool;
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let pool = Pool::new(2)?;
/// assert_eq!(pool.apply(square, 7).unwrap(), 49);
/// assert_eq!(pool.map(square, 1..=4).unwrap(), [1, 4, 9, 16]);
/// pool.close();
/// pool.join().unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Pool {
    workers: usize,
    submissions: Arc<crate::sync::Queue<Submit>>,
    key: TagKey,
    /// Set by the manager thread when an initializer panicked: the panic message.
    broken: Arc<OnceLock<String>>,
    /// Set by the manager thread as it ends.
    finished: Arc<GreenEvent>,
    next_id: AtomicU64,
    closed: AtomicBool,
    terminated: AtomicBool,
    manager: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("workers", &self.workers)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish()
    }
}

impl Pool {
    /// Starts a pool of `workers` processes (each with its own hub); `InvalidInput` for 0,
    /// as `ThreadPool::new` and `GreenPool::new`. [`PoolBuilder`] has the other options.
    pub fn new(workers: usize) -> io::Result<Pool> {
        PoolBuilder::new(workers).build()
    }

    /// Starts the factory and the manager thread over channels made for `workers`.
    fn start(ch: Channels, workers: usize) -> io::Result<Pool> {
        let key = ch.key.clone();
        let factory = crate::process::Builder::new()
            .name("pool factory")
            .exit_with_parent()
            .spawn(|| factory::factory_main(&ch))?;
        let submissions = Arc::new(crate::sync::Queue::new(0));
        let finished = Arc::new(GreenEvent::new());
        let broken = Arc::new(OnceLock::new());
        let manager = {
            let (submissions, finished) = (submissions.clone(), finished.clone());
            let broken = broken.clone();
            std::thread::Builder::new()
                .name("greenrt-pool-manager".into())
                .spawn(move || {
                    manager::run(ch, factory, &submissions, broken);
                    finished.set();
                })?
        };
        Ok(Pool {
            workers,
            submissions,
            key,
            broken,
            finished,
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            terminated: AtomicBool::new(false),
            manager: Mutex::new(Some(manager)),
        })
    }

    /// True once a worker's initializer has panicked: the pool runs nothing more, and every
    /// task fails with [`Rejection::Broken`].
    pub fn is_broken(&self) -> bool {
        self.broken.get().is_some()
    }

    /// The number of worker processes.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Runs `f(arg)` in a worker and waits for its value (parking only the green thread).
    pub fn apply<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<R, TaskError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.apply_async(f, arg).get()
    }

    /// Starts `f(arg)` in a worker; the value comes through the returned [`AsyncResult`].
    pub fn apply_async<A, R>(&self, f: fn(A) -> R, arg: A) -> AsyncResult<R>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.submit(
            wire::call::<A, R>,
            f as usize,
            &arg,
            size_of::<A>(),
            None,
            None,
        )
    }

    /// Like [`apply_async`](Pool::apply_async), with a `callback` that gets the value and an
    /// `error_callback` that gets the error, both run in this process (on the pool's manager
    /// thread) before the result is ready.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    ///
    /// fn add_100(i: u32) -> u32 {
    ///     i + 100
    /// }
    ///
    /// let pool = greenrt::process::Pool::new(2)?;
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let s = seen.clone();
    /// let r = pool.apply_async_with(add_100, 1, move |v| s.lock().unwrap().push(*v), |e| panic!("{e}"));
    /// assert_eq!(r.get().unwrap(), 101);
    /// assert_eq!(*seen.lock().unwrap(), [101]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn apply_async_with<A, R>(
        &self,
        f: fn(A) -> R,
        arg: A,
        callback: impl FnOnce(&R) + Send + 'static,
        error_callback: impl FnOnce(&TaskError) + Send + 'static,
    ) -> AsyncResult<R>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let call = wire::call::<A, R>;
        self.submit(
            call,
            f as usize,
            &arg,
            size_of::<A>(),
            Some(Box::new(callback)),
            Some(Box::new(error_callback)),
        )
    }

    fn submit<A: Serialize, R: DeserializeOwned + Send + 'static>(
        &self,
        call: wire::Trampoline,
        func: usize,
        arg: &A,
        hint: usize,
        callback: Option<Callback<R>>,
        error_callback: Option<ErrorCallback>,
    ) -> AsyncResult<R> {
        let (result, completion) = AsyncResult::new(callback, error_callback);
        self.send(call, func, arg, hint, completion);
        result
    }

    /// Encodes `arg` and hands the task to the manager thread; `completion` gets its outcome,
    /// at once (on this thread) if it cannot be submitted.
    fn send<A: Serialize + ?Sized>(
        &self,
        call: wire::Trampoline,
        func: usize,
        arg: &A,
        hint: usize,
        completion: Completion,
    ) {
        match encode_arg(arg, hint) {
            Ok(bytes) => self.send_encoded(call, func, bytes, completion),
            Err(error) => completion(Err(error)),
        }
    }

    /// Hands a task whose argument is already bytes to the manager thread (see `send`).
    fn send_encoded(
        &self,
        call: wire::Trampoline,
        func: usize,
        arg: Vec<u8>,
        completion: Completion,
    ) {
        if let Some(why) = self.broken.get() {
            return completion(Err(TaskError::Rejected(Rejection::Broken(why.clone()))));
        }
        if self.closed.load(Ordering::Acquire) {
            return completion(Err(TaskError::Rejected(Rejection::Closed)));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let call = call as usize;
        let tag = self.key.tag(call, func);
        let task = Task::Run {
            id,
            call,
            func,
            tag,
            arg,
        };
        let job = Job {
            id,
            task,
            completion,
        };
        if let Err(
            crate::sync::PutError::Closed(Submit::Job(job))
            | crate::sync::PutError::Full(Submit::Job(job)),
        ) = self.submissions.put(Submit::Job(job))
        {
            (job.completion)(Err(TaskError::Terminated));
        }
    }

    /// No more tasks: workers finish what was submitted, then exit (Python's `close`).
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            let _ = self.submissions.put(Submit::Close);
        }
    }

    /// Kills every worker now; unfinished tasks fail with [`TaskError::Terminated`].
    pub fn terminate(&self) {
        self.closed.store(true, Ordering::Release);
        if !self.terminated.swap(true, Ordering::AcqRel) {
            let _ = self.submissions.put(Submit::Terminate);
        }
    }

    /// Waits until every worker has exited; call [`close`](Pool::close) or
    /// [`terminate`](Pool::terminate) first (`PoolError::StillRunning` otherwise).
    pub fn join(&self) -> Result<(), PoolError> {
        if !self.closed.load(Ordering::Acquire) {
            return Err(PoolError::StillRunning);
        }
        let handle = self
            .manager
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        self.finished.wait(); // parks only the calling green thread
        if let Some(handle) = handle {
            let _ = handle.join(); // already ending: returns at once
        }
        Ok(())
    }
}

impl Drop for Pool {
    /// Terminates and joins, like leaving a Python `with Pool(...)` block.
    fn drop(&mut self) {
        if self
            .manager
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
        {
            self.terminate();
            let _ = self.join();
        }
    }
}

/// A task's argument as the bytes a worker decodes (`hint`: the buffer to start with), or
/// the `Codec` error its task fails with.
fn encode_arg<A: Serialize + ?Sized>(arg: &A, hint: usize) -> Result<Vec<u8>, TaskError> {
    wire::encode(arg, hint)
        .map_err(|e| TaskError::Codec(format!("cannot encode the argument: {e}")))
}
