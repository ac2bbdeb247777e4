//! Green-thread stacks: mmap'd, committed lazily, guarded, pooled.
//!
//! Each green thread runs on its own stack, carved from anonymous memory by `sys::mem`:
//!
//! ```text
//!   start + len  +----------------------------+  base(): corosensei starts the stack here
//!                | corosensei's initial frame |
//!                | green entry + user closure |  only the pages actually touched cost RSS
//!                |            ...             |
//!                |   (untouched: no RSS)      |
//!  start + guard +----------------------------+  limit()
//!                | guard region (faults)      |  a touch here is a stack overflow
//!         start  +----------------------------+
//! ```
//!
//! **The supply.** A finished green thread's stack goes back to a per-hub pool and the next
//! spawn takes it, so a spawn+join loop makes no syscall. When the pool is empty, stacks are
//! *carved* [`CARVE_BATCH`] at a time from one `mmap`, their guards installed with one
//! `process_madvise` call: a fresh stack then costs its first-touch page fault and little
//! else. (A burst of spawns does not even get that far: see the deferred start in
//! `spawn.rs`.)
//!
//! **Giving memory back, with hysteresis.** Returning memory to the kernel is what costs:
//! `munmap` frees the touched pages and flushes the TLB, microseconds a stack, which would
//! land on whoever is woken next — trimming at every idle moment made 1–2 ms stalls in the
//! middle of a sleeper storm. So the pool keeps what a burst may want again and gives back
//! only what it did not need: it tracks its *low-water mark*, the fewest stacks it held
//! during an epoch ([`EPOCH`], 1 s). At the end of an epoch, stacks beyond [`POOL_KEEP`] that
//! stayed unused for the whole epoch are surplus, and the hub unmaps them — the oldest first,
//! sorted by address so that each run of adjacent stacks goes in one `munmap` — only while it
//! is about to sleep anyway, in slices that end before its next timer is due. A burst that
//! comes back within a second finds its stacks; a process that falls idle gives its surplus
//! back within one to two epochs plus the time the kernel takes to free the pages (about
//! 1.5 µs a page on the 2-core VM: a few seconds for a million stacks).

use std::io;
use std::time::{Duration, Instant};

use corosensei::stack::{Stack, StackPointer};

use crate::sys::mem;

/// Default usable stack size: 256 KiB of address space. Only touched pages are committed,
/// so a green thread that parks shallowly costs one or two pages of RSS however large this
/// is; the size only bounds how deep a green thread may recurse. See NOTES.md, "Stacks".
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// Smallest stack we accept: corosensei's initial frame, our entry frames and a formatting
/// call such as `println!` must fit.
pub const MIN_STACK_SIZE: usize = 16 * 1024;

/// Size of the guard region under every stack.
const GUARD_SIZE: usize = 4096;

/// How many finished stacks a hub keeps for reuse after a trim.
pub(crate) const POOL_KEEP: usize = 1024;

/// The period of the pool's low-water mark: stacks unused for a whole epoch are surplus.
pub(crate) const EPOCH: Duration = Duration::from_secs(1);

/// Stacks mapped at once when the pool is empty: one `mmap` and one guard call for all of
/// them. Untouched stacks cost address space and a page-table entry, no RSS.
const CARVE_BATCH: usize = 32;

/// The most stacks one trimming slice sorts by address and may release.
const RELEASE_CHUNK: usize = 1024;

/// The most stacks one `munmap` call releases, so that one call stays well under the time
/// slice it runs in (its cost grows with the pages it must free).
const RUN_LIMIT: usize = 16;

/// One green thread's stack. Unmapped on drop.
///
/// # Invariant
/// `start..start + len` is a mapping owned by this value whose lowest `GUARD_SIZE` bytes are
/// a guard region.
#[derive(Debug)]
pub(crate) struct GreenStack {
    start: *mut u8,
    len: usize,
}

