//! `ipc::Queue<T>`: a bounded multi-producer multi-consumer FIFO of serde values in shared
//! memory (multiprocessing.Queue), safe against processes killed at any instant.
//!
//! A frame is a little-endian `u32` length and that many bytes of postcard-encoded value, in
//! a byte ring. Producers and consumers each have a *side* with its own robust lock, so a
//! producer and a consumer never wait for each other's lock, and only the frame's bytes and
//! the two positions cross between their cores. `layout.rs` draws the shared memory and
//! says how a put publishes, how a get frees, and how a side is repaired after a process
//! died in it. What a put or get does, in order:
//!
//! ```text
//!   put: encode -> lock put side -> room? (cached head; re-read only if it looks full)
//!        -> copy frame past tail -> count -> publish (tail) -> unlock
//!        -> a getter may sleep? (getters != 0) -> bump not_empty, futex wake
//!   get: lock get side -> a frame? (cached tail; re-read only if it looks empty)
//!        -> copy its payload out of the ring -> count -> free (head) -> unlock
//!        -> a putter may sleep? -> bump not_full, futex wake -> decode
//! ```
//!
//! **Sleeping without losing a wake-up.** A getter that finds the ring empty first spins a
//! moment outside the lock, watching `tail` (a producer is usually a few hundred
//! nanoseconds away, and a futex wake costs microseconds). Then it registers
//! (`getters += 1`), reads the `not_empty` sequence word, and looks at `tail` *again* before
//! it sleeps on the word. The producer publishes (`tail`), lets go of the put side's lock
//! and then reads `getters`. Each side's store and later load are ordered — the getter's by
//! its locked increment, the producer's by the locked instruction of the unlock between
//! them (on x86-64 a full barrier; see `sys::cpu::after_locked_instruction`) — so either the
//! getter's second look sees the new frame, or the producer sees the registration and bumps
//! the word, which the sleep then sees: the Dekker pattern, the same one futex-based mutexes
//! rely on. Putters waiting for room do the mirror image on `not_full`. (Publishing with a
//! sequentially consistent store instead, an `xchg`, made a put+get pair ~10% dearer:
//! three locked instructions per side instead of two.) Wake-ups go to *all* sleepers of a word: a woken process
//! that dies or times out before it acts then cannot strand the others.
//!
//! **Batches.** [`Queue::put_many`] encodes many values into one buffer and publishes as
//! many frames as fit with one store; [`Queue::get_many`] takes every frame present (up to a
//! limit) under one lock hold and frees them with one store. The per-message costs that are
//! not the bytes — the lock, the publication, the wake-up check — are then paid per batch.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::event::Uncount;
use super::fault::{self, CrashPoint};
use super::raw_lock::Acquired;
use super::region::{Kind, Region, invalid};
use super::wait;

mod layout;
/// The same error as green queues give.
pub use crate::sync::TaskDoneTooOften;
use layout::{Frame, Inside, LEN_BYTES, QueueState, RING_OFFSET, Which};

/// The default ring size of [`Queue::new`]-style constructors when none is given.
pub const DEFAULT_CAPACITY: usize = 1 << 20;

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

    /// The ring's size in bytes. Each message takes 4 bytes more than its encoding, and each
    /// put (a `put_many`: each batch) is padded to a whole 64-byte cache line when there is
    /// room for it, so a small message takes one line: a 1 MiB ring holds 16,384 single
    /// `u64` puts.
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
            let c = &r.body::<QueueState>().config.0;
            c.capacity.store(capacity, Ordering::Relaxed);
            c.max_message.store(max, Ordering::Relaxed);
            c.type_tag.store(type_tag::<T>(), Ordering::Relaxed);
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
    /// Reused buffers: a put or get allocates nothing in the steady state. Taken out while
    /// in use, since a put or get may park and let another green thread of this OS thread
    /// run its own.
    static SCRATCH: Cell<Frames> = const { Cell::new(Frames { bytes: Vec::new(), ends: Vec::new() }) };
}

fn take_scratch() -> Frames {
    let mut scratch = SCRATCH.with(Cell::take);
    scratch.bytes.clear();
    scratch.ends.clear();
    scratch
}

fn give_back_scratch(scratch: Frames) {
    if scratch.bytes.capacity() <= 1 << 20 && scratch.ends.capacity() <= 1 << 16 {
        SCRATCH.with(|b| b.set(scratch));
    }
}

