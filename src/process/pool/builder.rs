//! [`PoolBuilder`]: a process pool's options — Python's `Pool(processes, initializer,
//! maxtasksperchild)` — set by name before the pool starts.

use std::io;
use std::sync::Arc;

use super::wire::TagKey;
use super::{Channels, INBOX_BYTES, Pool, RESULTS_BYTES};
use crate::ipc::{Queue, QueueBuilder};

/// Options for a [`Pool`], then [`build`](PoolBuilder::build).
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use greenrt::process::PoolBuilder;
///
/// static SETUP: AtomicU32 = AtomicU32::new(0);
///
/// fn setting(_: ()) -> u32 {
///     SETUP.load(Ordering::SeqCst) // this worker process's copy
/// }
///
/// let pool = PoolBuilder::new(2)
///     .initializer(|| SETUP.store(42, Ordering::SeqCst)) // in each worker, first
///     .max_tasks_per_child(100)
///     .build()?;
/// assert_eq!(pool.apply(setting, ()).unwrap(), 42);
/// assert_eq!(SETUP.load(Ordering::SeqCst), 0); // the owner's copy never ran it
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct PoolBuilder {
    workers: usize,
    initializer: Option<super::Initializer>,
    max_tasks: Option<usize>,
}

impl PoolBuilder {
    /// A pool of `workers` processes, with no initializer and no task limit.
    pub fn new(workers: usize) -> PoolBuilder {
        PoolBuilder {
            workers,
            initializer: None,
            max_tasks: None,
        }
    }

    /// Runs `initializer` once in each worker process — every replacement too — before its
    /// first task (Python's `initializer=`; capture what it needs instead of `initargs`).
    /// The workers are forks, so it runs on copies: what it sets is that worker's.
    ///
    /// If it panics, the pool is broken: it runs nothing more, and every queued or later
    /// task fails with [`Rejection::Broken`](super::Rejection::Broken) and the panic message.
    pub fn initializer(mut self, initializer: impl Fn() + Send + Sync + 'static) -> PoolBuilder {
        self.initializer = Some(Arc::new(initializer));
        self
    }

    /// A worker exits after `tasks` tasks and a fresh one replaces it (Python's
    /// `maxtasksperchild`): memory a task leaks, or state it leaves, goes with it. Tasks
    /// already waiting in its inbox go to the other workers; none is lost or run twice.
    /// `InvalidInput` from `build` for 0.
    pub fn max_tasks_per_child(mut self, tasks: usize) -> PoolBuilder {
        self.max_tasks = Some(tasks);
        self
    }

    /// Starts the pool: the factory process, the workers, the manager thread.
    /// `InvalidInput` for 0 workers or `max_tasks_per_child(0)`.
    pub fn build(self) -> io::Result<Pool> {
        if self.workers == 0 {
            return Err(invalid("greenrt: a process Pool needs at least one worker"));
        }
        if self.max_tasks == Some(0) {
            return Err(invalid("greenrt: max_tasks_per_child must be at least 1"));
        }
        let small = QueueBuilder::new().capacity(64 * 1024);
        let ch = Channels {
            control: small.build()?,
            events: small.build()?,
            inboxes: (0..self.workers)
                .map(|_| Queue::new(INBOX_BYTES))
                .collect::<io::Result<_>>()?,
            results: Queue::new(RESULTS_BYTES)?,
            key: TagKey::new(),
            initializer: self.initializer,
            max_tasks: self.max_tasks,
        };
        Pool::start(ch, self.workers)
    }
}

fn invalid(why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why)
}

impl std::fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("workers", &self.workers)
            .field("initializer", &self.initializer.is_some())
            .field("max_tasks_per_child", &self.max_tasks)
            .finish()
    }
}
