//! Waiting on a shared futex word without stalling the hub.
//!
//! A plain OS thread waits in the kernel (`futex(FUTEX_WAIT_BITSET)`). A green thread must
//! not: the whole hub would stop. So a green thread first spins briefly (most ipc waits are
//! short), then hands the word to a per-process **waiter thread** and parks:
//!
//! ```text
//!   green thread                      waiter thread (one per 127 distinct words)
//!   ------------                      -------------------------------------------
//!   register (word, expected, me) --> entries += ...; ring the doorbell
//!   park                              futex_waitv([doorbell, word1, word2, ...])
//!                                     ... another process stores to word1 and wakes it
//!                                     every entry whose word changed: notify -> unpark
//!   runs again, re-checks its word <-
//! ```
//!
//! `futex_waitv` (Linux 5.16) sleeps on up to 128 words at once, so one thread serves many
//! green threads; green threads waiting on the same word with the same value share one
//! entry. The doorbell is a private word the waiter thread also sleeps on; bumping it makes
//! the thread rebuild its list.
//!
//! Memory safety: the waiter thread reads a word only while its entry is registered, under the
//! shard's lock, and a green thread removes its entry (under that lock) before it returns —
//! so the mapping holding the word is alive whenever it is read.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::hub::Wait;
use crate::sync::waiter::Waiter;
use crate::sys::futex::{self, WAITV_MAX, WaitEntry, Woke};
use crate::sys::per_process::PerProcess;

/// Spins this many times (checking the word) before a green thread parks.
const SPINS: u32 = 64;

/// Waits while `word == expected`, until `deadline`, or spuriously. Returns false if the
/// deadline passed. Parks only the calling green thread when other green threads could run.
pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> bool {
    if !crate::hub::others_could_run() {
        return futex::wait(word, expected, deadline) != Woke::TimedOut;
    }
    for _ in 0..SPINS {
        if word.load(Ordering::Acquire) != expected {
            return true;
        }
        std::hint::spin_loop();
    }
    wait_green(word, expected, deadline)
}

/// Wakes up to `n` waiters on `word`, in this or any other process.
pub(crate) fn wake(word: &AtomicU32, n: u32) {
    futex::wake(word, n);
}

fn wait_green(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> bool {
    let waiter = Waiter::for_current();
    let addr = word.as_ptr() as usize;
    let shard = service().register(addr, expected, &waiter);
    let _leave = Unregister {
        shard: &shard,
        waiter: &waiter,
    };
    waiter.park(Wait::Sync("ipc futex", addr), deadline)
}

/// Takes a green thread's entry out of its shard when it stops waiting for any reason
/// (notified, deadline, kill or timeout unwinding).
struct Unregister<'a> {
    shard: &'a Arc<Shard>,
    waiter: &'a Arc<Waiter>,
}

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        let mut entries = self.shard.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|e| !Arc::ptr_eq(&e.waiter, self.waiter));
    }
}

/// One green thread waiting for `addr` to stop holding `expected`.
struct Entry {
    addr: usize,
    expected: u32,
    waiter: Arc<Waiter>,
}

/// One waiter thread and the entries it watches.
struct Shard {
    entries: Mutex<Vec<Entry>>,
    doorbell: AtomicU32,
}

/// The waiter threads of this process. A forked child makes its own (the parent's threads
/// do not exist there); see `process::per_process`.
struct Service {
    shards: Mutex<Vec<Arc<Shard>>>,
}

static SERVICE: PerProcess<Service> = PerProcess::new();

fn service() -> &'static Service {
    SERVICE.get(|| Service {
        shards: Mutex::new(Vec::new()),
    })
}

impl Service {
    /// Adds an entry to a shard with room for its word (starting a new waiter thread when all
    /// are full) and rings that shard's doorbell.
    fn register(&self, addr: usize, expected: u32, waiter: &Arc<Waiter>) -> Arc<Shard> {
        let mut shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        let shard = shards
            .iter()
            .find(|s| s.has_room_for(addr, expected))
            .cloned()
            .unwrap_or_else(|| {
                let shard = Arc::new(Shard {
                    entries: Mutex::new(Vec::new()),
                    doorbell: AtomicU32::new(0),
                });
                let runner = shard.clone();
                std::thread::Builder::new()
                    .name("greenrt-ipc-waiter".into())
                    .stack_size(64 * 1024)
                    .spawn(move || runner.run())
                    .expect("greenrt: cannot start the ipc waiter thread");
                shards.push(shard.clone());
                shard
            });
        shard
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Entry {
                addr,
                expected,
                waiter: waiter.clone(),
            });
        drop(shards);
        shard.ring();
        shard
    }
}

impl Shard {
    /// Room for one more distinct (word, value) key besides the doorbell?
    fn has_room_for(&self, addr: usize, expected: u32) -> bool {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let shared = entries
            .iter()
            .any(|e| e.addr == addr && e.expected == expected);
        shared || distinct_keys(&entries) < WAITV_MAX - 1
    }

    fn ring(&self) {
        self.doorbell.fetch_add(1, Ordering::Release);
        futex::wake(&self.doorbell, 1);
    }

    /// The waiter thread: fire changed entries, sleep on the rest plus the doorbell, repeat.
    fn run(&self) {
        let mut list = Vec::with_capacity(WAITV_MAX);
        loop {
            self.fire_and_collect(&mut list);
            if let Err(e) = futex::wait_any(&list, None) {
                panic!("greenrt: futex_waitv failed ({e}); Linux 5.16 or later is required");
            }
        }
    }

    /// Under the lock: notifies (and drops) every entry whose word changed, and fills `list`
    /// with the doorbell and one entry per distinct remaining key.
    fn fire_and_collect(&self, list: &mut Vec<WaitEntry>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|e| {
            // SAFETY: the entry is registered, so its green thread is still waiting and holds
            // the object whose mapping contains `addr` (see the module docs).
            let word = unsafe { &*(e.addr as *const AtomicU32) };
            if word.load(Ordering::Acquire) != e.expected {
                e.waiter.notify();
                false
            } else {
                true
            }
        });
        list.clear();
        list.push(WaitEntry::new(
            &self.doorbell,
            self.doorbell.load(Ordering::Acquire),
        ));
        for e in entries.iter() {
            let entry = WaitEntry::new(e.addr as *const AtomicU32, e.expected);
            if !list[1..].contains(&entry) {
                list.push(entry);
            }
        }
    }
}

fn distinct_keys(entries: &[Entry]) -> usize {
    let mut keys: Vec<(usize, u32)> = entries.iter().map(|e| (e.addr, e.expected)).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.len()
}
