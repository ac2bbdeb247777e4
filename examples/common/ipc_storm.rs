//! Kill -9 storms against the ipc primitives, shared by `stress` and `tests/ipc_queue.rs`.
//!
//! * [`queue_storm`]: producer and consumer *processes* on one `ipc::Queue` while random ones
//!   are SIGKILLed and replaced. Every message carries (incarnation, seq) and a payload made
//!   from them, so a torn message is detected; shared arrays record what each producer's
//!   `put` returned and how often each message was received.
//! * [`lock_storm`]: worker processes take one `ipc::Lock` in turn while random ones are
//!   SIGKILLed — often while holding it. Each holder checks it is alone inside; the next
//!   holder after a death is told `OwnerDied` and repairs the "inside" mark.
#![allow(dead_code)]

pub use crate::rng::Rng;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use greenrt::ipc::{Array, LockError, Queue};
use greenrt::process::Process;

/// Producer incarnations a storm may use, and messages each may put.
const INCARNATIONS: usize = 1024;
const SEQS: usize = 4096;

type Message = (u32, u32, Vec<u8>);

/// What a queue storm did and found.
#[derive(Debug, Default)]
pub struct QueueStorm {
    pub producer_kills: usize,
    pub consumer_kills: usize,
    pub delivered: usize,
    /// Returned puts never received — allowed only for messages a killed consumer took.
    pub lost: usize,
    /// Messages received more than once (must be 0).
    pub duplicates: usize,
    /// Consumers that ended with a failure other than our SIGKILL (a torn message panics).
    pub failed_consumers: usize,
    /// Surviving consumers that did not finish after the queue was closed (must be 0).
    pub hung_consumers: usize,
    pub secs: f64,
}

