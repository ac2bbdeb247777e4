//! `wait` and `as_completed` over thread-pool tasks (`concurrent.futures.wait` and
//! `as_completed`).
//!
//! Both listen the same way: every task gets a done-callback that reports its index (and
//! whether it failed) on one green [`Queue`]. The callback runs on the worker thread that
//! finished the task — or at once, for a task already done — and a green queue takes puts
//! from any OS thread, so the waiting green thread parks until the next task ends, and no
//! task is polled. A wait that returns early leaves its callbacks behind; they only put into
//! a queue nobody reads any more.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Task, TaskError};
use crate::sync::Queue;

/// When [`wait`] returns (`concurrent.futures.FIRST_COMPLETED` and friends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReturnWhen {
    /// As soon as any task is done (finished, failed or cancelled).
    FirstCompleted,
    /// As soon as any task fails — panics, or was refused by a pool shut down — at once if
    /// one already has, or when all are done. (A cancelled task is done, not failed, as in
    /// Python.)
    FirstException,
    /// When every task is done.
    AllCompleted,
}

/// What [`wait`] found: indexes into the slice it was given, each in one list, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Finished {
    /// Tasks done (finished, failed or cancelled).
    pub done: Vec<usize>,
    /// Tasks still pending or running.
    pub not_done: Vec<usize>,
}

/// Waits until `return_when` holds for `tasks`, or `timeout` passes (`None`: no limit).
/// Parks only the calling green thread.
///
/// ```
/// use std::time::Duration;
/// use greenrt::thread_pool::{ReturnWhen, ThreadPool, wait};
///
/// let pool = ThreadPool::new(2)?;
/// let tasks = vec![
///     pool.submit(|| { std::thread::sleep(Duration::from_millis(300)); 1 }),
///     pool.submit(|| 2),
/// ];
/// let finished = wait(&tasks, ReturnWhen::FirstCompleted, None);
/// assert_eq!(finished.done, [1]);
/// assert_eq!(finished.not_done, [0]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn wait<T: Send + 'static>(
    tasks: &[Task<T>],
    return_when: ReturnWhen,
    timeout: Option<Duration>,
) -> Finished {
    let deadline = timeout.and_then(crate::time::deadline_in);
    let ends = listen(tasks);
    let mut done = vec![false; tasks.len()];
    let mut count = 0;
    let mut failed = false;
    while count < tasks.len() {
        let satisfied = match return_when {
            ReturnWhen::FirstCompleted => count > 0,
            ReturnWhen::FirstException => failed,
            ReturnWhen::AllCompleted => false,
        };
        if satisfied {
            break;
        }
        let Some((i, was_error)) = next_end(&ends, deadline) else {
            break; // timed out
        };
        if !done[i] {
            done[i] = true;
            count += 1;
            failed |= was_error;
        }
    }
    let (done, not_done) = (0..tasks.len()).partition(|&i| done[i]);
    Finished { done, not_done }
}

/// Hands back each task as it ends (`concurrent.futures.as_completed`): an iterator of
/// finished tasks — call `result()` on each — in the order they end. With a `timeout`
/// (`None`: no limit, counted from this call), it then yields one `Err(Unfinished)` saying how
/// many had not ended, and stops; the tasks not yet ended are dropped with it (their jobs
/// still run).
///
/// ```
/// use std::time::Duration;
/// use greenrt::thread_pool::{ThreadPool, as_completed};
///
/// let pool = ThreadPool::new(3)?;
/// let tasks = [30, 10, 20].map(|ms| {
///     pool.submit(move || { std::thread::sleep(Duration::from_millis(ms)); ms })
/// });
/// let order: Vec<u64> = as_completed(tasks.into(), None)
///     .map(|task| task.unwrap().result().unwrap())
///     .collect();
/// assert_eq!(order, [10, 20, 30]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn as_completed<T: Send + 'static>(
    tasks: Vec<Task<T>>,
    timeout: Option<Duration>,
) -> AsCompleted<T> {
    let ends = listen(&tasks);
    AsCompleted {
        tasks: tasks.into_iter().map(Some).collect(),
        left: 0,
        ends,
        deadline: timeout.and_then(crate::time::deadline_in),
        timed_out: false,
    }
    .counted()
}

/// Tasks still unfinished when [`as_completed`]'s timeout passed (Python's `TimeoutError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unfinished {
    /// How many.
    pub count: usize,
    /// Out of how many given.
    pub of: usize,
}

impl std::fmt::Display for Unfinished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (of {}) tasks unfinished", self.count, self.of)
    }
}

impl std::error::Error for Unfinished {}

/// The iterator of [`as_completed`].
pub struct AsCompleted<T> {
    tasks: Vec<Option<Task<T>>>,
    /// Tasks not handed out yet.
    left: usize,
    ends: Arc<Queue<(usize, bool)>>,
    deadline: Option<Instant>,
    timed_out: bool,
}

impl<T> AsCompleted<T> {
    fn counted(mut self) -> Self {
        self.left = self.tasks.len();
        self
    }
}

impl<T: Send + 'static> Iterator for AsCompleted<T> {
    type Item = Result<Task<T>, Unfinished>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 || self.timed_out {
            return None;
        }
        loop {
            let Some((i, _)) = next_end(&self.ends, self.deadline) else {
                self.timed_out = true;
                let unfinished = Unfinished {
                    count: self.left,
                    of: self.tasks.len(),
                };
                return Some(Err(unfinished));
            };
            if let Some(task) = self.tasks[i].take() {
                self.left -= 1;
                return Some(Ok(task)); // each task once
            }
        }
    }
}

impl<T> std::fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsCompleted")
            .field("left", &self.left)
            .field("of", &self.tasks.len())
            .finish()
    }
}

/// A queue on which every task reports `(index, failed)` when it ends.
fn listen<T: Send + 'static>(tasks: &[Task<T>]) -> Arc<Queue<(usize, bool)>> {
    let ends = Arc::new(Queue::new(0));
    for (i, task) in tasks.iter().enumerate() {
        let ends = ends.clone();
        task.add_done_callback(move |outcome| {
            let failed = matches!(outcome, Err(TaskError::Panicked(_) | TaskError::Rejected));
            let _ = ends.put((i, failed)); // unbounded: never waits
        });
    }
    ends
}

/// The next task to end, or `None` once `deadline` has passed.
fn next_end(ends: &Queue<(usize, bool)>, deadline: Option<Instant>) -> Option<(usize, bool)> {
    match deadline {
        None => ends.get().ok(),
        Some(at) => ends
            .get_timeout(at.saturating_duration_since(Instant::now()))
            .ok(),
    }
}
