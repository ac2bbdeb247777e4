//! `ipc::Queue<T>`: a bounded multi-producer multi-consumer FIFO of serde values in shared
//! memory (multiprocessing.Queue), safe against processes killed at any instant.
//!
//! ```text
//!   QueueState (words, below)                    ring: `capacity` bytes
//!   +------------------------------------+      +--------------------------------------+
//!   | lock  closed  seqs  waiter counts  |      | ... | len | payload | len | payload |.. |
//!   | head  tail  count  unfinished      |      +--------------------------------------+
//!   | journal: old head/tail/count/unf.  |            ^head                     ^tail
//!   +------------------------------------+      (positions grow forever; index = pos % capacity)
//! ```
//!
//! | word                 | meaning                                                     |
//! |----------------------|-------------------------------------------------------------|
//! | `lock`               | robust internal lock; every operation holds it briefly      |
//! | `head`, `tail`       | byte positions of the oldest frame and of the free space    |
//! | `count`              | frames in the ring; `unfinished`: puts not yet `task_done`  |
//! | `not_empty`/`not_full`/`all_done` | sequence words bumped on put / get / last task_done; waiters sleep on them |
//! | `getters`/`putters`/`joiners` | how many may sleep on each (0 = skip the wake syscall) |
//! | `journal`            | `active` + the old `head tail count unfinished` of an update in flight |
//!
//! A frame is a little-endian `u32` length and that many bytes of postcard-encoded value.
//!
//! **Kill -9 at any instant.** A put copies its frame past `tail` first, and only then
//! publishes it by moving `tail`; a get copies the frame out and only then moves `head`. Both
//! run under the journal: old values saved, `active = 1`, update, `active = 0`. If the process
//! dies in between, the next one to take the lock (told `OwnerDied`) restores the old values:
//! the half-written frame was never visible, the half-taken frame is still there. So no torn
//! frame is ever read and none is read twice; a put that returned is in the queue for good.
//!
//! **Untrusted memory.** Before using them, every operation checks `head <= tail`,
//! `tail - head <= capacity`, the frame length against `max_message` and the bytes in use, and
//! the capacity against the region's size: a corrupt queue is `InvalidData`, never a wild copy.
//!
//! Wake-ups go to *all* sleepers of a word (when there are any): a woken process that dies or
//! times out before it acts then cannot strand the others.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::event::Uncount;
use super::fault::{self, CrashPoint};
use super::raw_lock::{Acquired, RawLock};
use super::region::{Kind, Region, SharedLayout, invalid};
use super::wait;
/// The same error as green queues give.
pub use crate::sync::TaskDoneTooOften;

/// Bytes of a frame's length prefix.
const LEN_BYTES: u64 = 4;
/// The default ring size of [`Queue::new`]-style constructors when none is given.
pub const DEFAULT_CAPACITY: usize = 1 << 20;

#[repr(C)]
struct Journal {
    active: AtomicU32,
    head: AtomicU64,
    tail: AtomicU64,
    count: AtomicU64,
    unfinished: AtomicU64,
}

#[repr(C)]
struct QueueState {
    lock: RawLock,
    closed: AtomicU32,
    not_empty: AtomicU32,
    not_full: AtomicU32,
    all_done: AtomicU32,
    getters: AtomicU32,
    putters: AtomicU32,
    joiners: AtomicU32,
    capacity: AtomicU64,
    max_message: AtomicU64,
    type_tag: AtomicU64,
    head: AtomicU64,
    tail: AtomicU64,
    count: AtomicU64,
    unfinished: AtomicU64,
    journal: Journal,
}

// SAFETY: repr(C), atomics only.
unsafe impl SharedLayout for QueueState {}

/// Where the ring starts in the body.
const RING_OFFSET: usize = size_of::<QueueState>().next_multiple_of(64);

