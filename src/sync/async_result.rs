//! [`AsyncResult`]: a one-shot value or error that green threads wait for (gevent's
//! `gevent.event.AsyncResult`): one side sets it once, any number of waiters get it.
//!
//! It is an [`Event`] with a slot: `set` stores the outcome, then sets the event; `get`
//! waits on the event, then clones the outcome. A second `set` is refused and hands its
//! value back (like `OnceCell::set`) — a one-shot result that could change under its
//! readers would be a different thing.

use std::fmt;
use std::time::Duration;

use super::Event;

/// A one-shot result for green threads (on any OS threads); see the module docs.
///
/// ```
/// use std::rc::Rc;
/// use std::time::Duration;
/// use greenrt::sync::AsyncResult;
///
/// let result: Rc<AsyncResult<u32, String>> = Rc::new(AsyncResult::new());
/// let r = result.clone();
/// let setter = greenrt::spawn(move || {
///     greenrt::sleep(Duration::from_millis(5));
///     r.set(42).unwrap();
/// });
/// assert_eq!(result.get(), Ok(42)); // parks until set
/// assert!(result.is_ready() && result.successful());
/// setter.join().unwrap();
/// ```
pub struct AsyncResult<T, E> {
    outcome: std::sync::Mutex<Option<Result<T, E>>>,
    ready: Event,
}

impl<T, E> Default for AsyncResult<T, E> {
    fn default() -> Self {
        AsyncResult::new()
    }
}

impl<T, E> AsyncResult<T, E> {
    /// An empty result.
    pub const fn new() -> AsyncResult<T, E> {
        AsyncResult {
            outcome: std::sync::Mutex::new(None),
            ready: Event::new(),
        }
    }

    /// Stores `value` and wakes every waiter. `Err(value)` if it was already set.
    pub fn set(&self, value: T) -> Result<(), T> {
        self.store(Ok(value)).map_err(|refused| match refused {
            Ok(value) => value,
            Err(_) => unreachable!("store hands back what it was given"),
        })
    }

    /// Stores `error` and wakes every waiter (gevent's `set_exception`). `Err(error)` if it
    /// was already set.
    pub fn set_error(&self, error: E) -> Result<(), E> {
        self.store(Err(error)).map_err(|refused| match refused {
            Err(error) => error,
            Ok(_) => unreachable!("store hands back what it was given"),
        })
    }

    fn store(&self, outcome: Result<T, E>) -> Result<(), Result<T, E>> {
        {
            let mut slot = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_some() {
                return Err(outcome);
            }
            *slot = Some(outcome);
        }
        self.ready.set();
        Ok(())
    }

    /// True once set (with a value or an error).
    pub fn is_ready(&self) -> bool {
        self.ready.is_set()
    }

    /// True once set with a value.
    pub fn successful(&self) -> bool {
        matches!(
            *self.outcome.lock().unwrap_or_else(|e| e.into_inner()),
            Some(Ok(_))
        )
    }

    /// Waits until it is set (parking only the calling green thread).
    pub fn wait(&self) {
        self.ready.wait();
    }

    /// Waits at most `timeout`; true if it is set.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.ready.wait_timeout(timeout)
    }
}

impl<T: Clone, E: Clone> AsyncResult<T, E> {
    /// Waits until it is set, then returns (a clone of) the value or the error.
    pub fn get(&self) -> Result<T, E> {
        self.wait();
        self.peek().expect("set before the event")
    }

    /// [`get`](AsyncResult::get) for at most `timeout`; `None` if it was not set in time.
    pub fn get_timeout(&self, timeout: Duration) -> Option<Result<T, E>> {
        self.wait_timeout(timeout)
            .then(|| self.peek().expect("set before the event"))
    }

    /// The outcome if it is set, without waiting (gevent's `get(block=False)`).
    pub fn peek(&self) -> Option<Result<T, E>> {
        self.outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl<T, E> fmt::Debug for AsyncResult<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.is_ready())
            .field("successful", &self.successful())
            .finish()
    }
}

/// Ready once set (with a value or an error).
impl<T, E> crate::Waitable for AsyncResult<T, E> {
    fn is_ready(&self) -> bool {
        self.ready.is_set()
    }

    fn watch<'a>(&'a self, watcher: &crate::Watcher) -> crate::Watching<'a> {
        self.ready.watch(watcher)
    }
}
