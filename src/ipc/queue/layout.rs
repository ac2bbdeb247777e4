//! The queue's shared memory: two *sides*, each with its own lock, and the byte ring between
//! them.
//!
//! ```text
//!   line 0     config: capacity  max_message  type_tag                    (read only)
//!   lines 1-2  put side: lock  count (puts)  seen (head)  journal     (producers only)
//!   line 3     tail                                  (written by producers, read by both)
//!   lines 4-5  get side: lock  count (gets)  seen (tail)  journal     (consumers only)
//!   line 6     head                                  (written by consumers, read by both)
//!   line 7     not_empty          (bumped only when a getter may sleep)
//!   line 8     not_full           (bumped only when a putter may sleep)
//!   line 9     closed  getters  putters  joiners   (written when someone sleeps or closes)
//!   line 10    done (task_done calls)  all_done
//!   then     the ring: | len u32 | payload | len u32 | payload | pad to a line | len ...
//!                       ^head (get.pos)                                          ^tail (put.pos)
//! ```
//!
//! **Why two sides.** With one lock for everything, a producer and a consumer on two cores
//! pass the lock's cache line back and forth on every message, with the words it guards. Here
//! producers only ever lock the put side and consumers the get side: between one producer and
//! one consumer each lock stays in its own core's cache. What crosses is what must: the
//! frame's bytes, and the other side's position — and even that only when the cached copy
//! (`seen`) says the ring is full (producer) or empty (consumer). Each group of words has a
//! cache line of its own, so a write to one does not evict the others (`Padded`).
//!
//! **Publication.** A put writes its frame past `tail`, where no consumer looks, counts it,
//! and then *publishes* it with one store to `put.pos` (release); a get copies the frame at
//! `head` out, counts it, and then *frees* it with one store to `get.pos`. Those two stores
//! are the only moments the other side can see, so a frame is never read torn nor freed twice.
//!
//! **Publications end on a cache line.** Frames packed end to end would put the start of a
//! producer's next frame in the line that holds the end of the frame a consumer is reading:
//! that line then crosses between the cores two or three times per message, and each crossing
//! stalls the next locked instruction of the side that waits for it. So when the ring is cut
//! in whole 64-byte lines (its capacity a multiple of 64) and there is room, a put pads its
//! publication to the next line and marks its last frame's length prefix (bit 31); a consumer
//! that reads the mark skips to the line. A batch pads once. Measured in `ipc_compare`: 64-byte
//! messages between two pinned processes went from ~6 to ~17 M/s in a stripped-down copy of
//! the protocol from this alone (NOTES §10).
//!
//! **Kill -9 at any instant.** Each side's update runs under that side's journal: old `pos`
//! and `count` saved, `active = 1`, update, `active = 0`. The next process to take a lock
//! whose holder died (told `OwnerDied`) repairs the side: if `pos` did not move, nothing was
//! published (or freed), and `count` goes back to the journal's; if `pos` moved, the other
//! side may already have acted on it, so the update is completed instead (`count` = the
//! journal's + 1). The crash points of `ipc::fault` sit just before the publishing store: a
//! put killed there never appears, a get killed there leaves its message for the next getter.
//!
//! **Untrusted memory.** Positions, lengths and counts come from memory any process can
//! write. Every operation checks `head <= tail`, `tail - head <= capacity` and each frame's
//! length against `max_message` and the bytes published, and the capacity against the
//! region's size: a corrupt queue is `InvalidData`, never a wild copy.

use std::io;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::super::fault::{self, CrashPoint};
use super::super::raw_lock::RawLock;
use super::super::region::{Region, SharedLayout, invalid};

/// Bytes of a frame's length prefix.
pub(super) const LEN_BYTES: u64 = 4;

/// Set in the length prefix of a publication's last frame when padding follows it up to
/// the next cache line (see the module docs).
const LINE_END: u32 = 1 << 31;

/// A cache line: publications end on one, so a producer's next frame never shares a line
/// with the one a consumer is reading.
const LINE: u64 = 64;

/// A frame found in the ring.
pub(super) struct Frame {
    /// Payload bytes.
    pub(super) len: u64,
    /// Where the next frame starts (after the padding, if this one ends a publication).
    pub(super) next: u64,
}

/// One cache line (or more) of its own for `T`.
#[repr(C, align(64))]
pub(super) struct Padded<T>(pub(super) T);