/// Why a put did not happen. Nothing was written in any case.
#[derive(Debug)]
pub enum PutError {
    /// No room (after the timeout, or at once for `try_put`).
    Full,
    /// The queue was closed.
    Closed,
    /// The encoded value is larger than the queue's maximum message size.
    TooLarge {
        /// Encoded size in bytes.
        size: usize,
        /// The queue's maximum.
        max: usize,
    },
    /// The value could not be encoded (`InvalidInput`) or the queue is corrupt (`InvalidData`).
    Io(io::Error),
}

/// Why a get returned no value.
#[derive(Debug)]
pub enum GetError {
    /// Nothing arrived (before the timeout, or now for `try_get`).
    Empty,
    /// The queue is closed and drained.
    Closed,
    /// The message could not be decoded as a `T`, or the queue is corrupt (`InvalidData`).
    Io(io::Error),
}

impl fmt::Display for PutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full => f.write_str("ipc queue full"),
            PutError::Closed => f.write_str("ipc queue closed"),
            PutError::TooLarge { size, max } => {
                write!(
                    f,
                    "message of {size} bytes exceeds the queue's maximum of {max}"
                )
            }
            PutError::Io(e) => write!(f, "ipc queue: {e}"),
        }
    }
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Empty => f.write_str("ipc queue empty"),
            GetError::Closed => f.write_str("ipc queue closed"),
            GetError::Io(e) => write!(f, "ipc queue: {e}"),
        }
    }
}

impl std::error::Error for PutError {}
impl std::error::Error for GetError {}

impl From<PutError> for io::Error {
    /// For `?` in functions returning `io::Result`: `Full` is `WouldBlock`, `Closed`
    /// `BrokenPipe`, `TooLarge` `InvalidInput` (each carrying the `PutError`), and `Io` gives
    /// back its own error.
    fn from(e: PutError) -> io::Error {
        match e {
            PutError::Io(inner) => inner,
            PutError::Full => io::Error::new(io::ErrorKind::WouldBlock, e),
            PutError::Closed => io::Error::new(io::ErrorKind::BrokenPipe, e),
            PutError::TooLarge { .. } => io::Error::new(io::ErrorKind::InvalidInput, e),
        }
    }
}

impl From<GetError> for io::Error {
    /// For `?` in functions returning `io::Result`: `Empty` is `WouldBlock`, `Closed`
    /// (closed and drained) `UnexpectedEof` (each carrying the `GetError`), and `Io` gives
    /// back its own error.
    fn from(e: GetError) -> io::Error {
        match e {
            GetError::Io(inner) => inner,
            GetError::Empty => io::Error::new(io::ErrorKind::WouldBlock, e),
            GetError::Closed => io::Error::new(io::ErrorKind::UnexpectedEof, e),
        }
    }
}

impl From<io::Error> for PutError {
    fn from(e: io::Error) -> PutError {
        PutError::Io(e)
    }
}

impl From<io::Error> for GetError {
    fn from(e: io::Error) -> GetError {
        GetError::Io(e)
    }
}

/// Settings for a new [`Queue`].
#[derive(Debug, Clone, Copy)]
pub struct QueueBuilder {
    capacity: usize,
    max_message: Option<usize>,
}

impl Default for QueueBuilder {
    fn default() -> QueueBuilder {
        QueueBuilder::new()
    }
}

impl QueueBuilder {
    /// Default settings: a ring of [`DEFAULT_CAPACITY`] bytes, messages up to what fits.
    ///
    /// ```
    /// use greenrt::ipc::{Queue, QueueBuilder};
    ///
    /// let q: Queue<String> = QueueBuilder::new().capacity(4096).max_message(256).build()?;
    /// assert!(q.put(&"x".repeat(1000)).is_err()); // TooLarge: nothing written
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> QueueBuilder {
        QueueBuilder {
            capacity: DEFAULT_CAPACITY,
            max_message: None,
        }
    }

