//! The pool of finished stacks: a doubly-linked list threaded through the stacks themselves,
//! so taking and giving back a stack never allocates, and giving memory back with hysteresis.
//!
//! **No allocation on the hot path.** A finished green thread's stack goes back to a per-hub
//! pool and the next spawn takes it, so a spawn+join loop makes no system call. The pool was
//! a `Vec`; in a storm of 100,000 sleepers it grew while they finished, and one of its
//! reallocations (64 KiB, a "large" request to glibc's malloc) made malloc consolidate the
//! 100,000 small blocks the burst had just freed: a 4 ms stall in the middle of the storm.
//! Now each pooled stack carries its own list links in its top bytes — the top page of a
//! stack that has run is resident anyway — so the pool is just two pointers and a count:
//!
//! ```text
//!   newest ──> [stack | link] <──> [stack | link] <──> ... <──> [stack | link] <── oldest
//!   take / give back here                                    trimmed from here
//! ```
//!
//! Stacks carved in a batch and never used yet (`stack.rs`) wait in a small `Vec` of their
//! own: writing a link into one would touch its top page and cost RSS before it is needed.
//!
//! **Giving memory back, with hysteresis.** Returning memory to the kernel is what costs:
//! `munmap` frees the touched pages and flushes the TLB, microseconds a stack, which would
//! land on whoever is woken next — trimming at every idle moment made 1–2 ms stalls in a
//! sleeper storm. So the pool keeps what a burst may want again and gives back only what it
//! did not need: it tracks its *low-water mark*, the fewest stacks it held during an epoch
//! ([`EPOCH`], 1 s). At the end of an epoch, stacks beyond [`POOL_KEEP`] that stayed unused
//! for the whole epoch are surplus, and the hub unmaps them — the oldest first, a chunk at a
//! time sorted by address so that each run of adjacent stacks goes in one `munmap` — only
//! while it is about to sleep anyway, in slices that end before its next timer is due. A
//! burst that comes back within a second finds its stacks; a process that falls idle gives
//! its surplus back within one to two epochs plus the time the kernel takes to free the pages
//! (on the 2-core VM about half a microsecond a stack in runs: about a second for a million).

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use super::stack::{self, CARVE_BATCH, DEFAULT_STACK_SIZE, GreenStack, InChildren};
use crate::sys::mem;

/// How many finished stacks a hub keeps for reuse after a trim.
pub(crate) const POOL_KEEP: usize = 1024;

/// The period of the pool's low-water mark: stacks unused for a whole epoch are surplus.
pub(crate) const EPOCH: Duration = Duration::from_secs(1);

/// The most stacks one trimming slice sorts by address and may release.
const RELEASE_CHUNK: usize = 1024;

/// The most stacks one `munmap` call releases, so that one call stays well under the time
/// slice it runs in (its cost grows with the pages it must free).
const RUN_LIMIT: usize = 16;

/// The two ends of the list, indexing `StackPool::ends` and `Link::toward`.
#[derive(Clone, Copy)]
enum End {
    Newest = 0,
    Oldest = 1,
}

/// The list node at the top of a pooled stack.
#[repr(C, align(16))]
struct Link {
    /// The neighbour toward each end: `[newer, older]` (null at that end).
    toward: [*mut Link; 2],
    /// The stack's mapping, as `GreenStack::into_raw` gave it.
    start: *mut u8,
    len: usize,
}

/// Finished stacks kept for reuse; see the module docs. A request is served from the pool only
/// by a stack of exactly the requested usable size.
///
/// # Invariant
/// Every `Link` reachable from `ends[Newest]` (through `toward[Oldest]`) or from
/// `ends[Oldest]` (through `toward[Newest]`) sits at the top of a stack mapping the pool owns
/// (given up by `GreenStack::into_raw`), and the two chains list the same `linked` nodes in
/// opposite orders.
pub(crate) struct StackPool {
    /// `[newest, oldest]`, null when the list is empty.
    ends: [*mut Link; 2],
    linked: usize,
    /// Carved and never used: no link written (see the module docs).
    fresh: Vec<GreenStack>,
    /// The fewest stacks the pool held since the epoch began.
    low_water: usize,
    /// When the current epoch ends (`None`: no surplus to watch for).
    epoch_ends: Option<Instant>,
    /// Stacks found unused for a whole epoch and not yet unmapped.
    surplus: usize,
    /// Reused by each trimming slice.
    scratch: Vec<GreenStack>,
}

