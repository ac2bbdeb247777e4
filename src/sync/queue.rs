//! [`Queue`], [`LifoQueue`], [`PriorityQueue`]: Python's `queue` module for green threads.
//!
//! One structure, three orders: the order lives in a small [`Order`] type (a `VecDeque`, a
//! `Vec` used as a stack, a min-heap). Getters and putters wait in FIFO queues of
//! [`Waiter`]s. Whenever items or places come free, `dispatch` *reserves* them for the
//! longest waiters and grants them; a newcomer may take an item directly only if there are
//! more items than reservations and nobody waits. That keeps waiters first come, first
//! served without handing the item itself around.
//!
//! ```text
//!   state: Mutex<{ items, getters, putters, reserved_items, reserved_space, unfinished,
//!                  joiners, closed }>
//! ```

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::waiter::{Waiter, lock_state, unqueue};
use crate::hub::green::Wait;

/// How a queue orders its items.
pub trait Order<T>: Default {
    /// Stores an item.
    fn push(&mut self, item: T);
    /// Takes the next item in this order.
    fn pop(&mut self) -> Option<T>;
    /// The item `pop` would take next, left in place.
    fn peek(&self) -> Option<&T>;
    /// How many items are stored.
    fn len(&self) -> usize;
    /// True when empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// First in, first out.
#[derive(Debug)]
pub struct Fifo<T>(VecDeque<T>);
/// Last in, first out.
#[derive(Debug)]
pub struct Lifo<T>(Vec<T>);
/// Smallest first, as Python's `PriorityQueue`.
#[derive(Debug)]
pub struct Smallest<T: Ord>(BinaryHeap<Reverse<T>>);

impl<T> Default for Fifo<T> {
    fn default() -> Self {
        Fifo(VecDeque::new())
    }
}
impl<T> Default for Lifo<T> {
    fn default() -> Self {
        Lifo(Vec::new())
    }
}
impl<T: Ord> Default for Smallest<T> {
    fn default() -> Self {
        Smallest(BinaryHeap::new())
    }
}

impl<T> Order<T> for Fifo<T> {
    fn push(&mut self, item: T) {
        self.0.push_back(item)
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop_front()
    }
    fn peek(&self) -> Option<&T> {
        self.0.front()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

impl<T> Order<T> for Lifo<T> {
    fn push(&mut self, item: T) {
        self.0.push(item)
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }
    fn peek(&self) -> Option<&T> {
        self.0.last()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

impl<T: Ord> Order<T> for Smallest<T> {
    fn push(&mut self, item: T) {
        self.0.push(Reverse(item))
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop().map(|Reverse(item)| item)
    }
    fn peek(&self) -> Option<&T> {
        self.0.peek().map(|Reverse(item)| item)
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Why a `put` failed; the item comes back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PutError<T> {
    /// The queue was full (for `try_put`, or a timed `put` that ran out of time).
    Full(T),
    /// The queue was closed.
    Closed(T),
}

/// Why a `get` failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetError {
    /// Nothing to take (for `try_get`, or a timed `get` that ran out of time).
    Empty,
    /// The queue was closed and is drained.
    Closed,
}

/// `task_done` was called more times than items were put (Python's `ValueError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskDoneTooOften;

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PutError::Full(_) => "Full(..)",
            PutError::Closed(_) => "Closed(..)",
        })
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PutError::Full(_) => "queue is full",
            PutError::Closed(_) => "queue is closed",
        })
    }
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GetError::Empty => "queue is empty",
            GetError::Closed => "queue is closed and drained",
        })
    }
}

impl fmt::Display for TaskDoneTooOften {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done() called more times than there were items")
    }
}

impl<T> std::error::Error for PutError<T> {}
impl std::error::Error for GetError {}
impl std::error::Error for TaskDoneTooOften {}