    /// The ring's size in bytes (each message takes 4 bytes more than its encoding).
    pub fn capacity(mut self, bytes: usize) -> QueueBuilder {
        self.capacity = bytes;
        self
    }

    /// The largest encoded message accepted (default: whatever fits in the ring).
    pub fn max_message(mut self, bytes: usize) -> QueueBuilder {
        self.max_message = Some(bytes);
        self
    }

    fn limits(&self) -> io::Result<(u64, u64)> {
        let capacity = self.capacity as u64;
        let room = capacity
            .checked_sub(LEN_BYTES)
            .filter(|&r| r > 0)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "ipc queue capacity must exceed 4 bytes",
                )
            })?;
        let max = self.max_message.map_or(room, |m| m as u64);
        if max > room || max > u32::MAX as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("max_message {max} does not fit a ring of {capacity} bytes"),
            ));
        }
        Ok((capacity, max))
    }

    /// Makes the queue in anonymous shared memory (inherited across `fork`).
    pub fn build<T: Serialize + DeserializeOwned>(self) -> io::Result<Queue<T>> {
        self.make(None)
    }

    /// Makes the named queue `name`, for unrelated processes to [`Queue::open`].
    pub fn create<T: Serialize + DeserializeOwned>(self, name: &str) -> io::Result<Queue<T>> {
        self.make(Some(name))
    }

    fn make<T: Serialize + DeserializeOwned>(self, name: Option<&str>) -> io::Result<Queue<T>> {
        let (capacity, max) = self.limits()?;
        let init = |r: &Region| {
            let s: &QueueState = r.body();
            s.capacity.store(capacity, Ordering::Relaxed);
            s.max_message.store(max, Ordering::Relaxed);
            s.type_tag.store(type_tag::<T>(), Ordering::Relaxed);
        };
        let len = RING_OFFSET + capacity as usize;
        let region = match name {
            Some(name) => Region::create(name, Kind::Queue, len, init)?,
            None => Region::anonymous(Kind::Queue, len, init)?,
        };
        Ok(Queue::wrap(region))
    }
}

/// A bounded FIFO of `T` shared between processes. See the module docs for the guarantees.
///
/// ```
/// use greenrt::ipc::Queue;
///
/// let q: Queue<(u32, String)> = Queue::new(64 * 1024)?;
/// let child = greenrt::process::Process::spawn({
///     let q = q.clone();
///     move || q.put(&(7, "seven".to_string())).unwrap()
/// })?;
/// assert_eq!(q.get().unwrap(), (7, "seven".to_string()));
/// child.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Queue<T> {
    region: Arc<Region>,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            region: self.region.clone(),
            _t: PhantomData,
        }
    }
}

/// Messages of an ipc [`Queue`] until it is closed and drained: see [`Queue::iter`].
#[derive(Debug)]
pub struct Iter<'a, T> {
    queue: &'a Queue<T>,
}

impl<T: Serialize + DeserializeOwned> Iterator for Iter<'_, T> {
    type Item = io::Result<T>;

    fn next(&mut self) -> Option<io::Result<T>> {
        match self.queue.get() {
            Ok(item) => Some(Ok(item)),
            Err(GetError::Io(e)) => Some(Err(e)),
            Err(GetError::Closed | GetError::Empty) => None,
        }
    }
}

/// The messages an ipc [`Queue`] holds now: see [`Queue::try_iter`].
#[derive(Debug)]
pub struct TryIter<'a, T> {
    queue: &'a Queue<T>,
}

impl<T: Serialize + DeserializeOwned> Iterator for TryIter<'_, T> {
    type Item = io::Result<T>;

    fn next(&mut self) -> Option<io::Result<T>> {
        match self.queue.try_get() {
            Ok(item) => Some(Ok(item)),
            Err(GetError::Io(e)) => Some(Err(e)),
            Err(GetError::Closed | GetError::Empty) => None,
        }
    }
}

