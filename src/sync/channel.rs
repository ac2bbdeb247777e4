//! [`Channel`]: a rendezvous — `put` waits until a getter takes the item (gevent's
//! `gevent.queue.Channel`, Go's unbuffered channel). Nothing is stored in between: a put
//! and a get meet, and the item passes from hand to hand.
//!
//! Each side queues as a *hand*: a waiter and a one-item slot. A put that finds a getter
//! waiting drops the item into that getter's slot and wakes it; otherwise it queues its own
//! hand, holding the item, and parks until a getter empties it. All hand-overs happen under
//! the channel's lock, so a side that gives up (deadline, kill) looks at its slot under the
//! lock too and knows exactly whether the item moved:
//!
//! ```text
//!   put(x): getter waiting?  yes -> getter.slot = x, wake it          -> Ok
//!                            no  -> queue (me, slot = x), park
//!                                   slot emptied by a getter          -> Ok
//!                                   deadline, slot still x            -> Err(Full(x))
//! ```
//!
//! One case has no one to hand to: a getter that was given an item and is killed before it
//! wakes. Its item goes back to the channel as *left over*, which the next get takes first —
//! an item is never dropped silently.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::queue::{GetError, PutError};
use super::waiter::{Waiter, lock_state};
use crate::hub::green::Wait;

/// One side waiting at the channel: its waiter and the item in its hand.
struct Hand<T> {
    waiter: Arc<Waiter>,
    slot: Arc<std::sync::Mutex<Option<T>>>,
}

impl<T> Clone for Hand<T> {
    fn clone(&self) -> Self {
        Hand {
            waiter: self.waiter.clone(),
            slot: self.slot.clone(),
        }
    }
}

struct State<T> {
    getters: VecDeque<Hand<T>>,
    putters: VecDeque<Hand<T>>,
    /// Items handed to getters that were killed before they woke: the next gets take them.
    left_over: VecDeque<T>,
    closed: bool,
}

/// A rendezvous channel for green threads (on any OS threads); see the module docs.
///
/// ```
/// use std::rc::Rc;
/// use greenrt::sync::Channel;
///
/// let ch: Rc<Channel<&str>> = Rc::new(Channel::new());
/// let c = ch.clone();
/// let producer = greenrt::spawn(move || {
///     c.put("ping").unwrap(); // parks until the get below takes it
///     "handed over"
/// });
/// assert_eq!(ch.get(), Ok("ping"));
/// assert_eq!(producer.join().unwrap(), "handed over");
/// ```
pub struct Channel<T> {
    state: std::sync::Mutex<State<T>>,
}

impl<T> Default for Channel<T> {
    fn default() -> Self {
        Channel::new()
    }
}

impl<T> Channel<T> {
    /// An open channel with no one waiting.
    pub const fn new() -> Channel<T> {
        Channel {
            state: std::sync::Mutex::new(State {
                getters: VecDeque::new(),
                putters: VecDeque::new(),
                left_over: VecDeque::new(),
                closed: false,
            }),
        }
    }