/// Messages whose frame fits this many bytes are encoded and decoded in a buffer on the
/// stack: no thread-local, no heap.
const SMALL: usize = 256;

/// `item` as one frame in `buf` (length prefix, then postcard), if it fits; its length.
fn encode_small<T: Serialize>(item: &T, buf: &mut [u8; SMALL]) -> Option<usize> {
    let (prefix, body) = buf.split_at_mut(LEN_BYTES as usize);
    let len = postcard::to_slice(item, body).ok()?.len();
    prefix.copy_from_slice(&(len as u32).to_le_bytes());
    Some(LEN_BYTES as usize + len)
}

/// Tells queues of different item types apart (a hash of the type's name).
fn type_tag<T>() -> u64 {
    std::any::type_name::<T>()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
}

/// Why [`Queue::put_many`] stopped: how many of the values went in (in order, from the
/// first), and why the next did not.
#[derive(Debug)]
pub struct PutManyError {
    /// Values put, from the first: these are in the queue for good.
    pub put: usize,
    /// Why the next one was not.
    pub error: PutError,
}

impl fmt::Display for PutManyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} values put, then: {}", self.put, self.error)
    }
}

impl std::error::Error for PutManyError {}

impl From<PutManyError> for io::Error {
    /// The kind of the `PutError` that stopped it, carrying the `PutManyError`.
    fn from(e: PutManyError) -> io::Error {
        let kind = io::Error::from(match &e.error {
            PutError::Full => PutError::Full,
            PutError::Closed => PutError::Closed,
            PutError::TooLarge { size, max } => PutError::TooLarge {
                size: *size,
                max: *max,
            },
            PutError::Io(inner) => PutError::Io(io::Error::new(inner.kind(), inner.to_string())),
        })
        .kind();
        io::Error::new(kind, e)
    }
}

/// Frames encoded into one buffer: `bytes` holds `| len | payload |` for each, `ends[i]` is
/// where frame `i` ends.
#[derive(Default)]
struct Frames {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Frames {
    /// Encodes `items` as frames (into reused buffers); a value over `max` bytes stops it
    /// with `TooLarge`.
    fn encode<'a, T: Serialize + 'a>(
        items: impl IntoIterator<Item = &'a T>,
        max: u64,
    ) -> (Frames, Option<PutError>) {
        let Frames {
            mut bytes,
            mut ends,
        } = take_scratch();
        for item in items {
            let start = bytes.len();
            bytes.extend_from_slice(&[0; LEN_BYTES as usize]);
            let encoded = postcard::to_extend(item, std::mem::take(&mut bytes));
            let error = match encoded {
                Ok(b) => {
                    bytes = b;
                    let len = (bytes.len() - start) as u64 - LEN_BYTES;
                    if len <= max {
                        let prefix = (len as u32).to_le_bytes();
                        bytes[start..start + LEN_BYTES as usize].copy_from_slice(&prefix);
                        ends.push(bytes.len());
                        continue;
                    }
                    PutError::TooLarge {
                        size: len as usize,
                        max: max as usize,
                    }
                }
                Err(e) => PutError::Io(io::Error::new(io::ErrorKind::InvalidInput, e)),
            };
            bytes.truncate(start);
            return (Frames { bytes, ends }, Some(error));
        }
        (Frames { bytes, ends }, None)
    }

    fn view(&self) -> FrameView<'_> {
        FrameView {
            bytes: &self.bytes,
            ends: &self.ends,
        }
    }
}

/// Encoded frames, borrowed: from a [`Frames`], or one small frame on the stack.
#[derive(Clone, Copy)]
struct FrameView<'a> {
    bytes: &'a [u8],
    ends: &'a [usize],
}

impl<'a> FrameView<'a> {
    /// Where frame `i` starts in `bytes`.
    fn start(self, i: usize) -> usize {
        if i == 0 { 0 } else { self.ends[i - 1] }
    }

    /// The bytes of frame `first`.
    fn len_from(self, first: usize) -> u64 {
        (self.ends[first] - self.start(first)) as u64
    }