impl<'a, T: Serialize + DeserializeOwned> IntoIterator for &'a Queue<T> {
    type Item = io::Result<T>;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("region", &self.region)
            .finish()
    }
}

thread_local! {
    /// A reused encode/decode buffer: a put or get allocates nothing in the steady state.
    /// Taken out while in use, since a put or get may park and let another green thread of
    /// this OS thread run its own put or get.
    static BUF: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

fn take_buffer() -> Vec<u8> {
    let mut buf = BUF.with(Cell::take);
    buf.clear();
    buf
}

fn give_back_buffer(buf: Vec<u8>) {
    if buf.capacity() <= 1 << 20 {
        BUF.with(|b| b.set(buf));
    }
}

/// Tells queues of different item types apart (a hash of the type's name).
fn type_tag<T>() -> u64 {
    std::any::type_name::<T>()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// A queue with a ring of `capacity` bytes in anonymous shared memory.
    pub fn new(capacity: usize) -> io::Result<Queue<T>> {
        QueueBuilder::new().capacity(capacity).build()
    }

    /// Creates the named queue `name` with a ring of `capacity` bytes.
    pub fn create(name: &str, capacity: usize) -> io::Result<Queue<T>> {
        QueueBuilder::new().capacity(capacity).create(name)
    }

    /// Opens the named queue `name`, which must carry items of this `T`.
    pub fn open(name: &str) -> io::Result<Queue<T>> {
        let q = Queue::wrap(Region::open(name, Kind::Queue, RING_OFFSET)?);
        q.enter()?.check()?;
        if q.state().type_tag.load(Ordering::Relaxed) != type_tag::<T>() {
            return Err(invalid(format!(
                "ipc queue {name:?} does not carry {}",
                std::any::type_name::<T>()
            )));
        }
        Ok(q)
    }

    fn wrap(region: Region) -> Queue<T> {
        Queue {
            region: Arc::new(region),
            _t: PhantomData,
        }
    }

    fn state(&self) -> &QueueState {
        self.region.body()
    }

    /// Puts `item` at the back, waiting for room as long as needed.
    pub fn put(&self, item: &T) -> Result<(), PutError> {
        self.put_until(item, Wait::Forever)
    }

    /// Puts `item`, waiting at most `timeout` for room (`PutError::Full` after).
    pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<(), PutError> {
        self.put_until(item, Wait::after(timeout))
    }

    /// Puts `item` only if there is room now (Python's `put_nowait`).
    pub fn try_put(&self, item: &T) -> Result<(), PutError> {
        self.put_until(item, Wait::No)
    }

    /// Takes the front item, waiting as long as needed.
    pub fn get(&self) -> Result<T, GetError> {
        self.get_until(Wait::Forever)
    }

    /// Takes the front item, waiting at most `timeout` (`GetError::Empty` after).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_until(Wait::after(timeout))
    }

    /// Takes the front item only if there is one now (Python's `get_nowait`). Never blocks:
    /// while another process is inside the queue (or died there, not yet repaired) the
    /// answer is `Empty`.
    pub fn try_get(&self) -> Result<T, GetError> {
        self.get_until(Wait::No)
    }

    /// Takes the front item if there is one, waiting for the internal lock (and its repair
    /// after a dead holder) but not for an item: a drain that sees everything.
    pub(crate) fn get_present(&self) -> Result<T, GetError> {
        self.get_until(Wait::NoneButTheLock)
    }

    /// Puts `item` if there is room, waiting for the internal lock but not for room.
    pub(crate) fn put_if_room(&self, item: &T) -> Result<(), PutError> {
        self.put_until(item, Wait::NoneButTheLock)
    }

    fn put_until(&self, item: &T, wait: Wait) -> Result<(), PutError> {
        let mut buf = take_buffer();
        let result = match postcard::to_extend(item, std::mem::take(&mut buf)) {
            Ok(bytes) => {
                let result = self.put_bytes(&bytes, wait);
                buf = bytes;
                result
            }
            Err(e) => Err(PutError::Io(io::Error::new(io::ErrorKind::InvalidInput, e))),
        };
        give_back_buffer(buf);
        result
    }

    fn put_bytes(&self, bytes: &[u8], wait: Wait) -> Result<(), PutError> {
        let s = self.state();
        let max = s.max_message.load(Ordering::Relaxed);
        if bytes.len() as u64 > max {
            return Err(PutError::TooLarge {
                size: bytes.len(),
                max: max as usize,
            });
        }
        let need = LEN_BYTES + bytes.len() as u64;
        loop {
            let seq = {
                let Some(inside) = self.enter_within(wait)? else {
                    return Err(PutError::Full); // no room could be seen in time
                };
                let (head, tail) = inside.check()?;
                if s.closed.load(Ordering::Relaxed) != 0 {
                    return Err(PutError::Closed);
                }
                if inside.capacity - (tail - head) >= need {
                    inside.push_frame(tail, bytes);
                    break;
                }
                s.putters.fetch_add(1, Ordering::SeqCst);
                s.not_full.load(Ordering::SeqCst)
            };
            let _count = Uncount(&s.putters);
            if !wait.sleep(&s.not_full, seq) {
                return Err(PutError::Full);
            }
        }
        if s.getters.load(Ordering::SeqCst) != 0 {
            wait::wake(&s.not_empty, u32::MAX);
        }
        Ok(())
    }

    fn get_until(&self, wait: Wait) -> Result<T, GetError> {
        let mut buf = take_buffer();
        let result = self.get_bytes(&mut buf, wait).and_then(|()| {
            postcard::from_bytes(&buf).map_err(|e| {
                GetError::Io(invalid(format!(
                    "ipc queue message is not a valid {}: {e}",
                    std::any::type_name::<T>()
                )))
            })
        });
        give_back_buffer(buf);
        result
    }

    fn get_bytes(&self, out: &mut Vec<u8>, wait: Wait) -> Result<(), GetError> {
        let s = self.state();
        loop {
            let seq = {
                let Some(inside) = self.enter_within(wait)? else {
                    return Err(GetError::Empty); // nothing could be seen in time
                };
                let (head, tail) = inside.check()?;
                if tail > head {
                    inside.pop_frame(head, tail, out)?;
                    break;
                }
                if s.closed.load(Ordering::Relaxed) != 0 {
                    return Err(GetError::Closed);
                }
                s.getters.fetch_add(1, Ordering::SeqCst);
                s.not_empty.load(Ordering::SeqCst)
            };
            let _count = Uncount(&s.getters);
            if !wait.sleep(&s.not_empty, seq) {
                return Err(GetError::Empty);
            }
        }
        if s.putters.load(Ordering::SeqCst) != 0 {
            wait::wake(&s.not_full, u32::MAX);
        }
        Ok(())
    }

    /// Messages in the queue now (a snapshot).
    pub fn len(&self) -> usize {
        self.state().count.load(Ordering::Relaxed) as usize
    }

    /// Python's name for [`len`](Queue::len).
    pub fn qsize(&self) -> usize {
        self.len()
    }

    /// True if no message is in the queue now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Gets messages, waiting for each, until the queue is closed and drained (std's
    /// `Receiver::iter`). A message that cannot be decoded, or a corrupt queue, comes as an
    /// `Err` (nothing is skipped silently); iteration then goes on.
    ///
    /// ```
    /// use greenrt::ipc::Queue;
    /// let q: Queue<u32> = Queue::new(4096)?;
    /// let child = greenrt::process::Process::spawn({
    ///     let q = q.clone();
    ///     move || {
    ///         (1..=3).for_each(|i| q.put(&i).unwrap());
    ///         q.close().unwrap();
    ///     }
    /// })?;
    /// let got: Vec<u32> = q.iter().collect::<std::io::Result<_>>()?;
    /// assert_eq!(got, [1, 2, 3]);
    /// child.join()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { queue: self }
    }

    /// The messages there are now, without waiting (std's `Receiver::try_iter`).
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { queue: self }
    }

    /// Marks one item taken by `get` as processed (Python's `task_done`).
    ///
    /// # Errors
    /// More calls than items put: `InvalidInput`, carrying [`TaskDoneTooOften`] (Python's
    /// `ValueError`; find it with `get_ref().downcast_ref()`). A corrupt queue: `InvalidData`.
    pub fn task_done(&self) -> io::Result<()> {
        let s = self.state();
        let inside = self.enter()?;
        inside.check()?;
        let unfinished = s.unfinished.load(Ordering::Relaxed);
        if unfinished == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                TaskDoneTooOften,
            ));
        }
        inside.begin();
        s.unfinished.store(unfinished - 1, Ordering::Relaxed);
        inside.commit();
        if unfinished == 1 {
            s.all_done.fetch_add(1, Ordering::SeqCst);
            drop(inside);
            if s.joiners.load(Ordering::SeqCst) != 0 {
                wait::wake(&s.all_done, u32::MAX);
            }
        }
        Ok(())
    }

    /// Waits until every item put has been marked with `task_done`.
    pub fn join(&self) -> io::Result<()> {
        self.join_until(Wait::Forever).map(|_| ())
    }

    /// Like [`join`](Queue::join) for at most `timeout`; false if items are still unfinished.
    pub fn join_timeout(&self, timeout: Duration) -> io::Result<bool> {
        self.join_until(Wait::after(timeout))
    }

    fn join_until(&self, wait: Wait) -> io::Result<bool> {
        let s = self.state();
        loop {
            let seq = {
                let Some(inside) = self.enter_within(wait)? else {
                    return Ok(false);
                };
                inside.check()?;
                if s.unfinished.load(Ordering::Relaxed) == 0 {
                    return Ok(true);
                }
                s.joiners.fetch_add(1, Ordering::SeqCst);
                s.all_done.load(Ordering::SeqCst)
            };
            let _count = Uncount(&s.joiners);
            if !wait.sleep(&s.all_done, seq) {
                return Ok(false);
            }
        }
    }

    /// Closes the queue for everyone: puts fail with `Closed`; gets drain what is left, then
    /// fail with `Closed`. Every waiter wakes.
    pub fn close(&self) -> io::Result<()> {
        let s = self.state();
        drop(self.enter()?);
        s.closed.store(1, Ordering::SeqCst);
        for word in [&s.not_empty, &s.not_full] {
            word.fetch_add(1, Ordering::SeqCst);
            wait::wake(word, u32::MAX);
        }
        Ok(())
    }

    /// True once [`close`](Queue::close) was called.
    pub fn is_closed(&self) -> bool {
        self.state().closed.load(Ordering::Relaxed) != 0
    }

    /// Takes the internal lock, repairing the update of a process that died holding it.
    fn enter(&self) -> io::Result<Inside<'_>> {
        Ok(self.enter_within(Wait::Forever)?.expect("no deadline"))
    }

    /// [`Queue::enter`] within the caller's time: `None` when the lock could not be had by
    /// then — its holder may be stopped (SIGSTOP) or starved — so a `try_*` call never blocks
    /// and a timed call keeps its deadline whatever another process does.
    fn enter_within(&self, wait: Wait) -> io::Result<Option<Inside<'_>>> {
        let s = self.state();
        let capacity = (self.region.body_len() - RING_OFFSET) as u64;
        let deadline = match wait {
            Wait::No => Some(Instant::now()),
            Wait::Until(at) => Some(at),
            Wait::Forever | Wait::NoneButTheLock => None,
        };
        let Some(acquired) = s.lock.lock(deadline)? else {
            return Ok(None);
        };
        let inside = Inside {
            s,
            region: &self.region,
            capacity,
        };
        if acquired == Acquired::OwnerDied {
            inside.roll_back();
        }
        Ok(Some(inside))
    }
}