impl Default for StackPool {
    fn default() -> StackPool {
        StackPool {
            ends: [std::ptr::null_mut(); 2],
            linked: 0,
            fresh: Vec::new(),
            low_water: 0,
            epoch_ends: None,
            surplus: 0,
            scratch: Vec::new(),
        }
    }
}

impl fmt::Debug for StackPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackPool")
            .field("pooled", &self.len())
            .field("fresh", &self.fresh.len())
            .finish()
    }
}

impl Drop for StackPool {
    fn drop(&mut self) {
        let never = Instant::now() + Duration::from_secs(86_400);
        while self.release_oldest(self.len(), never) > 0 {}
    }
}

/// Where the link of the stack `(start, len)` lives: its top 32 bytes.
fn link_of(start: *mut u8, len: usize) -> *mut Link {
    start.wrapping_add(len - size_of::<Link>()).cast()
}

impl StackPool {
    /// A stack with `usable` bytes, from the pool when one of that size is there; else a
    /// batch of [`CARVE_BATCH`] is mapped at once and the rest kept fresh (a burst will want
    /// them). Stacks of another size than the default are mapped one at a time.
    pub(crate) fn take(&mut self, usable: usize) -> io::Result<GreenStack> {
        if let Some(stack) = self.take_pooled(usable) {
            return Ok(stack);
        }
        let usable = stack::rounded(usable);
        if usable != stack::rounded(DEFAULT_STACK_SIZE) {
            return GreenStack::new(usable, InChildren::Left);
        }
        let mut batch = GreenStack::carve(usable, CARVE_BATCH, InChildren::Left)?;
        let first = batch.pop().expect("a batch is never empty");
        self.fresh.append(&mut batch);
        Ok(first)
    }

    /// A pooled stack with `usable` bytes, if the pool has one (no system call): the newest
    /// one given back (its top pages are warm), else a fresh one.
    pub(crate) fn take_pooled(&mut self, usable: usize) -> Option<GreenStack> {
        let wanted = stack::rounded(usable);
        let stack = match self.newest_len() {
            Some(len) if len - stack::GUARD_SIZE == wanted => self.unlink_at(End::Newest),
            _ => match self.fresh.last() {
                Some(stack) if stack.usable() == wanted => self.fresh.pop(),
                _ => None,
            },
        };
        self.low_water = self.low_water.min(self.len());
        stack
    }

    /// Returns a stack whose coroutine has finished: it becomes the newest.
    pub(crate) fn give_back(&mut self, stack: GreenStack) {
        self.link_at(End::Newest, stack);
    }

    fn newest_len(&self) -> Option<usize> {
        // SAFETY: by the invariant a non-null end is a live link of ours.
        unsafe {
            self.ends[End::Newest as usize]
                .as_ref()
                .map(|link| link.len)
        }
    }

    /// Links `stack` in at `end` of the list.
    fn link_at(&mut self, end: End, stack: GreenStack) {
        let (e, other) = (end as usize, 1 - end as usize);
        let (start, len) = stack.into_raw();
        let link = link_of(start, len);
        let mut toward = [std::ptr::null_mut(); 2];
        toward[other] = self.ends[e];
        // SAFETY: the stack's coroutine has finished, so its memory is ours; its top 32 bytes
        // are inside the mapping (a stack is at least MIN_STACK_SIZE) and 16-aligned (the
        // mapping and its length are page multiples). By the invariant the old end is a live
        // link of ours. Linking keeps the invariant.
        unsafe {
            link.write(Link { toward, start, len });
            match self.ends[e].as_mut() {
                Some(old_end) => old_end.toward[e] = link,
                None => self.ends[other] = link,
            }
        }
        self.ends[e] = link;
        self.linked += 1;
    }