#[repr(C)]
pub(super) struct Config {
    pub(super) capacity: AtomicU64,
    pub(super) max_message: AtomicU64,
    pub(super) type_tag: AtomicU64,
}

/// A side's update in flight: what to repair if its process dies in it.
#[repr(C)]
pub(super) struct Journal {
    active: AtomicU32,
    /// The side's position before the update.
    pos: AtomicU64,
    /// Its count before and after the update.
    count_before: AtomicU64,
    count_after: AtomicU64,
}

/// The producers' side or the consumers' side: what only that side's lock holder writes,
/// apart from its position (on a line of its own, which the other side reads).
#[repr(C)]
pub(super) struct Side {
    pub(super) lock: RawLock,
    /// This side's position as its last holder left it: the same value as `tail` or `head`,
    /// read from here, where the other side's reads do not take the line away. Checked
    /// against the shared one after a repair (a holder may die between the two stores).
    pub(super) mine: AtomicU64,
    /// Messages put (put side) or taken (get side), ever.
    pub(super) count: AtomicU64,
    /// The other side's position as this side last read it: a lower bound of the real one.
    pub(super) seen: AtomicU64,
    journal: Journal,
}

#[repr(C)]
pub(super) struct Sleepers {
    pub(super) closed: AtomicU32,
    /// How many may sleep on `not_empty` / `not_full` / `all_done` (0: skip the wake).
    pub(super) getters: AtomicU32,
    pub(super) putters: AtomicU32,
    pub(super) joiners: AtomicU32,
}

#[repr(C)]
pub(super) struct Done {
    /// `task_done` calls, ever: `put.count - done` items are unfinished.
    pub(super) done: AtomicU64,
    /// Bumped when the last unfinished item is done.
    pub(super) all_done: AtomicU32,
}

#[repr(C)]
pub(super) struct QueueState {
    pub(super) config: Padded<Config>,
    pub(super) put: Padded<Side>,
    /// The tail: byte position after the last published frame; grows forever (index =
    /// pos % capacity).
    pub(super) tail: Padded<AtomicU64>,
    pub(super) get: Padded<Side>,
    /// The head: byte position of the oldest frame not yet freed.
    pub(super) head: Padded<AtomicU64>,
    pub(super) not_empty: Padded<AtomicU32>,
    pub(super) not_full: Padded<AtomicU32>,
    pub(super) sleepers: Padded<Sleepers>,
    pub(super) done: Padded<Done>,
}

// SAFETY: repr(C) throughout, atomics only (Padded is repr(C) with one field).
unsafe impl SharedLayout for QueueState {}

/// Where the ring starts in the body.
pub(super) const RING_OFFSET: usize = size_of::<QueueState>().next_multiple_of(64);

/// The ring's true capacity: what the region's size leaves after the state (the stored
/// `capacity` word is untrusted and checked against it).
#[inline]
pub(super) fn ring_capacity(region: &Region) -> u64 {
    (region.body_len() - RING_OFFSET) as u64
}

/// Where position `pos` lies in a ring of `capacity` bytes. A power-of-two ring (the usual
/// case) masks instead of dividing: a 64-bit `div` costs as much as the rest of a small put.
#[inline]
pub(super) fn ring_offset(pos: u64, capacity: u64) -> usize {
    if capacity.is_power_of_two() {
        (pos & (capacity - 1)) as usize
    } else {
        (pos % capacity) as usize
    }
}

/// Which side an [`Inside`] holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Which {
    Put,
    Get,
}

/// One side's lock, held, with the ring's true capacity (from the region's size).
pub(super) struct Inside<'a> {
    pub(super) s: &'a QueueState,
    region: &'a Region,
    pub(super) capacity: u64,
    which: Which,
    /// This side's words, and its position (the tail for producers, the head for
    /// consumers), and the other side's: resolved once here, not at every use (derived from
    /// `which` at each use instead, a put+get pair measured up to 10% slower).
    side: &'a Side,
    pos: &'a AtomicU64,
    other_pos: &'a AtomicU64,
    /// The ring's first byte; `capacity` bytes from it are inside the mapping.
    ring: *mut u8,
}