/// How long an operation may wait.
#[derive(Clone, Copy)]
enum Wait {
    /// No waiting at all: not for an item or room, not for the internal lock (`try_*`).
    No,
    /// No waiting for an item or room, but as long as it takes for the internal lock — and
    /// so the repair after a holder that died in it. For greenrt's own drains (the process
    /// pool taking back a dead worker's tasks), which must see everything that is there.
    NoneButTheLock,
    Until(Instant),
    Forever,
}

impl Wait {
    /// Until `timeout` from now; `Forever` when that is past what an `Instant` holds
    /// (`Duration::MAX`).
    fn after(timeout: Duration) -> Wait {
        crate::time::deadline_in(timeout).map_or(Wait::Forever, Wait::Until)
    }

    /// Sleeps on `word` while it holds `seq`; false if the time is up.
    fn sleep(self, word: &AtomicU32, seq: u32) -> bool {
        match self {
            Wait::No | Wait::NoneButTheLock => false,
            Wait::Forever => wait::wait(word, seq, None),
            Wait::Until(deadline) => {
                Instant::now() < deadline && wait::wait(word, seq, Some(deadline))
            }
        }
    }
}

/// The internal lock, held, with the ring's true capacity (from the region's size).
struct Inside<'a> {
    s: &'a QueueState,
    region: &'a Region,
    capacity: u64,
}