/// The payload of message (inc, seq): its bytes prove it is whole.
pub fn payload(inc: u32, seq: u32) -> Vec<u8> {
    let len = (seq as usize * 7919 + inc as usize * 31) % 700;
    let mut x = (u64::from(inc) << 32 | u64::from(seq)).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn spawn_producer(q: &Queue<Message>, returned: &Array<u32>, inc: u32) -> io::Result<Process> {
    let (q, returned) = (q.clone(), returned.clone());
    Process::spawn(move || {
        for seq in 0..SEQS as u32 {
            q.put(&(inc, seq, payload(inc, seq))).expect("put");
            // Recorded only after put returned: "every message whose put returned".
            returned
                .lock()
                .or_else(LockError::recover)
                .expect("returned")[inc as usize] = seq + 1;
        }
    })
}

fn spawn_consumer(q: &Queue<Message>, seen: &Array<u8>) -> io::Result<Process> {
    let (q, seen) = (q.clone(), seen.clone());
    Process::spawn(move || {
        while let Ok((inc, seq, data)) = q.get() {
            assert_eq!(data, payload(inc, seq), "a torn or corrupt message");
            let mut s = seen.lock().or_else(LockError::recover).expect("seen");
            let slot = &mut s[inc as usize * SEQS + seq as usize];
            *slot = slot.saturating_add(1);
        }
    })
}

fn killed_or_ok(status: std::process::ExitStatus) -> bool {
    status.success() || status.signal() == Some(9)
}

/// Runs a queue storm for `secs` with `side` producers and `side` consumers.
pub fn queue_storm(secs: f64, side: usize, seed: u64) -> io::Result<QueueStorm> {
    let q: Queue<Message> = Queue::new(16 * 1024)?;
    let returned = Array::<u32>::new(INCARNATIONS)?;
    let seen = Array::<u8>::new(INCARNATIONS * SEQS)?;
    let mut report = QueueStorm::default();
    let (mut producers, mut consumers): (Vec<Process>, Vec<Process>) = (Vec::new(), Vec::new());
    let mut next_inc = 0u32;
    let mut rng = Rng(seed | 1);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    while Instant::now() < end && (next_inc as usize) < INCARNATIONS - side {
        while producers.len() < side {
            producers.push(spawn_producer(&q, &returned, next_inc)?);
            next_inc += 1;
        }
        while consumers.len() < side {
            consumers.push(spawn_consumer(&q, &seen)?);
        }
        std::thread::sleep(Duration::from_micros(2000 + rng.next() % 20_000));
        let victim = rng.next() as usize % (2 * side);
        let process = if victim < side {
            report.producer_kills += 1;
            producers.remove(victim)
        } else {
            report.consumer_kills += 1;
            consumers.remove(victim - side)
        };
        process.kill()?;
        if !killed_or_ok(process.join()?) {
            report.failed_consumers += 1;
        }
    }
    for p in producers.drain(..) {
        p.kill()?;
        p.join()?;
    }
    q.close()?;
    for c in consumers.drain(..) {
        // Survivors drain the queue and stop at Closed: no deadlock.
        match c.join_timeout(Duration::from_secs(20))? {
            Some(status) if status.success() => {}
            Some(_) => report.failed_consumers += 1,
            None => {
                report.hung_consumers += 1;
                c.kill()?;
            }
        }
    }
    // A timed get, not `try_get`: it waits for the queue's lock (and its repair when a killed
    // consumer died holding it) rather than answering "empty" while someone is inside.
    while let Ok((inc, seq, data)) = q.get_timeout(Duration::from_millis(200)) {
        if data != payload(inc, seq) {
            report.failed_consumers += 1;
        }
        seen.lock().or_else(LockError::recover)?[inc as usize * SEQS + seq as usize] += 1;
    }
    let (seen, returned) = (seen.to_vec()?, returned.to_vec()?);
    report.duplicates = seen.iter().filter(|&&n| n > 1).count();
    for inc in 0..next_inc as usize {
        for seq in 0..returned[inc] as usize {
            match seen[inc * SEQS + seq] {
                0 => report.lost += 1,
                _ => report.delivered += 1,
            }
        }
    }
    report.secs = start.elapsed().as_secs_f64();
    Ok(report)
}

/// What a lock storm did and found.
#[derive(Debug, Default)]
pub struct LockStorm {
    pub kills: usize,
    /// Critical sections completed.
    pub entries: u64,
    /// Times a holder found someone else inside (must be 0).
    pub overlaps: u64,
    /// Acquisitions told `OwnerDied` (one per death while holding).
    pub recoveries: u64,
    pub secs: f64,
}

/// Runs a lock storm for `secs` with `workers` processes.
pub fn lock_storm(secs: f64, workers: usize, seed: u64) -> io::Result<LockStorm> {
    let lock = greenrt::ipc::Lock::new()?;
    // [inside, entries, overlaps, recoveries], written only while holding `lock`.
    let stats = Array::<u64>::new(4)?;
    let spawn = |lock: &greenrt::ipc::Lock, stats: &Array<u64>| {
        let (lock, stats) = (lock.clone(), stats.clone());
        Process::spawn(move || {
            let data = stats.clone();
            loop {
                let guard = match lock.lock() {
                    Ok(g) => g,
                    Err(LockError::OwnerDied(g)) => {
                        // Repair: the dead holder left its "inside" mark.
                        let mut s = data.lock().or_else(LockError::recover).expect("stats");
                        s[0] = 0;
                        s[3] += 1;
                        drop(s);
                        g
                    }
                    Err(e) => panic!("lock: {e}"),
                };
                {
                    let mut s = data.lock().or_else(LockError::recover).expect("stats");
                    if s[0] != 0 {
                        s[2] += 1;
                    }
                    s[0] = 1;
                }
                std::hint::spin_loop();
                {
                    let mut s = data.lock().or_else(LockError::recover).expect("stats");
                    s[0] = 0;
                    s[1] += 1;
                }
                drop(guard);
            }
        })
    };
    let mut procs: Vec<Process> = (0..workers)
        .map(|_| spawn(&lock, &stats))
        .collect::<Result<_, _>>()?;
    let mut rng = Rng(seed | 1);
    let mut report = LockStorm::default();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        std::thread::sleep(Duration::from_micros(1000 + rng.next() % 10_000));
        let victim = procs.remove(rng.next() as usize % procs.len());
        victim.kill()?;
        victim.join()?;
        report.kills += 1;
        procs.push(spawn(&lock, &stats)?);
    }
    for p in procs {
        p.kill()?;
        p.join()?;
    }
    // Take the lock once more: it must come free (perhaps from a dead holder) promptly.
    let _last = lock
        .lock_timeout(Duration::from_secs(5))
        .or_else(LockError::recover)?;
    let s = stats.to_vec()?;
    report.entries = s[1];
    report.overlaps = s[2];
    report.recoveries = s[3];
    report.secs = start.elapsed().as_secs_f64();
    Ok(report)
}

