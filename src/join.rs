//! Waiting for green threads: [`JoinHandle`], [`JoinError`], [`joinall`].
//!
//! A finished green thread leaves its outcome in a *packet* shared with its handle. Joining
//! is the park loop of `hub::park`: while the target is not finished, put ourselves on its
//! exit-waiter list and park; the hub unparks every exit waiter when the target finishes.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
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

/// Where a finished green thread leaves its outcome, and what runs when it does.
pub(crate) struct Packet<T> {
    outcome: RefCell<Option<Result<T, JoinError>>>,
    /// Callbacks from [`JoinHandle::link`], run once the outcome is set.
    links: RefCell<Vec<Link<T>>>,
}

/// A callback on a green thread's end: its value or its error.
type Link<T> = Box<dyn FnOnce(Result<&T, &JoinError>)>;

impl<T> Packet<T> {
    pub(crate) fn new() -> Packet<T> {
        Packet {
            outcome: RefCell::new(None),
            links: RefCell::new(Vec::new()),
        }
    }

    pub(crate) fn set(&self, outcome: Result<T, JoinError>) {
        *self.outcome.borrow_mut() = Some(outcome);
        if !self.links.borrow().is_empty() {
            self.run_links();
        }
    }

    /// Runs every link once, in the order they were added (also those a link adds).
    #[cold]
    fn run_links(&self) {
        loop {
            let batch = std::mem::take(&mut *self.links.borrow_mut());
            if batch.is_empty() {
                return;
            }
            for link in batch {
                self.run_link(link);
            }
        }
    }

    /// Runs one link on the outcome. A panicking link is reported (by the panic hook) and
    /// does not stop the others, nor the green thread's end.
    fn run_link(&self, link: Link<T>) {
        let outcome = self.outcome.borrow();
        let Some(outcome) = outcome.as_ref() else {
            return; // taken by `join` (a link cannot be added after that)
        };
        let _ = catch_unwind(AssertUnwindSafe(|| link(outcome.as_ref())));
    }
}

/// What holds a green thread's [`Packet`]: the packet alone, or an allocation it shares with
/// the function of a green thread that has not started yet (see `spawn.rs`).
pub(crate) trait HasPacket<T> {
    /// The packet.
    fn packet(&self) -> &Packet<T>;
}

impl<T> HasPacket<T> for Packet<T> {
    fn packet(&self) -> &Packet<T> {
        self
    }
}

/// An owned permission to join a green thread, or kill it. Dropping it detaches the thread.
///
/// Not `Send`: a green thread belongs to the OS thread that spawned it.
pub struct JoinHandle<T> {
    green: Rc<Green>,
    packet: Rc<dyn HasPacket<T>>,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(green: Rc<Green>, packet: Rc<dyn HasPacket<T>>) -> JoinHandle<T> {
        JoinHandle { green, packet }
    }

    /// The record of the green thread (for the crate's own tests).
    #[cfg(test)]
    pub(crate) fn green(&self) -> &Rc<Green> {
        &self.green
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
        let outcome = self.packet.packet().outcome.borrow_mut().take();
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

    /// Runs `f` with the outcome once the green thread has ended — returned, panicked or
    /// been killed (gevent's `link`); at once, in the caller, if it has already ended. Each
    /// link runs once, in the order added, on the ending green thread as its last act (so
    /// before any `join` returns); a link that panics is reported and does not stop the
    /// others. Links should not block: a blocking link delays the joiners.
    ///
    /// ```
    /// use std::{cell::RefCell, rc::Rc};
    /// let log = Rc::new(RefCell::new(Vec::new()));
    /// let h = greenrt::spawn(|| 6 * 7);
    /// let l = log.clone();
    /// h.link(move |outcome| l.borrow_mut().push(format!("ended: {:?}", outcome.ok())));
    /// assert_eq!(h.join().unwrap(), 42);
    /// assert_eq!(*log.borrow(), ["ended: Some(42)"]);
    /// ```
    pub fn link(&self, f: impl FnOnce(Result<&T, &JoinError>) + 'static)
    where
        T: 'static,
    {
        let finished = self.packet.packet().outcome.borrow().is_some();
        if finished {
            self.packet.packet().run_link(Box::new(f));
        } else {
            self.packet.packet().links.borrow_mut().push(Box::new(f));
        }
    }

    /// Runs `f` with the value if the green thread returns one (gevent's `link_value`); not
    /// at all if it panics or is killed. See [`link`](JoinHandle::link).
    pub fn link_value(&self, f: impl FnOnce(&T) + 'static)
    where
        T: 'static,
    {
        self.link(move |outcome| {
            if let Ok(value) = outcome {
                f(value);
            }
        });
    }

    /// Runs `f` with the error if the green thread panics or is killed (gevent's
    /// `link_exception`); not at all if it returns. See [`link`](JoinHandle::link).
    pub fn link_exception(&self, f: impl FnOnce(&JoinError) + 'static)
    where
        T: 'static,
    {
        self.link(move |outcome| {
            if let Err(error) = outcome {
                f(error);
            }
        });
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

    /// Requests the kill and returns at once (gevent's `kill(block=False)`, tokio's
    /// `abort`): the green thread unwinds at its next park point, or never starts. `join`
    /// then says [`JoinError::Killed`] — unless it returns first without parking again.
    ///
    /// ```
    /// use std::time::Duration;
    /// let h = greenrt::spawn(|| greenrt::sleep(Duration::from_secs(60)));
    /// h.abort(); // it has not even started: it never will
    /// assert!(h.join().unwrap_err().is_killed());
    /// ```
    ///
    /// # Panics
    /// If a green thread tries to abort itself.
    pub fn abort(&self) {
        self.watcher().request_kill();
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

/// Ready once the green thread has ended (returned, panicked or been killed).
impl<T> crate::Waitable for JoinHandle<T> {
    fn is_ready(&self) -> bool {
        self.is_finished()
    }

    /// # Panics
    /// On the current green thread's own handle: it cannot end while it waits.
    fn watch<'a>(&'a self, watcher: &crate::Watcher) -> crate::Watching<'a> {
        let me = watcher.green().clone();
        assert!(
            !Rc::ptr_eq(&me, &self.green),
            "greenrt: wait on the handle of the green thread that waits: it cannot end while it waits"
        );
        self.green.exit_waiters.borrow_mut().push(me.clone());
        crate::Watching::until(move || self.green.forget_exit_waiter(&me))
    }
}