impl Inside<'_> {
    /// Validates the shared words; returns (head, tail).
    fn check(&self) -> io::Result<(u64, u64)> {
        let s = self.s;
        let stored = s.capacity.load(Ordering::Relaxed);
        let max = s.max_message.load(Ordering::Relaxed);
        let (head, tail) = (
            s.head.load(Ordering::Relaxed),
            s.tail.load(Ordering::Relaxed),
        );
        let count = s.count.load(Ordering::Relaxed);
        // Every value here was read from shared memory another process can write: checked
        // arithmetic only, so a forged value is a corrupt queue, never an overflow.
        let ok = stored == self.capacity
            && max
                .checked_add(LEN_BYTES)
                .is_some_and(|m| m <= self.capacity)
            && head <= tail
            && tail - head <= self.capacity
            && (count == 0) == (head == tail)
            && count <= (tail - head) / LEN_BYTES;
        if !ok {
            return Err(invalid(format!(
                "ipc queue in {} is corrupt (capacity {stored}, head {head}, tail {tail}, count {count})",
                self.region.describe()
            )));
        }
        Ok((head, tail))
    }

    /// Writes a frame at `tail` (room checked by the caller) and publishes it.
    fn push_frame(&self, tail: u64, bytes: &[u8]) {
        let s = self.s;
        self.begin();
        self.write_at(tail, &(bytes.len() as u32).to_le_bytes());
        let half = bytes.len() / 2;
        self.write_at(tail + LEN_BYTES, &bytes[..half]);
        fault::point(CrashPoint::PutMidCopy);
        self.write_at(tail + LEN_BYTES + half as u64, &bytes[half..]);
        s.tail
            .store(tail + LEN_BYTES + bytes.len() as u64, Ordering::Relaxed);
        fault::point(CrashPoint::PutBeforeCommit);
        s.count
            .store(s.count.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        s.unfinished.store(
            s.unfinished.load(Ordering::Relaxed).saturating_add(1),
            Ordering::Relaxed,
        );
        self.commit();
        s.not_empty.fetch_add(1, Ordering::SeqCst);
    }

    /// Copies the frame at `head` into `out` and removes it. Lengths are checked first.
    fn pop_frame(&self, head: u64, tail: u64, out: &mut Vec<u8>) -> io::Result<()> {
        let s = self.s;
        let mut len = [0u8; LEN_BYTES as usize];
        if tail - head < LEN_BYTES {
            return Err(invalid("ipc queue frame header runs past the tail"));
        }
        self.read_at(head, &mut len);
        let len = u64::from(u32::from_le_bytes(len));
        if len > s.max_message.load(Ordering::Relaxed) || LEN_BYTES + len > tail - head {
            return Err(invalid(format!("ipc queue frame length {len} is corrupt")));
        }
        out.clear();
        out.resize(len as usize, 0);
        self.read_at(head + LEN_BYTES, out);
        self.begin();
        s.head.store(head + LEN_BYTES + len, Ordering::Relaxed);
        fault::point(CrashPoint::GetBeforeCommit);
        s.count.store(
            s.count.load(Ordering::Relaxed).saturating_sub(1),
            Ordering::Relaxed,
        );
        self.commit();
        s.not_full.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Copies `bytes` into the ring at position `pos`, wrapping at the end.
    fn write_at(&self, pos: u64, bytes: &[u8]) {
        let (first, second) = self.split(pos, bytes.len());
        let start = (pos % self.capacity) as usize;
        // SAFETY: `split` keeps both pieces inside the ring, which `body_bytes` bounds-checks;
        // the source is a distinct local slice; we hold the queue's lock.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ring(start, first), first);
            std::ptr::copy_nonoverlapping(bytes[first..].as_ptr(), self.ring(0, second), second);
        }
    }

    /// Copies ring bytes at position `pos` into `out`, wrapping at the end.
    fn read_at(&self, pos: u64, out: &mut [u8]) {
        let (first, second) = self.split(pos, out.len());
        let start = (pos % self.capacity) as usize;
        // SAFETY: as in `write_at`, with the roles of ring and slice swapped.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ring(start, first), out.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(self.ring(0, second), out[first..].as_mut_ptr(), second);
        }
    }

    /// How `len` bytes at `pos` split into a piece up to the ring's end and one from its start.
    fn split(&self, pos: u64, len: usize) -> (usize, usize) {
        let start = (pos % self.capacity) as usize;
        let first = len.min(self.capacity as usize - start);
        (first, len - first)
    }

    fn ring(&self, offset: usize, len: usize) -> *mut u8 {
        self.region.body_bytes(RING_OFFSET + offset, len)
    }

    fn begin(&self) {
        let (s, j) = (self.s, &self.s.journal);
        j.head
            .store(s.head.load(Ordering::Relaxed), Ordering::Relaxed);
        j.tail
            .store(s.tail.load(Ordering::Relaxed), Ordering::Relaxed);
        j.count
            .store(s.count.load(Ordering::Relaxed), Ordering::Relaxed);
        j.unfinished
            .store(s.unfinished.load(Ordering::Relaxed), Ordering::Relaxed);
        j.active.store(1, Ordering::Release);
    }

    fn commit(&self) {
        self.s.journal.active.store(0, Ordering::Release);
    }

    /// Undoes an update that a dead process left half done, and wakes everyone to re-check.
    fn roll_back(&self) {
        let (s, j) = (self.s, &self.s.journal);
        if j.active.load(Ordering::Acquire) != 0 {
            s.head
                .store(j.head.load(Ordering::Relaxed), Ordering::Relaxed);
            s.tail
                .store(j.tail.load(Ordering::Relaxed), Ordering::Relaxed);
            s.count
                .store(j.count.load(Ordering::Relaxed), Ordering::Relaxed);
            s.unfinished
                .store(j.unfinished.load(Ordering::Relaxed), Ordering::Relaxed);
            self.commit();
        }
        for word in [&s.not_empty, &s.not_full] {
            word.fetch_add(1, Ordering::SeqCst);
            wait::wake(word, u32::MAX);
        }
    }
}

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        super::unlock_or_panic(&self.s.lock);
    }
}