struct State<T, O> {
    items: O,
    getters: VecDeque<Arc<Waiter>>,
    putters: VecDeque<Arc<Waiter>>,
    /// Items promised to getters that were notified but have not taken them yet.
    reserved_items: usize,
    /// Free places promised to notified putters.
    reserved_space: usize,
    /// Items put and not yet marked `task_done`.
    unfinished: usize,
    joiners: Vec<Arc<Waiter>>,
    /// `greenrt::wait` callers watching for an item (or the close): told, never granted.
    watchers: Vec<Arc<Waiter>>,
    closed: bool,
    _item: std::marker::PhantomData<T>,
}

/// A green queue, FIFO by default; see the module docs. `maxsize` 0 means unbounded.
///
/// ```
/// use std::rc::Rc;
/// use greenrt::sync::Queue;
///
/// let q: Rc<Queue<i32>> = Rc::new(Queue::new(2));
/// let q2 = q.clone();
/// let consumer = greenrt::spawn(move || {
///     let mut got = Vec::new();
///     while let Ok(item) = q2.get() {
///         got.push(item);
///         q2.task_done().unwrap();
///     }
///     got // `get` fails with Closed once the closed queue is drained
/// });
/// for i in 0..5 {
///     q.put(i).unwrap(); // parks while the queue holds 2
/// }
/// q.join(); // until every item is marked done
/// q.close();
/// assert_eq!(consumer.join().unwrap(), [0, 1, 2, 3, 4]);
/// ```
pub struct Queue<T, O: Order<T> = Fifo<T>> {
    maxsize: usize,
    state: std::sync::Mutex<State<T, O>>,
}

/// A last-in first-out green queue.
pub type LifoQueue<T> = Queue<T, Lifo<T>>;
/// A green queue that hands out the smallest item first.
pub type PriorityQueue<T> = Queue<T, Smallest<T>>;

impl<T, O: Order<T>> Queue<T, O> {
    /// A queue holding at most `maxsize` items (0: no limit).
    ///
    /// ```
    /// use greenrt::sync::{LifoQueue, Queue};
    /// let bounded: Queue<&str> = Queue::new(1);
    /// bounded.put("a").unwrap();
    /// assert!(bounded.is_full());
    /// let stack: LifoQueue<u8> = Queue::new(0); // 0: unbounded
    /// (1..=3).for_each(|i| stack.put(i).unwrap());
    /// assert_eq!(stack.get(), Ok(3)); // last in, first out
    /// ```
    pub fn new(maxsize: usize) -> Self {
        let state = State {
            items: O::default(),
            getters: VecDeque::new(),
            putters: VecDeque::new(),
            reserved_items: 0,
            reserved_space: 0,
            unfinished: 0,
            joiners: Vec::new(),
            watchers: Vec::new(),
            closed: false,
            _item: std::marker::PhantomData,
        };
        Queue {
            maxsize,
            state: std::sync::Mutex::new(state),
        }
    }

