//! Waiting for green threads: [`JoinHandle`], [`JoinError`], [`joinall`].
//!
//! A finished green thread leaves its outcome in a *packet* shared with its handle. Joining
//! is the park loop of `hub::park`: while the target is not finished, put ourselves on its
//! exit-waiter list and park; the hub unparks every exit waiter when the target finishes.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::hub::green::{Green, State, Wait};
use crate::hub::timers::TimerAction;
use crate::hub::with_hub;

/// Why a green thread did not return a value.
pub enum JoinError {
    /// Its function panicked; this is the panic payload.
    Panicked(Box<dyn Any + Send + 'static>),
    /// It was killed with [`JoinHandle::kill`] before it returned.
    Killed,
    /// A green thread tried to join itself, which could never finish.
    JoinSelf,
    /// It never started: when it was about to, no stack could be mapped for it (the process
    /// is out of memory or address space). Its function was dropped without running.
    NoStack(std::io::Error),
}

impl JoinError {
    /// The panic message, when the green thread panicked with a string.
    ///
    /// ```
    /// let h = greenrt::spawn(|| panic!("boom"));
    /// assert_eq!(h.join().unwrap_err().panic_message(), Some("boom"));
    /// ```
    pub fn panic_message(&self) -> Option<&str> {
        let JoinError::Panicked(payload) = self else {
            return None;
        };
        payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
    }

    /// True for [`JoinError::Killed`].
    pub fn is_killed(&self) -> bool {
        matches!(self, JoinError::Killed)
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(_) => f
                .debug_tuple("Panicked")
                .field(&self.panic_message().unwrap_or("<non-string payload>"))
                .finish(),
            JoinError::Killed => f.write_str("Killed"),
            JoinError::JoinSelf => f.write_str("JoinSelf"),
            JoinError::NoStack(e) => f.debug_tuple("NoStack").field(e).finish(),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(_) => match self.panic_message() {
                Some(msg) => write!(f, "green thread panicked: {msg}"),
                None => write!(f, "green thread panicked"),
            },
            JoinError::Killed => write!(f, "green thread was killed"),
            JoinError::JoinSelf => write!(f, "a green thread cannot join itself"),
            JoinError::NoStack(e) => write!(f, "green thread never started: no stack: {e}"),
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for std::io::Error {
    /// For `?` in functions returning `io::Result`. A panic payload is not `Sync`, so it
    /// becomes its message (kind `Other`); `Killed` is `Interrupted`, `JoinSelf`
    /// `InvalidInput`, and `NoStack` gives back the mapping error itself.
    ///
    /// ```
    /// fn run() -> std::io::Result<u32> {
    ///     Ok(greenrt::spawn(|| 7).join()?)
    /// }
    /// assert_eq!(run().unwrap(), 7);
    /// let e: std::io::Error = greenrt::spawn(|| panic!("boom")).join().unwrap_err().into();
    /// assert_eq!(e.to_string(), "green thread panicked: boom");
    /// ```
    fn from(e: JoinError) -> std::io::Error {
        use std::io::ErrorKind;
        let kind = match e {
            JoinError::NoStack(e) => return e,
            JoinError::Panicked(_) => ErrorKind::Other,
            JoinError::Killed => ErrorKind::Interrupted,
            JoinError::JoinSelf => ErrorKind::InvalidInput,
        };
        std::io::Error::new(kind, e.to_string())
    }
}

/// Where a finished green thread leaves its outcome.
pub(crate) struct Packet<T> {
    outcome: RefCell<Option<Result<T, JoinError>>>,
}

impl<T> Packet<T> {
    pub(crate) fn new() -> Packet<T> {
        Packet {
            outcome: RefCell::new(None),
        }
    }

    pub(crate) fn set(&self, outcome: Result<T, JoinError>) {
        *self.outcome.borrow_mut() = Some(outcome);
    }
}

/// An owned permission to join a green thread, or kill it. Dropping it detaches the thread.
///
/// Not `Send`: a green thread belongs to the OS thread that spawned it.
pub struct JoinHandle<T> {
    green: Rc<Green>,
    packet: Rc<Packet<T>>,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(green: Rc<Green>, packet: Rc<Packet<T>>) -> JoinHandle<T> {
        JoinHandle { green, packet }
    }

    /// Waits for the green thread to finish and returns its value. Only the caller blocks:
    /// other green threads run meanwhile.
    ///
    /// ```
    /// let h = greenrt::spawn(|| "done");
    /// assert_eq!(h.join().unwrap(), "done");
    /// ```
    pub fn join(self) -> Result<T, JoinError> {
        match self.join_deadline(None) {
            Ok(outcome) => outcome,
            Err(_) => unreachable!("a join without deadline only returns when finished"),
        }
    }

    /// Waits at most `timeout`; if the green thread is still running then, gives the handle
    /// back in `Err` so the caller can try again, kill it or drop it.
    ///
    /// ```
    /// use std::time::Duration;
    /// let h = greenrt::spawn(|| greenrt::sleep(Duration::from_secs(10)));
    /// let h = h.join_timeout(Duration::from_millis(10)).unwrap_err();
    /// h.kill();
    /// assert!(h.join().unwrap_err().is_killed());
    /// ```
    pub fn join_timeout(self, timeout: Duration) -> Result<Result<T, JoinError>, JoinHandle<T>> {
        self.join_deadline(crate::time::deadline_in(timeout))
    }

    fn join_deadline(
        self,
        deadline: Option<Instant>,
    ) -> Result<Result<T, JoinError>, JoinHandle<T>> {
        if !self.wait_finished(deadline) {
            return Err(self);
        }
        let outcome = self.packet.outcome.borrow_mut().take();
        Ok(outcome.unwrap_or(Err(JoinError::JoinSelf)))
    }

    fn wait_finished(&self, deadline: Option<Instant>) -> bool {
        self.watcher().wait_finished(deadline)
    }

    /// A non-generic handle on the same green thread, for pools that track many of them.
    pub(crate) fn watcher(&self) -> Watcher {
        Watcher {
            green: self.green.clone(),
        }
    }

    /// True once the green thread has returned, panicked or been killed.
    pub fn is_finished(&self) -> bool {
        self.green.state.get() == State::Finished
    }

    /// Kills the green thread and waits until it is gone (gevent's `kill(block=True)`).
    ///
    /// A parked or not yet started green thread unwinds from its park point, running its
    /// destructors, and its `join` then returns [`JoinError::Killed`]. A ready one is killed
    /// at its next park point. Killing a finished green thread does nothing.
    ///
    /// # Panics
    /// If a green thread tries to kill itself: it should return from its function instead.
    ///
    /// ```
    /// use std::time::Duration;
    /// let h = greenrt::spawn(|| greenrt::sleep(Duration::from_secs(60)));
    /// greenrt::yield_now(); // let it start and park
    /// h.kill();
    /// assert!(h.join().unwrap_err().is_killed());
    /// ```
    pub fn kill(&self) {
        self.watcher().kill();
    }

    /// The green thread's process-wide unique id.
    pub fn id(&self) -> u64 {
        self.green.id
    }

    /// The name given with [`Builder::name`](crate::Builder::name).
    pub fn name(&self) -> Option<&str> {
        self.green.name.as_deref()
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.green.id)
            .field("name", &self.green.name)
            .finish()
    }
}

/// A non-generic, crate-internal handle on a green thread: wait for it, kill it. Pools keep
/// these for the green threads they run, whatever their result types.
#[derive(Clone)]
pub(crate) struct Watcher {
    green: Rc<Green>,
}

impl Watcher {
    /// Parks until the green thread finishes or `deadline` passes; true if it finished.
    /// Joining oneself returns true at once with no outcome stored (reported as `JoinSelf`).
    pub(crate) fn wait_finished(&self, deadline: Option<Instant>) -> bool {
        with_hub(|hub| {
            let me = hub.current();
            if Rc::ptr_eq(&me, &self.green) {
                return true;
            }
            let _timer = deadline.map(|at| hub.arm_timer(at, TimerAction::Wake(me.clone())));
            while self.green.state.get() != State::Finished {
                if deadline.is_some_and(|at| Instant::now() >= at) {
                    return false;
                }
                self.green.exit_waiters.borrow_mut().push(me.clone());
                let _unlist = ExitWaiterGuard {
                    target: &self.green,
                    waiter: &me,
                };
                hub.park(Wait::Join(self.green.id));
            }
            true
        })
    }