    /// How many whole frames, from frame `first`, fit in `room` bytes; and their bytes.
    #[inline]
    fn fitting(self, first: usize, room: u64) -> (usize, &'a [u8]) {
        if self.ends.len() == 1 {
            // One frame (a single put): it fits whole or not at all. (The scan below gives
            // the same answer; without this shortcut a put+get pair measured ~15% slower.)
            let fits = self.bytes.len() as u64 <= room;
            return (usize::from(fits), if fits { self.bytes } else { &[] });
        }
        let start = self.start(first);
        let fit = self.ends[first..]
            .iter()
            .take_while(|&&end| (end - start) as u64 <= room)
            .count();
        let end = if fit == 0 {
            start
        } else {
            self.ends[first + fit - 1]
        };
        (fit, &self.bytes[start..end])
    }
}

/// How long a getter or putter that found nothing to do watches the other side before it
/// registers to sleep (a plain thread; a green thread lets the others run instead).
const SPIN: Duration = Duration::from_micros(20);

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// A queue with a ring of `capacity` bytes in anonymous shared memory.
    ///
    /// ```
    /// let q: greenrt::ipc::Queue<Vec<u8>> = greenrt::ipc::Queue::new(64 * 1024)?;
    /// q.put(&vec![1, 2, 3])?;
    /// assert_eq!(q.get()?, [1, 2, 3]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(capacity: usize) -> io::Result<Queue<T>> {
        QueueBuilder::new().capacity(capacity).build()
    }

    /// Creates the named queue `name` with a ring of `capacity` bytes.
    pub fn create(name: &str, capacity: usize) -> io::Result<Queue<T>> {
        QueueBuilder::new().capacity(capacity).create(name)
    }

    /// Opens the named queue `name`, which must carry items of this `T`.
    ///
    /// ```
    /// use greenrt::ipc::Queue;
    /// let name = format!("doc-queue-{}", std::process::id());
    /// let created: Queue<u32> = Queue::create(&name, 4096)?; // removed when dropped
    /// let opened: Queue<u32> = Queue::open(&name)?; // e.g. in an unrelated process
    /// created.put(&5)?;
    /// assert_eq!(opened.get()?, 5);
    /// assert!(Queue::<String>::open(&name).is_err()); // another item type: InvalidData
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open(name: &str) -> io::Result<Queue<T>> {
        let q = Queue::wrap(Region::open(name, Kind::Queue, RING_OFFSET)?);
        q.enter(Which::Get, Wait::Forever)?
            .expect("no deadline")
            .check_config()?;
        if q.state().config.0.type_tag.load(Ordering::Relaxed) != type_tag::<T>() {
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

    /// Starts taking the ring lines the next `len` bytes will go to away from the consumer
    /// that last read them, before the put locks anything (a hint: the tail is read without
    /// the lock, and may be stale).
    fn prefetch_tail(&self, len: usize) {
        let capacity = layout::ring_capacity(&self.region);
        let ring = self.region.body_bytes(RING_OFFSET, capacity as usize);
        let tail = self.state().put.0.mine.load(Ordering::Relaxed);
        let start = layout::ring_offset(tail, capacity);
        let end = (start + len).min(capacity as usize);
        let mut line = start & !63;
        while line < end {
            // `line` is inside the ring: below `end`, at most its length.
            crate::sys::cpu::prefetch_for_write(ring.wrapping_add(line));
            line += 64;
        }
    }

    fn max_message(&self) -> u64 {
        self.state().config.0.max_message.load(Ordering::Relaxed)
    }

    /// Puts `item` at the back, waiting for room as long as needed.
    pub fn put(&self, item: &T) -> Result<(), PutError> {
        self.put_until(item, Wait::Forever)
    }

    /// Puts `item`, waiting at most `timeout` for room (`PutError::Full` after).
    ///
    /// ```
    /// use greenrt::ipc::{PutError, Queue};
    /// use std::time::Duration;
    /// let q: Queue<u64> = Queue::new(64)?; // one line: room for one small put
    /// q.put(&1)?;
    /// let full = q.put_timeout(&2, Duration::from_millis(10));
    /// assert!(matches!(full, Err(PutError::Full)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<(), PutError> {
        self.put_until(item, Wait::after(timeout))
    }

    /// Puts `item` only if there is room now (Python's `put_nowait`).
    ///
    /// ```
    /// use greenrt::ipc::{PutError, Queue};
    /// let q: Queue<u64> = Queue::new(64)?;
    /// q.try_put(&1)?;
    /// assert!(matches!(q.try_put(&2), Err(PutError::Full)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_put(&self, item: &T) -> Result<(), PutError> {
        self.put_until(item, Wait::No)
    }

    /// Puts `item` if there is room, waiting for the internal lock but not for room.
    pub(crate) fn put_if_room(&self, item: &T) -> Result<(), PutError> {
        self.put_until(item, Wait::NoneButTheLock)
    }

    /// Puts every value of `items`, in order, waiting for room as needed: as many frames as
    /// fit are published at once, so a batch pays the lock, the publication and the wake-up
    /// check once per ring-full instead of once per value. On an error, says how many went in.
    ///
    /// ```
    /// let q: greenrt::ipc::Queue<u32> = greenrt::ipc::Queue::new(4096)?;
    /// q.put_many(&[1, 2, 3])?;
    /// assert_eq!(q.get_many(10)?, [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_many(&self, items: &[T]) -> Result<(), PutManyError> {
        let (frames, bad) = Frames::encode(items, self.max_message());
        let mut put = 0;
        let mut outcome = Ok(());
        while put < frames.ends.len() {
            match self.put_frames(frames.view(), put, Wait::Forever) {
                Ok(n) => put += n,
                Err(error) => {
                    outcome = Err(PutManyError { put, error });
                    break;
                }
            }
        }
        give_back_scratch(frames);
        match (outcome, bad) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(error)) => Err(PutManyError { put, error }),
            (Ok(()), None) => Ok(()),
        }
    }

    fn put_until(&self, item: &T, wait: Wait) -> Result<(), PutError> {
        let mut small = [0u8; SMALL];
        if let Some(len) = encode_small(item, &mut small)
            && (len as u64 - LEN_BYTES) <= self.max_message()
        {
            self.prefetch_tail(len);
            let view = FrameView {
                bytes: &small[..len],
                ends: &[len],
            };
            return self.put_frames(view, 0, wait).map(|_| ());
        }
        let (frames, bad) = Frames::encode([item], self.max_message());
        let result = match bad {
            Some(error) => Err(error),
            None => self.put_frames(frames.view(), 0, wait).map(|_| ()),
        };
        give_back_scratch(frames);
        result
    }

    /// Publishes frames from `first` on — as many as fit, at least one — waiting for room as
    /// `wait` allows. Returns how many.
    fn put_frames(
        &self,
        frames: FrameView<'_>,
        first: usize,
        wait: Wait,
    ) -> Result<usize, PutError> {
        let s = self.state();
        let mut spin = Spin::new(wait);
        let put = loop {
            let next = {
                let Some(died) = self.lock_side(Which::Put, wait)? else {
                    return Err(PutError::Full); // the lock could not be had in time
                };
                let inside = Inside::new(s, &self.region, Which::Put, died);
                let tail = inside.check_config()?;
                if s.sleepers.0.closed.load(Ordering::SeqCst) != 0 {
                    return Err(PutError::Closed);
                }
                let room = |head: u64| inside.capacity - (tail - head);
                let mut free = room(inside.seen_other(tail)?);
                let (mut fit, mut bytes) = frames.fitting(first, free);
                if fit == 0 {
                    free = room(inside.refresh_other(tail)?);
                    (fit, bytes) = frames.fitting(first, free);
                }
                if fit > 0 {
                    let last = frames.start(first + fit - 1) - frames.start(first);
                    inside.push_frames(tail, bytes, fit as u64, last, free);
                    break fit;
                }
                if spin.allowed() {
                    Next::Spin(room_target(tail, inside.capacity, frames.len_from(first)))
                } else {
                    s.sleepers.0.putters.fetch_add(1, Ordering::SeqCst);
                    let seq = s.not_full.0.load(Ordering::SeqCst);
                    // Look again after registering: room, or a close, since the first look.
                    let closed = s.sleepers.0.closed.load(Ordering::SeqCst) != 0;
                    if closed || frames.fitting(first, room(inside.refresh_other(tail)?)).0 > 0 {
                        drop(Uncount(&s.sleepers.0.putters)); // no sleep: look again
                        continue;
                    }
                    Next::Sleep(seq)
                }
            };
            match next {
                // The consumers' lock is not ours: watch their head move, holding nothing.
                // Until a good part of the ring is free, not just this frame's bytes: a
                // producer that re-reads `head` after every get takes its line away from the
                // consumer at every get, and the consumer's next store waits to get it back.
                Next::Spin(target) => spin.watch(|| s.head.0.load(Ordering::Acquire) >= target),
                Next::Sleep(seq) => {
                    let _count = Uncount(&s.sleepers.0.putters);
                    if !wait.sleep(&s.not_full.0, seq) {
                        return Err(PutError::Full);
                    }
                }
            }
        };
        // `tail` was published before the unlock's locked instruction (see the module docs).
        crate::sys::cpu::after_locked_instruction();
        if s.sleepers.0.getters.load(Ordering::SeqCst) != 0 {
            s.not_empty.0.fetch_add(1, Ordering::SeqCst);
            wait::wake(&s.not_empty.0, u32::MAX);
        }
        Ok(put)
    }

    /// Takes the front item, waiting as long as needed.
    pub fn get(&self) -> Result<T, GetError> {
        self.get_until(Wait::Forever)
    }

    /// Takes the front item, waiting at most `timeout` (`GetError::Empty` after).
    ///
    /// ```
    /// use greenrt::ipc::{GetError, Queue};
    /// use std::time::Duration;
    /// let q: Queue<u64> = Queue::new(4096)?;
    /// let empty = q.get_timeout(Duration::from_millis(10));
    /// assert!(matches!(empty, Err(GetError::Empty)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_until(Wait::after(timeout))
    }

    /// Takes the front item only if there is one now (Python's `get_nowait`). Never blocks:
    /// while another process is inside the queue's get side (or died there, not yet
    /// repaired) the answer is `Empty`.
    ///
    /// ```
    /// use greenrt::ipc::{GetError, Queue};
    /// let q: Queue<u64> = Queue::new(4096)?;
    /// assert!(matches!(q.try_get(), Err(GetError::Empty)));
    /// q.put(&9)?;
    /// assert_eq!(q.try_get()?, 9);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_get(&self) -> Result<T, GetError> {
        self.get_until(Wait::No)
    }

    /// Takes the front item if there is one, waiting for the internal lock (and its repair
    /// after a dead holder) but not for an item: a drain that sees everything.
    pub(crate) fn get_present(&self) -> Result<T, GetError> {
        self.get_until(Wait::NoneButTheLock)
    }

    /// Takes up to `max` items (at least one, waiting for it as long as needed) under one
    /// lock hold, freeing their bytes with one store. A message that cannot be decoded is
    /// never skipped: the items before it are returned, and the next call returns its error.
    pub fn get_many(&self, max: usize) -> Result<Vec<T>, GetError> {
        let mut out = Vec::new();
        let mut take = |payload: &[u8]| {
            out.push(decode::<T>(payload)?);
            Ok(())
        };
        self.take_frames(Wait::Forever, |inside, head, tail| {
            take_present(inside, head, tail, max.max(1), &mut take)
        })??;
        Ok(out)
    }

    fn get_until(&self, wait: Wait) -> Result<T, GetError> {
        // The payload is copied out under the lock and decoded after it is let go: the lock
        // is held for a copy, not for the type's `Deserialize`, and the value is decoded
        // straight into what is returned (a value moved through `Option`s and `?`s is copied
        // each time; 64-byte messages spent ~40 instructions a get on such copies).
        let mut out = PayloadBuf::new();
        let payload = self.take_frames(wait, |inside, head, tail| {
            take_front(inside, head, tail, &mut out)
        })??;
        decode::<T>(payload) // the message is consumed either way, as a single get is
    }

    /// Waits, as `wait` allows, until frames are present, and hands the get side (held) and
    /// the published span `head..tail` to `take`, which takes what it wants and frees it.
    fn take_frames<R>(
        &self,
        wait: Wait,
        take: impl FnOnce(&Inside<'_>, u64, u64) -> R,
    ) -> Result<R, GetError> {
        let mut take = Some(take);
        let s = self.state();
        let mut spin = Spin::new(wait);
        let outcome = loop {
            let next = {
                let Some(died) = self.lock_side(Which::Get, wait)? else {
                    return Err(GetError::Empty); // the lock could not be had in time
                };
                let inside = Inside::new(s, &self.region, Which::Get, died);
                let head = inside.check_config()?;
                let mut tail = inside.seen_other(head)?;
                if tail == head {
                    tail = inside.refresh_other(head)?;
                }
                if tail > head {
                    let take = take.take().expect("the loop ends at the first take");
                    break take(&inside, head, tail);
                }
                if s.sleepers.0.closed.load(Ordering::SeqCst) != 0 {
                    if inside.refresh_other(head)? == head {
                        return Err(GetError::Closed);
                    }
                    continue; // a last put landed before the close
                }
                if spin.allowed() {
                    Next::Spin(head)
                } else {
                    fault::point(CrashPoint::GetBeforeSleep);
                    s.sleepers.0.getters.fetch_add(1, Ordering::SeqCst);
                    let seq = s.not_empty.0.load(Ordering::SeqCst);
                    // Look again after registering: a frame, or a close (which bumped the
                    // word before we read it, and woke nobody), since the first look.
                    let closed = s.sleepers.0.closed.load(Ordering::SeqCst) != 0;
                    if closed || inside.refresh_other(head)? != head {
                        drop(Uncount(&s.sleepers.0.getters)); // no sleep: look again
                        continue;
                    }
                    Next::Sleep(seq)
                }
            };
            match next {
                // The producers' lock is not ours: watch their tail move, holding nothing.
                Next::Spin(head) => spin.watch(|| {
                    s.tail.0.load(Ordering::Acquire) != head
                        || s.sleepers.0.closed.load(Ordering::Relaxed) != 0
                }),
                Next::Sleep(seq) => {
                    let _count = Uncount(&s.sleepers.0.getters);
                    if !wait.sleep(&s.not_empty.0, seq) {
                        return Err(GetError::Empty);
                    }
                }
            }
        };
        // `head` was freed before the unlock's locked instruction (see the module docs).
        crate::sys::cpu::after_locked_instruction();
        if s.sleepers.0.putters.load(Ordering::SeqCst) != 0 {
            s.not_full.0.fetch_add(1, Ordering::SeqCst);
            wait::wake(&s.not_full.0, u32::MAX);
        }
        Ok(outcome)
    }

    /// Messages in the queue now (a snapshot).
    ///
    /// ```
    /// let q: greenrt::ipc::Queue<u8> = greenrt::ipc::Queue::new(4096)?;
    /// q.put_many(&[1, 2, 3])?;
    /// assert_eq!((q.len(), q.qsize(), q.is_empty()), (3, 3, false));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        let s = self.state();
        let gets = s.get.0.count.load(Ordering::Acquire);
        let puts = s.put.0.count.load(Ordering::Acquire);
        puts.saturating_sub(gets) as usize
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
    ///
    /// ```
    /// let q: greenrt::ipc::Queue<u8> = greenrt::ipc::Queue::new(4096)?;
    /// q.put_many(&[1, 2, 3])?;
    /// let now: Vec<u8> = q.try_iter().collect::<std::io::Result<_>>()?;
    /// assert_eq!(now, [1, 2, 3]); // and it ends there, queue open and empty
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { queue: self }
    }

    /// Marks one item taken by `get` as processed (Python's `task_done`).
    ///
    /// # Errors
    /// More calls than items put: `InvalidInput`, carrying [`TaskDoneTooOften`] (Python's
    /// `ValueError`; find it with `get_ref().downcast_ref()`).
    ///
    /// ```
    /// use greenrt::ipc::{Queue, TaskDoneTooOften};
    /// let q: Queue<u32> = Queue::new(4096)?;
    /// q.put(&1)?;
    /// q.get()?;
    /// q.task_done()?;
    /// q.join()?; // every item put is done: returns at once
    /// let e = q.task_done().unwrap_err(); // one call too many
    /// assert!(e.get_ref().unwrap().downcast_ref::<TaskDoneTooOften>().is_some());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn task_done(&self) -> io::Result<()> {
        let s = self.state();
        let d = &s.done.0;
        let mut done = d.done.load(Ordering::Acquire);
        loop {
            let puts = s.put.0.count.load(Ordering::Acquire);
            if done >= puts {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    TaskDoneTooOften,
                ));
            }
            match d
                .done
                .compare_exchange(done, done + 1, Ordering::SeqCst, Ordering::Acquire)
            {
                Ok(_) if done + 1 == puts => break,
                Ok(_) => return Ok(()),
                Err(now) => done = now,
            }
        }
        d.all_done.fetch_add(1, Ordering::SeqCst);
        if s.sleepers.0.joiners.load(Ordering::SeqCst) != 0 {
            wait::wake(&d.all_done, u32::MAX);
        }
        Ok(())
    }

    /// Waits until every item put has been marked with `task_done`.
    pub fn join(&self) -> io::Result<()> {
        self.join_until(Wait::Forever).map(|_| ())
    }

    /// Like [`join`](Queue::join) for at most `timeout`; false if items are still unfinished.
    ///
    /// ```
    /// use std::time::Duration;
    /// let q: greenrt::ipc::Queue<u32> = greenrt::ipc::Queue::new(4096)?;
    /// q.put(&1)?; // never marked done
    /// assert!(!q.join_timeout(Duration::from_millis(10))?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> io::Result<bool> {
        self.join_until(Wait::after(timeout))
    }

    fn join_until(&self, wait: Wait) -> io::Result<bool> {
        let s = self.state();
        let unfinished = || {
            let done = s.done.0.done.load(Ordering::SeqCst);
            s.put.0.count.load(Ordering::SeqCst) > done
        };
        loop {
            if !unfinished() {
                return Ok(true);
            }
            s.sleepers.0.joiners.fetch_add(1, Ordering::SeqCst);
            let _count = Uncount(&s.sleepers.0.joiners);
            let seq = s.done.0.all_done.load(Ordering::SeqCst);
            if !unfinished() {
                return Ok(true);
            }
            if !wait.sleep(&s.done.0.all_done, seq) {
                return Ok(false);
            }
        }
    }

    /// Closes the queue for everyone: puts fail with `Closed`; gets drain what is left, then
    /// fail with `Closed`. Every waiter wakes.
    ///
    /// ```
    /// use greenrt::ipc::{GetError, PutError, Queue};
    /// let q: Queue<u32> = Queue::new(4096)?;
    /// q.put(&1)?;
    /// q.close()?;
    /// assert!(q.is_closed());
    /// assert!(matches!(q.put(&2), Err(PutError::Closed)));
    /// assert_eq!(q.get()?, 1); // what was in is still taken
    /// assert!(matches!(q.get(), Err(GetError::Closed)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn close(&self) -> io::Result<()> {
        let s = self.state();
        // Under the put side's lock: no put is half done, and every later one sees `closed`.
        let inside = self.enter(Which::Put, Wait::Forever)?.expect("no deadline");
        s.sleepers.0.closed.store(1, Ordering::SeqCst);
        drop(inside);
        for word in [&s.not_empty.0, &s.not_full.0] {
            word.fetch_add(1, Ordering::SeqCst);
            wait::wake(word, u32::MAX);
        }
        Ok(())
    }

    /// True once [`close`](Queue::close) was called.
    pub fn is_closed(&self) -> bool {
        self.state().sleepers.0.closed.load(Ordering::Relaxed) != 0
    }

    /// Takes one side's lock within the caller's time, repairing the update of a process that
    /// died holding it: `None` when the lock could not be had by then — its holder may be
    /// stopped (SIGSTOP) or starved — so a `try_*` call never blocks and a timed call keeps
    /// its deadline whatever another process does.
    fn enter(&self, which: Which, wait: Wait) -> io::Result<Option<Inside<'_>>> {
        let Some(died) = self.lock_side(which, wait)? else {
            return Ok(None);
        };
        Ok(Some(Inside::new(self.state(), &self.region, which, died)))
    }

    /// [`enter`](Queue::enter)'s first half: the lock, and whether its holder had died. The
    /// hot paths build their [`Inside`] themselves from it, in place: returned inside a
    /// `Result<Option<_>>` it would be copied through the stack on every call.
    #[inline(always)]
    fn lock_side(&self, which: Which, wait: Wait) -> io::Result<Option<bool>> {
        let s = self.state();
        let lock = match which {
            Which::Put => &s.put.0.lock,
            Which::Get => &s.get.0.lock,
        };
        let acquired = match wait {
            // The clock is read only if the lock is not free.
            Wait::No => match lock.try_lock()? {
                Some(how) => Some(how),
                None => lock.lock(Some(Instant::now()))?,
            },
            Wait::Until(at) => lock.lock(Some(at))?,
            Wait::Forever | Wait::NoneButTheLock => lock.lock(None)?,
        };
        Ok(acquired.map(|how| how == Acquired::OwnerDied))
    }
}