impl<'a> Inside<'a> {
    /// Wraps a lock just taken on side `which`; `owner_died` repairs that side first.
    #[inline]
    pub(super) fn new(
        s: &'a QueueState,
        region: &'a Region,
        which: Which,
        owner_died: bool,
    ) -> Inside<'a> {
        if owner_died {
            Inside::repair_side(s, region, which);
        }
        Inside::build(s, region, which)
    }

    /// The `Inside` of side `which`, its lock held.
    #[inline(always)]
    fn build(s: &'a QueueState, region: &'a Region, which: Which) -> Inside<'a> {
        let capacity = ring_capacity(region);
        let (side, pos, other_pos) = match which {
            Which::Put => (&s.put.0, &s.tail.0, &s.head.0),
            Which::Get => (&s.get.0, &s.head.0, &s.tail.0),
        };
        Inside {
            s,
            region,
            capacity,
            which,
            side,
            pos,
            other_pos,
            ring: region.body_bytes(RING_OFFSET, capacity as usize),
        }
    }

    /// Repairs side `which` (its lock just taken from a dead holder) through an `Inside`
    /// of its own that keeps the lock when it goes. Out of line, before the caller's
    /// `Inside` is built: with one value built on two paths (repaired or not), the common
    /// path copied it through the stack on every put and get (~30 instructions).
    #[cold]
    #[inline(never)]
    fn repair_side(s: &'a QueueState, region: &'a Region, which: Which) {
        let inside = std::mem::ManuallyDrop::new(Inside::build(s, region, which));
        inside.repair();
    }

    /// Validates the configuration words; returns this side's position.
    #[inline]
    pub(super) fn check_config(&self) -> io::Result<u64> {
        let c = &self.s.config.0;
        let stored = c.capacity.load(Ordering::Relaxed);
        let max = c.max_message.load(Ordering::Relaxed);
        let ok = stored == self.capacity
            && max
                .checked_add(LEN_BYTES)
                .is_some_and(|m| m <= self.capacity);
        if !ok {
            return Err(self.corrupt(format!("capacity {stored}, max message {max}")));
        }
        Ok(self.side.mine.load(Ordering::Relaxed))
    }

    /// Reads the other side's position afresh (acquire: the bytes it published or freed are
    /// visible after; SeqCst: ordered after a sleeper's registration), remembers it in
    /// `seen`, and checks it against ours.
    #[inline]
    pub(super) fn refresh_other(&self, mine: u64) -> io::Result<u64> {
        let other = self.other_pos.load(Ordering::SeqCst);
        self.side.seen.store(other, Ordering::Relaxed);
        self.check_span(mine, other)?;
        Ok(other)
    }

    /// The other side's position as last seen (no cross-core read); checked like a fresh one.
    #[inline]
    pub(super) fn seen_other(&self, mine: u64) -> io::Result<u64> {
        let other = self.side.seen.load(Ordering::Relaxed);
        self.check_span(mine, other)?;
        Ok(other)
    }

    /// `head <= tail <= head + capacity`, whichever of the two `mine` is.
    #[inline]
    fn check_span(&self, mine: u64, other: u64) -> io::Result<()> {
        let (head, tail) = match self.which {
            Which::Put => (other, mine),
            Which::Get => (mine, other),
        };
        // Positions are untrusted: room is left above them for a whole ring, so no sum
        // the operations make can overflow.
        if head <= tail && tail - head <= self.capacity && tail <= u64::MAX - self.capacity {
            return Ok(());
        }
        Err(self.corrupt(format!("head {head}, tail {tail}")))
    }

    fn corrupt(&self, what: String) -> io::Error {
        invalid(format!(
            "ipc queue in {} is corrupt ({what})",
            self.region.describe()
        ))
    }

    /// Writes the frames of `bytes` (each already prefixed with its length) at `tail`, counts
    /// `frames` messages, and publishes them, ending the publication on a cache line if `room`
    /// (free bytes at `tail`) allows. `last` is where the last frame starts in `bytes`. Room
    /// for the frames was checked by the caller.
    #[inline]
    pub(super) fn push_frames(&self, tail: u64, bytes: &[u8], frames: u64, last: usize, room: u64) {
        let side = self.side;
        if fault::armed(CrashPoint::PutMidCopy) {
            let half = bytes.len() / 2; // a crash test: die with half the bytes copied
            self.write_at(tail, &bytes[..half]);
            fault::point(CrashPoint::PutMidCopy);
            self.write_at(tail + half as u64, &bytes[half..]);
        } else {
            self.write_at(tail, bytes);
        }
        let end = tail + bytes.len() as u64;
        let new_tail = self.line_end(tail, end, room);
        if new_tail != end {
            let header: [u8; 4] = bytes[last..last + 4].try_into().expect("a length prefix");
            self.write_u32_at(tail + last as u64, u32::from_le_bytes(header) | LINE_END);
        }
        let count = side.count.load(Ordering::Relaxed);
        let after = count.saturating_add(frames); // an untrusted count must not overflow
        self.begin(tail, count, after);
        side.count.store(after, Ordering::Relaxed);
        fault::point(CrashPoint::PutBeforeCommit);
        // Published. Ordered before the load of `getters` that follows by the unlock's locked
        // instruction between them (see mod.rs).
        self.pos.store(new_tail, Ordering::Release);
        side.mine.store(new_tail, Ordering::Relaxed);
        self.commit();
    }

    /// Where a publication from `tail` to `end` ends: `end` rounded up to the next cache line
    /// when the ring is cut in whole lines and the padding fits in `room` (see the module
    /// docs); else `end`.
    #[inline]
    fn line_end(&self, tail: u64, end: u64, room: u64) -> u64 {
        let padded = end.next_multiple_of(LINE);
        if self.capacity.is_multiple_of(LINE) && padded - tail <= room {
            padded
        } else {
            end
        }
    }

    /// The frame at `head`: its length, checked against the maximum and what is published,
    /// and where the next one starts.
    #[inline]
    pub(super) fn frame_at(&self, head: u64, tail: u64) -> io::Result<Frame> {
        if tail - head < LEN_BYTES {
            return Err(self.corrupt("a frame header runs past the tail".into()));
        }
        let header = self.read_u32_at(head);
        let len = u64::from(header & !LINE_END);
        let max = self.s.config.0.max_message.load(Ordering::Relaxed);
        if len > max || LEN_BYTES + len > tail - head {
            return Err(self.corrupt(format!("frame length {len}")));
        }
        let mut next = head + LEN_BYTES + len;
        if header & LINE_END != 0 {
            next = next.next_multiple_of(LINE);
            if next > tail {
                return Err(self.corrupt(format!("padding past the tail, to {next}")));
            }
        }
        Ok(Frame { len, next })
    }

    /// Copies the payload of the frame at `head` into `out`, which is as long as the
    /// payload, and returns it: a buffer that need not be zeroed first (a get of a small
    /// message spent more instructions clearing its stack buffer than copying into it).
    #[inline]
    pub(super) fn copy_payload<'b>(&self, head: u64, out: &'b mut [MaybeUninit<u8>]) -> &'b [u8] {
        self.read_at(head + LEN_BYTES, out)
    }

    /// Frees the bytes of `frames` messages taken, up to `new_head`, and counts them (after:
    /// a get count never runs ahead of the put count, which moves before its frames show).
    #[inline]
    pub(super) fn free_frames(&self, head: u64, new_head: u64, frames: u64) {
        let side = self.side;
        let count = side.count.load(Ordering::Relaxed);
        let after = count.saturating_add(frames);
        self.begin(head, count, after);
        fault::point(CrashPoint::GetBeforeCommit);
        // Freed. Ordered before the load of `putters` that follows by the unlock's locked
        // instruction between them (see mod.rs).
        self.pos.store(new_head, Ordering::Release);
        side.mine.store(new_head, Ordering::Relaxed);
        side.count.store(after, Ordering::Relaxed);
        self.commit();
    }

    #[inline]
    fn begin(&self, pos: u64, before: u64, after: u64) {
        let j = &self.side.journal;
        j.pos.store(pos, Ordering::Relaxed);
        j.count_before.store(before, Ordering::Relaxed);
        j.count_after.store(after, Ordering::Relaxed);
        j.active.store(1, Ordering::Release);
    }

    #[inline]
    fn commit(&self) {
        self.side.journal.active.store(0, Ordering::Release);
    }

    /// Repairs an update a dead process left half done (see the module docs), and wakes
    /// everyone to look again.
    fn repair(&self) {
        let side = self.side;
        let j = &side.journal;
        if j.active.load(Ordering::Acquire) != 0 {
            let moved = self.pos.load(Ordering::Relaxed) != j.pos.load(Ordering::Relaxed);
            // Moved: the other side may have acted on it; complete the count instead.
            let count = if moved {
                &j.count_after
            } else {
                &j.count_before
            };
            side.count
                .store(count.load(Ordering::Relaxed), Ordering::Relaxed);
            self.commit();
        }
        // The shared position is the truth (the other side acts on it).
        side.mine
            .store(self.pos.load(Ordering::Relaxed), Ordering::Relaxed);
        for word in [&self.s.not_empty.0, &self.s.not_full.0] {
            word.fetch_add(1, Ordering::SeqCst);
            super::super::wait::wake(word, u32::MAX);
        }
    }

    /// Copies `bytes` into the ring at position `pos`, wrapping at the end.
    #[inline]
    fn write_at(&self, pos: u64, bytes: &[u8]) {
        let (start, first) = self.split(pos, bytes.len());
        // SAFETY: `split` keeps both pieces inside the ring (`ring` spans `capacity` bytes of
        // the mapping, checked in `new`); the source is a distinct local slice; the bytes past
        // `tail` belong to the holder of the put side's lock until it publishes them.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ring.add(start), first);
            if first < bytes.len() {
                let rest = bytes.len() - first;
                std::ptr::copy_nonoverlapping(bytes[first..].as_ptr(), self.ring, rest);
            }
        }
    }

    /// Copies ring bytes at position `pos` into `out`, wrapping at the end; returns them.
    #[inline]
    fn read_at<'b>(&self, pos: u64, out: &'b mut [MaybeUninit<u8>]) -> &'b [u8] {
        let len = out.len();
        let (start, first) = self.split(pos, len);
        let to = out.as_mut_ptr().cast::<u8>();
        // SAFETY: as in `write_at`, with the roles of ring and slice swapped (`out` is a
        // buffer of `len` bytes outside the ring); the published bytes before `tail` stay put
        // until the holder of the get side's lock frees them. Then all `len` bytes of `out`
        // are written, so they can be read as initialized.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ring.add(start), to, first);
            if first < len {
                std::ptr::copy_nonoverlapping(self.ring, to.add(first), len - first);
            }
            std::slice::from_raw_parts(to, len)
        }
    }

    /// The little-endian `u32` at position `pos` (a frame header): one unaligned load, where
    /// `read_at` would call `memcpy` for four bytes (a put+get pair measured ~15% slower
    /// without this pair of helpers).
    #[inline]
    fn read_u32_at(&self, pos: u64) -> u32 {
        let (start, first) = self.split(pos, 4);
        if first < 4 {
            let mut bytes = [MaybeUninit::uninit(); 4];
            let bytes = self.read_at(pos, &mut bytes); // split by the end of the ring
            return u32::from_le_bytes(bytes.try_into().expect("4 bytes"));
        }
        // SAFETY: the 4 bytes at `start` are inside the ring (`split`); published bytes
        // stay put while the get side's lock is held (see `read_at`).
        u32::from_le(unsafe { self.ring.add(start).cast::<u32>().read_unaligned() })
    }

    /// Writes `value` little-endian at position `pos` (a frame header).
    #[inline]
    fn write_u32_at(&self, pos: u64, value: u32) {
        let (start, first) = self.split(pos, 4);
        if first < 4 {
            self.write_at(pos, &value.to_le_bytes()); // split by the end of the ring
            return;
        }
        // SAFETY: the 4 bytes at `start` are inside the ring (`split`), past `tail`: the put
        // side's lock holder's until it publishes them (see `write_at`).
        unsafe {
            self.ring
                .add(start)
                .cast::<u32>()
                .write_unaligned(value.to_le())
        };
    }

    /// Where `len` (at most `capacity`) bytes at `pos` start in the ring, and how many fit
    /// before its end.
    #[inline]
    fn split(&self, pos: u64, len: usize) -> (usize, usize) {
        debug_assert!(len as u64 <= self.capacity);
        let start = ring_offset(pos, self.capacity);
        (start, len.min(self.capacity as usize - start))
    }
}

impl Drop for Inside<'_> {
    // A hint that matters: without it a put+get pair ran ~25 instructions more (other
    // inlining decisions moved with it; counted with callgrind).
    #[inline]
    fn drop(&mut self) {
        super::super::unlock_or_panic(&self.side.lock);
    }
}