    /// Takes the stack at `end` of the list out, if any.
    fn unlink_at(&mut self, end: End) -> Option<GreenStack> {
        let (e, other) = (end as usize, 1 - end as usize);
        // SAFETY: by the invariant a non-null end is a live link at the top of a stack we own;
        // we unlink it and hand the mapping back as a GreenStack, its only owner from now on.
        unsafe {
            let link = self.ends[e].as_ref()?;
            let (start, len, next) = (link.start, link.len, link.toward[other]);
            self.ends[e] = next;
            match next.as_mut() {
                Some(new_end) => new_end.toward[e] = std::ptr::null_mut(),
                None => self.ends[other] = std::ptr::null_mut(),
            }
            self.linked -= 1;
            Some(GreenStack::from_raw(start, len))
        }
    }

    /// Called when the hub is about to sleep and may spend until `stop` (see the module
    /// docs): closes the epoch if it is over, then unmaps surplus stacks until `stop`.
    /// Returns when the hub should come back to go on: `None` if there is nothing to watch.
    pub(crate) fn trim_when_idle(&mut self, now: Instant, stop: Instant) -> Option<Instant> {
        if self.len() <= POOL_KEEP {
            self.low_water = self.len();
            self.surplus = 0;
            self.epoch_ends = None;
            return None;
        }
        let ends = *self.epoch_ends.get_or_insert(now + EPOCH);
        if now >= ends {
            self.surplus = self.low_water.saturating_sub(POOL_KEEP);
            self.low_water = self.len();
            self.epoch_ends = Some(now + EPOCH);
        }
        if self.surplus > 0 {
            self.surplus -= self.release_oldest(self.surplus, stop);
        }
        self.low_water = self.low_water.min(self.len());
        match self.surplus {
            0 => self.epoch_ends,
            _ => Some(stop), // more to give back at the next idle moment
        }
    }

    /// Unmaps up to `count` of the oldest stacks — fresh ones first, they were never used —
    /// at most [`RELEASE_CHUNK`] per call, one `munmap` per run of adjacent ones, until
    /// `stop`; returns how many went.
    fn release_oldest(&mut self, count: usize, stop: Instant) -> usize {
        let count = count.min(self.len()).min(RELEASE_CHUNK);
        if count == 0 || Instant::now() >= stop {
            return 0;
        }
        let mut chunk = std::mem::take(&mut self.scratch);
        while chunk.len() < count {
            match self.fresh.pop().or_else(|| self.unlink_at(End::Oldest)) {
                Some(stack) => chunk.push(stack),
                None => break,
            }
        }
        chunk.sort_unstable_by_key(|s| std::cmp::Reverse(s.span().0));
        let mut released = 0;
        while Instant::now() < stop {
            let before = chunk.len();
            let Some((start, len)) = take_adjacent_run(&mut chunk) else {
                break;
            };
            // SAFETY: the run covers stacks owned by the pool whose GreenStack values were
            // given up by `take_adjacent_run`, so nothing else unmaps or uses that memory.
            unsafe { mem::unmap(start, len) };
            released += before - chunk.len();
        }
        while let Some(stack) = chunk.pop() {
            self.link_at(End::Oldest, stack);
        }
        self.scratch = chunk;
        released
    }

    /// The mappings of the pooled stacks, `(start, len)`.
    pub(crate) fn spans(&self) -> Vec<(usize, usize)> {
        let mut spans: Vec<(usize, usize)> = self.fresh.iter().map(GreenStack::span).collect();
        let mut link = self.ends[End::Newest as usize];
        // SAFETY: by the invariant every link reached toward the oldest end is a live link.
        while let Some(l) = unsafe { link.as_ref() } {
            spans.push((l.start as usize, l.len));
            link = l.toward[End::Oldest as usize];
        }
        spans
    }

    /// How many stacks wait for reuse.
    pub(crate) fn len(&self) -> usize {
        self.linked + self.fresh.len()
    }
}

/// Pops the lowest stacks of `sorted` (sorted by descending address) while each one ends where
/// the next begins, at most [`RUN_LIMIT`] of them, gives up their ownership, and returns the
/// range `(start, len)` they cover.
fn take_adjacent_run(sorted: &mut Vec<GreenStack>) -> Option<(*mut u8, usize)> {
    let (start, mut len) = sorted.pop()?.into_raw();
    let mut count = 1;
    while let Some(next) = sorted.last() {
        if start as usize + len != next.span().0 || count == RUN_LIMIT {
            break;
        }
        count += 1;
        len += sorted.pop().expect("just looked").into_raw().1;
    }
    Some((start, len))
}