impl GreenStack {
    /// Maps a stack with `usable` bytes (rounded up to whole pages) above a guard region.
    pub(crate) fn new(usable: usize) -> io::Result<GreenStack> {
        let page = mem::page_size();
        let usable = usable.max(MIN_STACK_SIZE).next_multiple_of(page);
        let len = usable + GUARD_SIZE;
        let start = mem::map_anonymous(len)?;
        let stack = GreenStack { start, len };
        // SAFETY: the guard region is the first page-aligned GUARD_SIZE bytes of a mapping we
        // just made and which holds nothing yet.
        unsafe { mem::install_guard(start, GUARD_SIZE)? };
        Ok(stack)
    }

    /// Maps `count` stacks of `usable` bytes each (whole pages) side by side with one `mmap`,
    /// and installs their guards with one call where the kernel allows it.
    fn carve(usable: usize, count: usize) -> io::Result<Vec<GreenStack>> {
        let len = usable + GUARD_SIZE;
        let total = len
            .checked_mul(count)
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        let base = mem::map_anonymous(total)?;
        let stacks: Vec<GreenStack> = (0..count)
            .map(|i| GreenStack {
                // SAFETY: `i * len` is inside the mapping of `total` bytes just made.
                start: unsafe { base.add(i * len) },
                len,
            })
            .collect();
        let guards: Vec<(*mut u8, usize)> = stacks.iter().map(|s| (s.start, GUARD_SIZE)).collect();
        // SAFETY: each guard is the first page-aligned GUARD_SIZE bytes of a stack carved from
        // the mapping just made, which holds nothing yet. If this fails, dropping `stacks`
        // unmaps every piece of the mapping.
        unsafe { mem::install_guards(&guards)? };
        Ok(stacks)
    }

    /// Usable bytes, guard excluded.
    pub(crate) fn usable(&self) -> usize {
        self.len - GUARD_SIZE
    }

    /// The whole mapping, `(start, len)` (guard included), for counting resident pages.
    pub(crate) fn span(&self) -> (usize, usize) {
        (self.start as usize, self.len)
    }

    /// The guard region, `(low, high)`: a fault in here is an overflow of this stack.
    pub(crate) fn guard_range(&self) -> (usize, usize) {
        let low = self.start as usize;
        (low, low + GUARD_SIZE)
    }
}

impl Drop for GreenStack {
    fn drop(&mut self) {
        // SAFETY: by the invariant the mapping is ours; a stack is dropped only when no
        // coroutine runs on it (corosensei hands it back after the coroutine finished).
        unsafe { mem::unmap(self.start, self.len) }
    }
}

// SAFETY: base and limit describe the mapping owned by this value; both are page aligned,
// hence aligned to corosensei's STACK_ALIGNMENT (16), and limit includes the guard region.
unsafe impl Stack for GreenStack {
    fn base(&self) -> StackPointer {
        StackPointer::new(self.start as usize + self.len).expect("a mapping is never at address 0")
    }

    fn limit(&self) -> StackPointer {
        StackPointer::new(self.start as usize).expect("a mapping is never at address 0")
    }
}

/// Finished stacks kept for reuse. A request is served from the pool only by a stack of
/// exactly the requested usable size.
#[derive(Debug, Default)]
pub(crate) struct StackPool {
    /// Oldest first: a stack is taken from and given back at the end.
    free: Vec<GreenStack>,
    /// The fewest stacks `free` held since the epoch began.
    low_water: usize,
    /// When the current epoch ends (`None`: no surplus to watch for).
    epoch_ends: Option<Instant>,
    /// Stacks found unused for a whole epoch and not yet unmapped.
    surplus: usize,
}

impl Drop for StackPool {
    fn drop(&mut self) {
        let never = Instant::now() + Duration::from_secs(86_400);
        while self.release_oldest(self.free.len(), never) > 0 {}
    }
}

/// Pops the lowest stacks of `sorted` (sorted by descending address) while each one ends where
/// the next begins, at most [`RUN_LIMIT`] of them, forgets them, and returns the range
/// `(start, len)` they cover.
fn take_adjacent_run(sorted: &mut Vec<GreenStack>) -> Option<(*mut u8, usize)> {
    let first = sorted.pop()?;
    let (start, mut len) = (first.start, first.len);
    std::mem::forget(first);
    let mut count = 1;
    while let Some(next) = sorted.last() {
        if start as usize + len != next.start as usize || count == RUN_LIMIT {
            break;
        }
        count += 1;
        len += next.len;
        std::mem::forget(sorted.pop());
    }
    Some((start, len))
}