    /// Hands `item` to a getter, waiting until one takes it.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_deadline(item, None)
    }

    /// [`put`](Channel::put), waiting at most `timeout`; `Full(item)` if no getter took it.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_deadline(item, crate::time::deadline_in(timeout))
    }

    /// Hands `item` over only if a getter is waiting right now.
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_deadline(item, Some(Instant::now()))
    }

    /// Takes an item from a putter, waiting until one comes.
    pub fn get(&self) -> Result<T, GetError> {
        self.get_deadline(None)
    }

    /// [`get`](Channel::get), waiting at most `timeout`.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_deadline(crate::time::deadline_in(timeout))
    }

    /// Takes an item only if a putter is waiting right now.
    pub fn try_get(&self) -> Result<T, GetError> {
        self.get_deadline(Some(Instant::now()))
    }

    /// Closes the channel: waiting and later puts fail with `Closed` (the item comes back),
    /// gets fail with `Closed` once no putter and no left-over item remains.
    pub fn close(&self) {
        let woken: Vec<Arc<Waiter>> = {
            let mut s = lock_state(&self.state);
            s.closed = true;
            let getters = std::mem::take(&mut s.getters);
            let putters = std::mem::take(&mut s.putters);
            getters
                .into_iter()
                .chain(putters)
                .map(|h| h.waiter)
                .collect()
        };
        woken.iter().for_each(|w| w.notify());
    }

    /// How many putters wait with an item now (Python's `qsize` of a Channel is always 0;
    /// this is what a get would find).
    pub fn waiting_putters(&self) -> usize {
        let s = lock_state(&self.state);
        s.putters.len() + s.left_over.len()
    }

    /// How many getters wait now.
    pub fn waiting_getters(&self) -> usize {
        lock_state(&self.state).getters.len()
    }

    fn put_deadline(&self, item: T, deadline: Option<Instant>) -> Result<(), PutError<T>> {
        let me = {
            let mut s = lock_state(&self.state);
            if s.closed {
                return Err(PutError::Closed(item));
            }
            if let Some(getter) = s.getters.pop_front() {
                *lock_state(&getter.slot) = Some(item);
                drop(s);
                getter.waiter.notify();
                return Ok(());
            }
            if deadline.is_some_and(|at| Instant::now() >= at) {
                return Err(PutError::Full(item));
            }
            let me = Hand {
                waiter: Waiter::for_current(),
                slot: Arc::new(std::sync::Mutex::new(Some(item))),
            };
            s.putters.push_back(me.clone());
            me
        };
        let _leave = Leave {
            channel: self,
            hand: &me,
            side: Side::Putter,
        };
        me.waiter
            .park(Wait::Sync("Channel put", self.addr()), deadline);
        let mut s = lock_state(&self.state);
        unqueue(&mut s.putters, &me);
        match lock_state(&me.slot).take() {
            None => Ok(()), // a getter took it
            Some(item) if s.closed => Err(PutError::Closed(item)),
            Some(item) => Err(PutError::Full(item)),
        }
    }

    fn get_deadline(&self, deadline: Option<Instant>) -> Result<T, GetError> {
        let me = {
            let mut s = lock_state(&self.state);
            if let Some(item) = s.left_over.pop_front() {
                return Ok(item);
            }
            if let Some(putter) = s.putters.pop_front() {
                let item = lock_state(&putter.slot)
                    .take()
                    .expect("a queued putter holds its item");
                drop(s);
                putter.waiter.notify();
                return Ok(item);
            }
            if s.closed {
                return Err(GetError::Closed);
            }
            if deadline.is_some_and(|at| Instant::now() >= at) {
                return Err(GetError::Empty);
            }
            let me = Hand {
                waiter: Waiter::for_current(),
                slot: Arc::new(std::sync::Mutex::new(None)),
            };
            s.getters.push_back(me.clone());
            me
        };
        let _leave = Leave {
            channel: self,
            hand: &me,
            side: Side::Getter,
        };
        me.waiter
            .park(Wait::Sync("Channel get", self.addr()), deadline);
        let mut s = lock_state(&self.state);
        unqueue(&mut s.getters, &me);
        match lock_state(&me.slot).take() {
            Some(item) => Ok(item),
            None if s.closed => Err(GetError::Closed),
            None => Err(GetError::Empty),
        }
    }

    fn addr(&self) -> usize {
        self as *const Self as *const () as usize
    }
}

/// Takes `hand` off `queue` if it is still there.
fn unqueue<T>(queue: &mut VecDeque<Hand<T>>, hand: &Hand<T>) {
    if let Some(i) = queue
        .iter()
        .position(|h| Arc::ptr_eq(&h.waiter, &hand.waiter))
    {
        queue.remove(i);
    }
}

enum Side {
    Putter,
    Getter,
}

/// On an unwind out of a park (kill, `timeout`): off the queue, and an item handed to a
/// getter that will never return it goes back to the channel.
struct Leave<'a, T> {
    channel: &'a Channel<T>,
    hand: &'a Hand<T>,
    side: Side,
}

impl<T> Drop for Leave<'_, T> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return; // the normal path did its own bookkeeping
        }
        let mut s = lock_state(&self.channel.state);
        match self.side {
            Side::Putter => unqueue(&mut s.putters, self.hand), // its item unwinds with it
            Side::Getter => {
                unqueue(&mut s.getters, self.hand);
                if let Some(item) = lock_state(&self.hand.slot).take() {
                    s.left_over.push_back(item);
                }
            }
        }
    }
}

impl<T> fmt::Debug for Channel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = lock_state(&self.state);
        f.debug_struct("Channel")
            .field("getters", &s.getters.len())
            .field("putters", &s.putters.len())
            .field("left_over", &s.left_over.len())
            .field("closed", &s.closed)
            .finish()
    }
}