    /// Puts an item, parking while the queue is full.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_deadline(item, None)
    }

    /// Puts an item, waiting at most `timeout` for room.
    ///
    /// ```
    /// use greenrt::sync::{PutError, Queue};
    /// use std::time::Duration;
    /// let q: Queue<u8> = Queue::new(1);
    /// q.put(1).unwrap();
    /// // Nobody takes within 10 ms: the item comes back in the error.
    /// assert!(matches!(q.put_timeout(2, Duration::from_millis(10)), Err(PutError::Full(2))));
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_deadline(item, crate::time::deadline_in(timeout))
    }

    /// Puts an item if there is room right now.
    ///
    /// ```
    /// use greenrt::sync::{PutError, Queue};
    /// let q: Queue<u8> = Queue::new(1);
    /// assert!(q.try_put(1).is_ok());
    /// assert!(matches!(q.try_put(2), Err(PutError::Full(2))));
    /// ```
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_deadline(item, Some(Instant::now()))
    }

    /// Takes an item, parking while the queue is empty.
    pub fn get(&self) -> Result<T, GetError> {
        self.get_deadline(None)
    }

    /// Takes an item, waiting at most `timeout`.
    ///
    /// ```
    /// use greenrt::sync::{GetError, Queue};
    /// use std::time::Duration;
    /// let q: Queue<u8> = Queue::new(0);
    /// assert_eq!(q.get_timeout(Duration::from_millis(10)), Err(GetError::Empty));
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_deadline(crate::time::deadline_in(timeout))
    }

    /// Takes an item if one is there right now.
    ///
    /// ```
    /// use greenrt::sync::{GetError, Queue};
    /// let q: Queue<u8> = Queue::new(0);
    /// assert_eq!(q.try_get(), Err(GetError::Empty));
    /// q.put(4).unwrap();
    /// assert_eq!(q.try_get(), Ok(4));
    /// ```
    pub fn try_get(&self) -> Result<T, GetError> {
        self.get_deadline(Some(Instant::now()))
    }

    /// A clone of the item at the head of the queue — the next to be handed out, in the
    /// queue's order — left in place (gevent's `peek(block=False)`); `None` if empty.
    ///
    /// ```
    /// let q: greenrt::sync::PriorityQueue<u32> = greenrt::sync::Queue::new(0);
    /// for n in [5, 1, 3] {
    ///     q.put(n).unwrap();
    /// }
    /// assert_eq!(q.peek(), Some(1));
    /// assert_eq!(q.len(), 3);
    /// ```
    pub fn peek(&self) -> Option<T>
    where
        T: Clone,
    {
        lock_state(&self.state).items.peek().cloned()
    }

    /// How many items are in the queue.
    ///
    /// ```
    /// let q: greenrt::sync::Queue<u8> = greenrt::sync::Queue::new(3);
    /// q.put(1).unwrap();
    /// q.put(2).unwrap();
    /// assert_eq!((q.len(), q.qsize(), q.is_empty(), q.is_full()), (2, 2, false, false));
    /// ```
    pub fn len(&self) -> usize {
        lock_state(&self.state).items.len()
    }

    /// True when no item is in the queue.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the queue holds `maxsize` items (never for an unbounded queue).
    pub fn is_full(&self) -> bool {
        self.maxsize > 0 && self.len() >= self.maxsize
    }

    /// Python's name for [`len`](Queue::len).
    pub fn qsize(&self) -> usize {
        self.len()
    }

    /// Python's name for [`is_empty`](Queue::is_empty).
    #[deprecated(since = "0.1.0", note = "use `is_empty`, as `ipc::Queue` and std do")]
    pub fn empty(&self) -> bool {
        self.is_empty()
    }

    /// Python's name for [`is_full`](Queue::is_full).
    #[deprecated(since = "0.1.0", note = "use `is_full`")]
    pub fn full(&self) -> bool {
        self.is_full()
    }

    /// Gets items, waiting for each, until the queue is closed and drained (std's
    /// `Receiver::iter`).
    ///
    /// ```
    /// use std::rc::Rc;
    /// let q: Rc<greenrt::sync::Queue<i32>> = Rc::new(greenrt::sync::Queue::new(0));
    /// let producer = greenrt::spawn({
    ///     let q = q.clone();
    ///     move || {
    ///         (1..=3).for_each(|i| q.put(i).unwrap());
    ///         q.close();
    ///     }
    /// });
    /// assert_eq!(q.iter().collect::<Vec<_>>(), [1, 2, 3]);
    /// producer.join().unwrap();
    /// ```
    pub fn iter(&self) -> Iter<'_, T, O> {
        Iter { queue: self }
    }

    /// Gets the items there are now, without waiting (std's `Receiver::try_iter`).
    ///
    /// ```
    /// let q: greenrt::sync::Queue<u8> = greenrt::sync::Queue::new(0);
    /// (1..=3).for_each(|i| q.put(i).unwrap());
    /// assert_eq!(q.try_iter().collect::<Vec<_>>(), [1, 2, 3]); // then it ends: nothing waits
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T, O> {
        TryIter { queue: self }
    }

    /// Marks one taken item as processed; `join` returns when all are.
    ///
    /// ```
    /// use greenrt::sync::{Queue, TaskDoneTooOften};
    /// let q: Queue<u8> = Queue::new(0);
    /// q.put(1).unwrap();
    /// q.get().unwrap();
    /// assert_eq!(q.task_done(), Ok(()));
    /// q.join(); // returns at once: nothing unfinished
    /// assert_eq!(q.task_done(), Err(TaskDoneTooOften)); // Python's ValueError
    /// ```
    pub fn task_done(&self) -> Result<(), TaskDoneTooOften> {
        let joiners = {
            let mut s = lock_state(&self.state);
            if s.unfinished == 0 {
                return Err(TaskDoneTooOften);
            }
            s.unfinished -= 1;
            if s.unfinished > 0 {
                return Ok(());
            }
            std::mem::take(&mut s.joiners)
        };
        joiners.iter().for_each(|w| w.notify());
        Ok(())
    }

    /// Parks until every item put so far has been marked with `task_done`.
    pub fn join(&self) {
        loop {
            let waiter = Waiter::for_current();
            {
                let mut s = lock_state(&self.state);
                if s.unfinished == 0 {
                    return;
                }
                s.joiners.push(waiter.clone());
            }
            waiter.park(
                Wait::Sync("Queue join", self as *const Self as *const () as usize),
                None,
            );
        }
    }

    /// Closes the queue: `put` fails from now on, `get` drains what is left and then fails
    /// with `Closed`; every waiter is woken to see it.
    ///
    /// ```
    /// use greenrt::sync::{GetError, PutError, Queue};
    /// let q: Queue<u8> = Queue::new(0);
    /// q.put(1).unwrap();
    /// q.close();
    /// assert!(matches!(q.put(2), Err(PutError::Closed(2))));
    /// assert_eq!(q.get(), Ok(1)); // drained first
    /// assert_eq!(q.get(), Err(GetError::Closed));
    /// ```
    pub fn close(&self) {
        let woken: Vec<_> = {
            let mut s = lock_state(&self.state);
            s.closed = true;
            let getters = std::mem::take(&mut s.getters);
            let watchers = std::mem::take(&mut s.watchers);
            s.putters.drain(..).chain(getters).chain(watchers).collect()
        };
        woken.iter().for_each(|w| w.notify()); // a plain wake-up: they look again and see it
    }

    /// Python 3.13's `shutdown(immediate)`. Not immediate: [`close`](Queue::close). Immediate:
    /// also drops the items no getter has been promised yet, counts them as done for
    /// [`join`](Queue::join) (which returns if nothing else is unfinished), and fails every
    /// waiting `get` at once. Returns how many items it dropped.
    ///
    /// ```
    /// let q: greenrt::sync::Queue<u32> = greenrt::sync::Queue::new(0);
    /// q.put(1).unwrap();
    /// q.put(2).unwrap();
    /// assert_eq!(q.shutdown(true), 2);
    /// assert_eq!(q.get(), Err(greenrt::sync::GetError::Closed));
    /// q.join(); // the dropped items count as done
    /// ```
    pub fn shutdown(&self, immediate: bool) -> usize {
        if !immediate {
            self.close();
            return 0;
        }
        let (dropped, joiners) = {
            let mut s = lock_state(&self.state);
            let mut dropped = Vec::new();
            while s.items.len() > s.reserved_items {
                dropped.extend(s.items.pop());
            }
            s.unfinished = s.unfinished.saturating_sub(dropped.len());
            let joiners = if s.unfinished == 0 {
                std::mem::take(&mut s.joiners)
            } else {
                Vec::new()
            };
            (dropped, joiners)
        };
        let count = dropped.len();
        drop(dropped); // their destructors run outside the lock
        joiners.iter().for_each(|w| w.notify());
        self.close();
        count
    }

    fn has_room(&self, s: &State<T, O>) -> bool {
        self.maxsize == 0 || s.items.len() + s.reserved_space < self.maxsize
    }

    /// Reserves spare items for waiting getters and spare room for waiting putters, longest
    /// waiting first; an item left over wakes the watchers (`greenrt::wait`). Returns the
    /// waiters to notify once the lock is released.
    fn dispatch(&self, s: &mut State<T, O>) -> Vec<Arc<Waiter>> {
        let mut granted = Vec::new();
        while s.items.len() > s.reserved_items {
            let Some(getter) = s.getters.pop_front() else {
                break;
            };
            s.reserved_items += 1;
            getter.mark_granted();
            granted.push(getter);
        }
        if s.items.len() > s.reserved_items && !s.watchers.is_empty() {
            granted.append(&mut s.watchers);
        }
        while self.has_room(s) {
            let Some(putter) = s.putters.pop_front() else {
                break;
            };
            s.reserved_space += 1;
            putter.mark_granted();
            granted.push(putter);
        }
        granted
    }

    fn put_deadline(&self, item: T, deadline: Option<Instant>) -> Result<(), PutError<T>> {
        let mut reserved = false;
        loop {
            let waiter = {
                let mut s = lock_state(&self.state);
                if reserved {
                    s.reserved_space -= 1;
                }
                if s.closed {
                    let granted = self.dispatch(&mut s); // pass our reservation on
                    drop(s);
                    granted.iter().for_each(|w| w.notify());
                    return Err(PutError::Closed(item));
                }
                if reserved || (s.putters.is_empty() && self.has_room(&s)) {
                    s.items.push(item);
                    s.unfinished += 1;
                    let granted = self.dispatch(&mut s);
                    drop(s);
                    granted.iter().for_each(|w| w.notify());
                    return Ok(());
                }
                if deadline.is_some_and(|at| Instant::now() >= at) {
                    return Err(PutError::Full(item));
                }
                let waiter = Waiter::for_current();
                s.putters.push_back(waiter.clone());
                waiter
            };
            reserved = self.park(
                &waiter,
                deadline,
                "Queue put",
                |s| &mut s.putters,
                |s| &mut s.reserved_space,
            );
        }
    }

    fn get_deadline(&self, deadline: Option<Instant>) -> Result<T, GetError> {
        let mut reserved = false;
        loop {
            let waiter = {
                let mut s = lock_state(&self.state);
                if reserved {
                    s.reserved_items -= 1;
                }
                if reserved || (s.getters.is_empty() && s.items.len() > s.reserved_items) {
                    let item = s.items.pop().expect("a reserved or spare item is there");
                    let granted = self.dispatch(&mut s);
                    drop(s);
                    granted.iter().for_each(|w| w.notify());
                    return Ok(item);
                }
                if s.closed {
                    return Err(GetError::Closed);
                }
                if deadline.is_some_and(|at| Instant::now() >= at) {
                    return Err(GetError::Empty);
                }
                let waiter = Waiter::for_current();
                s.getters.push_back(waiter.clone());
                waiter
            };
            reserved = self.park(
                &waiter,
                deadline,
                "Queue get",
                |s| &mut s.getters,
                |s| &mut s.reserved_items,
            );
        }
    }

    /// Parks in one of the wait queues. Returns true if something was reserved for us (an
    /// item, or a place); false after a timeout or a plain wake-up (`close`), in which case
    /// the caller looks again. A waiter that unwinds leaves its queue or gives back what
    /// was reserved for it.
    fn park(
        &self,
        waiter: &Arc<Waiter>,
        deadline: Option<Instant>,
        what: &'static str,
        queue: fn(&mut State<T, O>) -> &mut VecDeque<Arc<Waiter>>,
        reservations: fn(&mut State<T, O>) -> &mut usize,
    ) -> bool {
        let mut leave = Leave {
            queue: self,
            waiter,
            which: queue,
            reservations,
            armed: true,
        };
        let notified = waiter.park(
            Wait::Sync(what, self as *const Self as *const () as usize),
            deadline,
        );
        leave.armed = false;
        if !notified {
            // Timed out: leave the queue, unless someone notified us in the meantime.
            unqueue(queue(&mut lock_state(&self.state)), waiter);
        }
        waiter.is_granted()
    }
}