    /// True once the green thread has finished.
    pub(crate) fn is_finished(&self) -> bool {
        self.green.state.get() == State::Finished
    }

    /// See [`JoinHandle::kill`].
    pub(crate) fn kill(&self) {
        self.request_kill();
        self.wait_finished(None);
    }

    /// Marks the green thread killed and wakes it, without waiting: it unwinds at its next
    /// park point, or never starts if it has not yet.
    pub(crate) fn request_kill(&self) {
        if self.is_finished() {
            return;
        }
        with_hub(|hub| {
            let me = hub.current();
            assert!(
                !Rc::ptr_eq(&me, &self.green),
                "greenrt: green thread {} tried to kill itself; return from its function instead",
                self.green.id
            );
            self.green.kill_requested.set(true);
            hub.interrupt(&self.green);
        });
    }
}

/// Takes a joiner off a target's exit-waiter list, also when a kill or timeout unwinds it.
struct ExitWaiterGuard<'a> {
    target: &'a Rc<Green>,
    waiter: &'a Rc<Green>,
}

impl Drop for ExitWaiterGuard<'_> {
    fn drop(&mut self) {
        self.target.forget_exit_waiter(self.waiter);
    }
}

/// Joins every handle, returning the outcomes in input order (gevent's `joinall`).
///
/// ```
/// let handles: Vec<_> = (0..3).map(|i| greenrt::spawn(move || i * 10)).collect();
/// let values: Vec<i32> = greenrt::joinall(handles).into_iter().map(Result::unwrap).collect();
/// assert_eq!(values, [0, 10, 20]);
/// ```
pub fn joinall<T, I>(handles: I) -> Vec<Result<T, JoinError>>
where
    I: IntoIterator<Item = JoinHandle<T>>,
{
    handles.into_iter().map(JoinHandle::join).collect()
}

/// Joins every handle within one overall `timeout`. Each entry is `Ok(outcome)` for a green
/// thread that finished in time and `Err(handle)` for one still running.
///
/// ```
/// use std::time::Duration;
/// let quick = greenrt::spawn(|| 1);
/// let slow = greenrt::spawn(|| { greenrt::sleep(Duration::from_secs(5)); 2 });
/// let out = greenrt::joinall_timeout([quick, slow], Duration::from_millis(20));
/// assert!(matches!(out[0], Ok(Ok(1))));
/// let slow = match out.into_iter().nth(1).unwrap() { Err(h) => h, Ok(_) => unreachable!() };
/// slow.kill();
/// ```
pub fn joinall_timeout<T, I>(
    handles: I,
    timeout: Duration,
) -> Vec<Result<Result<T, JoinError>, JoinHandle<T>>>
where
    I: IntoIterator<Item = JoinHandle<T>>,
{
    let deadline = crate::time::deadline_in(timeout);
    handles
        .into_iter()
        .map(|h| h.join_deadline(deadline))
        .collect()
}