/// `usable` as a stack is made: at least [`MIN_STACK_SIZE`], whole pages.
fn rounded(usable: usize) -> usize {
    usable
        .max(MIN_STACK_SIZE)
        .next_multiple_of(mem::page_size())
}

impl StackPool {
    /// A stack with `usable` bytes, from the pool when one of that size is there; else a
    /// batch of [`CARVE_BATCH`] is mapped at once and the rest pooled (a burst will want
    /// them). Stacks of another size than the default are mapped one at a time.
    pub(crate) fn take(&mut self, usable: usize) -> io::Result<GreenStack> {
        if let Some(stack) = self.take_pooled(usable) {
            return Ok(stack);
        }
        let usable = rounded(usable);
        if usable != rounded(DEFAULT_STACK_SIZE) {
            return GreenStack::new(usable);
        }
        let mut batch = GreenStack::carve(usable, CARVE_BATCH)?;
        let first = batch.pop().expect("a batch is never empty");
        self.free.append(&mut batch);
        Ok(first)
    }

    /// A pooled stack with `usable` bytes, if the pool has one (no system call).
    pub(crate) fn take_pooled(&mut self, usable: usize) -> Option<GreenStack> {
        let wanted = rounded(usable);
        match self.free.last() {
            Some(stack) if stack.usable() == wanted => {
                let stack = self.free.pop();
                self.low_water = self.low_water.min(self.free.len());
                stack
            }
            _ => None,
        }
    }

    /// Returns a stack whose coroutine has finished.
    pub(crate) fn give_back(&mut self, stack: GreenStack) {
        self.free.push(stack);
    }

    /// Called when the hub is about to sleep and may spend until `stop` (see the module
    /// docs): closes the epoch if it is over, then unmaps surplus stacks until `stop`.
    /// Returns when the hub should come back to go on: `None` if there is nothing to watch.
    pub(crate) fn trim_when_idle(&mut self, now: Instant, stop: Instant) -> Option<Instant> {
        if self.free.len() <= POOL_KEEP {
            self.low_water = self.free.len();
            self.surplus = 0;
            self.epoch_ends = None;
            return None;
        }
        let ends = *self.epoch_ends.get_or_insert(now + EPOCH);
        if now >= ends {
            self.surplus = self.low_water.saturating_sub(POOL_KEEP);
            self.low_water = self.free.len();
            self.epoch_ends = Some(now + EPOCH);
        }
        if self.surplus > 0 {
            self.surplus -= self.release_oldest(self.surplus, stop);
        }
        self.low_water = self.low_water.min(self.free.len());
        match self.surplus {
            0 => self.epoch_ends,
            _ => Some(stop), // more to give back at the next idle moment
        }
    }

    /// Unmaps up to `count` of the oldest pooled stacks (at most [`RELEASE_CHUNK`] per call),
    /// one `munmap` per run of adjacent ones, until `stop`; returns how many went.
    fn release_oldest(&mut self, count: usize, stop: Instant) -> usize {
        let count = count.min(self.free.len()).min(RELEASE_CHUNK);
        if count == 0 || Instant::now() >= stop {
            return 0;
        }
        let mut oldest: Vec<GreenStack> = self.free.drain(..count).collect();
        oldest.sort_unstable_by_key(|s| std::cmp::Reverse(s.start as usize));
        let mut released = 0;
        while Instant::now() < stop {
            let before = oldest.len();
            let Some(run) = take_adjacent_run(&mut oldest) else {
                break;
            };
            // SAFETY: the run covers stacks owned by the pool whose GreenStack values were
            // forgotten by `take_adjacent_run`, so nothing else unmaps or uses that memory.
            unsafe { mem::unmap(run.0, run.1) };
            released += before - oldest.len();
        }
        self.free.splice(0..0, oldest);
        released
    }

    /// How many stacks wait for reuse.
    /// The mappings of the pooled stacks, `(start, len)`.
    pub(crate) fn spans(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.free.iter().map(GreenStack::span)
    }

    pub(crate) fn len(&self) -> usize {
        self.free.len()
    }
}