/// Takes up to `max` frames present between `head` and `tail`, handing each payload to
/// `take`, and frees what was taken (see [`Queue::take_frames`]).
fn take_present(
    inside: &Inside<'_>,
    head: u64,
    tail: u64,
    max: usize,
    take: &mut impl FnMut(&[u8]) -> Result<(), GetError>,
) -> Result<(), GetError> {
    let (mut pos, mut taken) = (head, 0);
    let mut outcome = Ok(());
    let mut out = PayloadBuf::new();
    while pos < tail && taken < max {
        let Frame { len, next } = inside.frame_at(pos, tail)?;
        let payload = out.copy_out(inside, pos, len as usize);
        if let Err(e) = take(payload) {
            if taken == 0 {
                (pos, taken) = (next, 1); // consumed, as a single get would
                outcome = Err(e);
            }
            break;
        }
        pos = next;
        taken += 1;
    }
    inside.free_frames(head, pos, taken as u64);
    outcome
}

/// Takes the frame at `head` (the front; `tail` is published): copies its payload into
/// `out`, frees the frame, and returns the payload.
#[inline]
fn take_front<'b>(
    inside: &Inside<'_>,
    head: u64,
    tail: u64,
    out: &'b mut PayloadBuf,
) -> Result<&'b [u8], GetError> {
    let Frame { len, next } = inside.frame_at(head, tail)?;
    let payload = out.copy_out(inside, head, len as usize);
    inside.free_frames(head, next, 1);
    Ok(payload)
}