/// Leaves a wait queue when a parked waiter unwinds; a reservation made for it meanwhile is
/// given back and passed on to the next waiter.
struct Leave<'a, T, O: Order<T>> {
    queue: &'a Queue<T, O>,
    waiter: &'a Arc<Waiter>,
    which: fn(&mut State<T, O>) -> &mut VecDeque<Arc<Waiter>>,
    reservations: fn(&mut State<T, O>) -> &mut usize,
    armed: bool,
}

impl<T, O: Order<T>> Drop for Leave<'_, T, O> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut s = lock_state(&self.queue.state);
        if unqueue((self.which)(&mut s), self.waiter) || !self.waiter.is_granted() {
            return;
        }
        *(self.reservations)(&mut s) -= 1;
        let granted = self.queue.dispatch(&mut s);
        drop(s);
        granted.iter().for_each(|w| w.notify());
    }
}

/// Items of a [`Queue`] until it is closed and drained: see [`Queue::iter`].
pub struct Iter<'a, T, O: Order<T> = Fifo<T>> {
    queue: &'a Queue<T, O>,
}

impl<T, O: Order<T>> Iterator for Iter<'_, T, O> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.queue.get().ok() // fails only once closed and drained
    }
}

/// The items a [`Queue`] holds now: see [`Queue::try_iter`].
pub struct TryIter<'a, T, O: Order<T> = Fifo<T>> {
    queue: &'a Queue<T, O>,
}