/// What a pool storm did and found.
#[derive(Debug, Default)]
pub struct PoolStorm {
    pub submitted: usize,
    pub succeeded: usize,
    /// Tasks that failed with `WorkerDied` (allowed: at most one per kill).
    pub worker_died: usize,
    /// Tasks that failed any other way, or returned a wrong value (must be 0).
    pub wrong: usize,
    /// Tasks with no outcome 10 s after the storm (must be 0).
    pub hung: usize,
    pub kills: usize,
    pub secs: f64,
}

/// A tiny task that sometimes takes a moment, so kills land mid-task. Returns (x * 2, pid).
fn storm_task(x: u64) -> (u64, u32) {
    if x.is_multiple_of(7) {
        std::thread::sleep(Duration::from_micros(300));
    }
    (x * 2, std::process::id())
}

/// Runs many tiny tasks on a `process::Pool` for `secs` while a killer SIGKILLs a random
/// worker (found from the pids tasks report) every few milliseconds.
pub fn pool_storm(secs: f64, workers: usize, seed: u64) -> io::Result<PoolStorm> {
    use std::sync::{Arc, Mutex};
    let pool = greenrt::process::Pool::new(workers)?;
    let pids: Arc<Mutex<Vec<u32>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let start = Instant::now();
    let killer = {
        let (pids, stop) = (pids.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut rng = Rng(seed | 1);
            let mut kills = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_micros(3000 + rng.next() % 10_000));
                let victim = {
                    let p = pids.lock().unwrap();
                    if p.is_empty() {
                        None
                    } else {
                        Some(p[rng.next() as usize % p.len()])
                    }
                };
                // SAFETY: kill(2) with a pid a pool task reported: at worst the worker is gone.
                if let Some(pid) = victim
                    && unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) } == 0
                {
                    kills += 1;
                    pids.lock().unwrap().retain(|&p| p != pid);
                }
            }
            kills
        })
    };
    let mut report = PoolStorm::default();
    let mut next = 0u64;
    let end = start + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        let batch: Vec<(u64, greenrt::process::AsyncResult<(u64, u32)>)> = (0..200)
            .map(|i| (next + i, pool.apply_async(storm_task, next + i)))
            .collect();
        next += 200;
        report.submitted += batch.len();
        for (x, result) in batch {
            match result.get_timeout(Duration::from_secs(10)) {
                Ok((v, pid)) if v == x * 2 => {
                    report.succeeded += 1;
                    let mut p = pids.lock().unwrap();
                    if !p.contains(&pid) {
                        p.push(pid);
                    }
                }
                Err(greenrt::process::TaskError::WorkerDied { .. }) => report.worker_died += 1,
                Err(greenrt::process::TaskError::TimedOut) => report.hung += 1,
                _ => report.wrong += 1,
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    report.kills = killer.join().unwrap_or(0);
    pool.close();
    let _ = pool.join();
    report.secs = start.elapsed().as_secs_f64();
    Ok(report)
}