/// Where a get copies a payload out of the ring: a stack buffer nobody zeroes for a small
/// one, a `Vec` for a larger one.
struct PayloadBuf {
    small: [MaybeUninit<u8>; SMALL],
    large: Vec<u8>,
}

impl PayloadBuf {
    #[inline]
    fn new() -> PayloadBuf {
        PayloadBuf {
            small: [MaybeUninit::uninit(); SMALL],
            large: Vec::new(),
        }
    }

    /// Copies the `len`-byte payload of the frame at `pos` in; returns it.
    #[inline]
    fn copy_out(&mut self, inside: &Inside<'_>, pos: u64, len: usize) -> &[u8] {
        if len <= SMALL {
            return inside.copy_payload(pos, &mut self.small[..len]);
        }
        self.large.clear();
        self.large.reserve(len);
        inside.copy_payload(pos, &mut self.large.spare_capacity_mut()[..len])
    }
}

/// A message's payload as a `T`.
fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, GetError> {
    postcard::from_bytes(payload).map_err(|e| {
        GetError::Io(invalid(format!(
            "ipc queue message is not a valid {}: {e}",
            std::any::type_name::<T>()
        )))
    })
}

/// The head a full ring's producer waits for before it looks again: its next frame's
/// `bytes` and an eighth of the ring free (see [`Queue::put_frames`]).
fn room_target(tail: u64, capacity: u64, bytes: u64) -> u64 {
    (tail + bytes.max(capacity / 8).min(capacity)).saturating_sub(capacity)
}

/// What a put or get that found nothing to do does next.
enum Next {
    /// Watch the other side's position (it was this) for a moment, then look again.
    Spin(u64),
    /// Sleep on the sequence word while it holds this.
    Sleep(u32),
}

/// The brief watch of the other side before registering to sleep (see the module docs):
/// once per call, for calls that may wait, on plain threads — a green thread with others to
/// run lets them run instead (`ipc::wait` spins a little itself).
struct Spin {
    wait: Wait,
    done: bool,
}

impl Spin {
    fn new(wait: Wait) -> Spin {
        Spin { wait, done: false }
    }

    /// True the first time, if this call may spin at all.
    fn allowed(&mut self) -> bool {
        if self.done {
            return false;
        }
        self.done = true;
        matches!(self.wait, Wait::Forever | Wait::Until(_)) && !crate::hub::others_could_run()
    }

    /// Watches with `changed` until it says so or [`SPIN`] is over.
    fn watch(&self, mut changed: impl FnMut() -> bool) {
        let until = Instant::now() + SPIN;
        loop {
            for _ in 0..64 {
                if changed() {
                    return;
                }
                std::hint::spin_loop();
            }
            if Instant::now() >= until {
                return;
            }
        }
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