impl<T, O: Order<T>> Iterator for TryIter<'_, T, O> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.queue.try_get().ok()
    }
}

impl<'a, T, O: Order<T>> IntoIterator for &'a Queue<T, O> {
    type Item = T;
    type IntoIter = Iter<'a, T, O>;

    fn into_iter(self) -> Iter<'a, T, O> {
        self.iter()
    }
}

impl<T, O: Order<T>> fmt::Debug for Iter<'_, T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").field("queue", self.queue).finish()
    }
}

impl<T, O: Order<T>> fmt::Debug for TryIter<'_, T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryIter")
            .field("queue", self.queue)
            .finish()
    }
}

impl<T, O: Order<T>> fmt::Debug for Queue<T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = lock_state(&self.state);
        f.debug_struct("Queue")
            .field("maxsize", &self.maxsize)
            .field("qsize", &s.items.len())
            .field("getters", &s.getters.len())
            .field("watchers", &s.watchers.len())
            .field("putters", &s.putters.len())
            .field("closed", &s.closed)
            .finish()
    }
}

/// Ready when a `get` would not wait: an item no getter has been promised, or closed.
impl<T, O: Order<T>> crate::Waitable for Queue<T, O> {
    fn is_ready(&self) -> bool {
        let s = lock_state(&self.state);
        s.items.len() > s.reserved_items || s.closed
    }

    fn watch<'a>(&'a self, watcher: &crate::Watcher) -> crate::Watching<'a> {
        let waiter = watcher.waiter().clone();
        lock_state(&self.state).watchers.push(waiter.clone());
        crate::Watching::until(move || {
            let mut s = lock_state(&self.state);
            if let Some(i) = s.watchers.iter().position(|w| Arc::ptr_eq(w, &waiter)) {
                s.watchers.swap_remove(i);
            }
        })
    }
}
