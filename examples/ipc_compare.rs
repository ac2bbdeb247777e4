//! `ipc::Queue` against a raw shared-memory ring and Python's multiprocessing queues, and the
//! process `Pool::map` against Python's `Pool.map`, side by side in one run.
//!
//! Each queue trial forks a producer pinned to CPU 0; the consumer (this process) runs on
//! CPU 1 and times from the moment it is ready to the last message received. The pool
//! trials (greenrt's and Python's) run unpinned, on every CPU. The raw ring is
//! the ceiling: 64-byte slots in `MAP_SHARED` memory, one producer, one consumer, a spinning
//! consumer, no framing, no crash safety. Python runs only if `python3` is on the PATH.
//! First it measures the scale of it all: how long a cache line takes to go from one pinned
//! process's core to the other's and back.
//!
//! `cargo run --release --example ipc_compare -- [--messages N] [--rounds R] [--items N]`

#[path = "common/args.rs"]
mod args;
#[path = "common/pin.rs"]
mod pin;
#[path = "common/python.rs"]
mod python;
#[path = "common/stats.rs"]
mod stats;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use greenrt::ipc::{Event, Queue};
use greenrt::process::{Pool, Process};
use pin::pin_to_cpu;
use serde::{Deserialize, Serialize};

/// A 64-byte binary message, sent as one byte string (serde's `serialize_bytes`: postcard
/// writes a length and copies the bytes), as a binary payload is sent.
#[derive(Clone, Copy, PartialEq, Debug)]
struct Msg64([u8; 64]);

impl Msg64 {
    fn numbered(i: u64) -> Msg64 {
        let mut bytes = [7u8; 64];
        bytes[..8].copy_from_slice(&i.to_le_bytes());
        Msg64(bytes)
    }

    fn number(&self) -> u64 {
        u64::from_le_bytes(self.0[..8].try_into().expect("8 bytes"))
    }
}

impl Serialize for Msg64 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Msg64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Msg64, D::Error> {
        struct Bytes64;
        impl serde::de::Visitor<'_> for Bytes64 {
            type Value = Msg64;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("64 bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Msg64, E> {
                v.try_into()
                    .map(Msg64)
                    .map_err(|_| E::invalid_length(v.len(), &self))
            }
        }
        d.deserialize_bytes(Bytes64)
    }
}

/// The same 64 bytes as a struct of eight numbers: serde visits each field, postcard
/// writes each as a varint (here 10 bytes each: they are large).
#[derive(Clone, Copy, Serialize, Deserialize, PartialEq, Debug)]
struct Fields64([u64; 8]);

/// Runs `produce` in a child pinned to CPU 0 once this process says go, and `consume` here;
/// returns messages per second from go to the end of `consume`.
fn timed_pair(n: u64, produce: impl FnOnce(), consume: impl FnOnce()) -> f64 {
    let go = Event::new().expect("event");
    let child = Process::spawn({
        let go = go.clone();
        move || {
            pin_to_cpu(0);
            go.wait();
            produce();
        }
    })
    .expect("fork");
    let start = Instant::now();
    go.set();
    consume();
    let rate = n as f64 / start.elapsed().as_secs_f64();
    assert!(child.join().expect("join").success(), "the producer failed");
    rate
}

fn queue_u64(n: u64) -> f64 {
    let q: Queue<u64> = Queue::new(1 << 20).expect("queue");
    let tx = q.clone();
    timed_pair(
        n,
        move || (0..n).for_each(|i| tx.put(&i).expect("put")),
        || {
            for i in 0..n {
                assert_eq!(q.get().expect("get"), i, "out of order");
            }
        },
    )
}

fn queue_fields(n: u64) -> f64 {
    let q: Queue<Fields64> = Queue::new(1 << 20).expect("queue");
    let tx = q.clone();
    timed_pair(
        n,
        move || (0..n).for_each(|i| tx.put(&Fields64([u64::MAX - i; 8])).expect("put")),
        || {
            for i in 0..n {
                assert_eq!(q.get().expect("get").0[0], u64::MAX - i, "out of order");
            }
        },
    )
}

/// 64-byte messages in batches: `put_many` of `batch`, `get_many` of up to `batch`.
fn queue_64_batched(n: u64, batch: u64) -> f64 {
    let q: Queue<Msg64> = Queue::new(1 << 20).expect("queue");
    let tx = q.clone();
    timed_pair(
        n,
        move || {
            let mut items = Vec::with_capacity(batch as usize);
            for start in (0..n).step_by(batch as usize) {
                items.clear();
                items.extend((start..n.min(start + batch)).map(Msg64::numbered));
                tx.put_many(&items).expect("put_many");
            }
        },
        || {
            let mut next = 0;
            while next < n {
                for m in q.get_many(batch as usize).expect("get_many") {
                    assert_eq!(m.number(), next, "out of order");
                    next += 1;
                }
            }
        },
    )
}

fn queue_64(n: u64) -> f64 {
    let q: Queue<Msg64> = Queue::new(1 << 20).expect("queue");
    let tx = q.clone();
    timed_pair(
        n,
        move || (0..n).for_each(|i| tx.put(&Msg64::numbered(i)).expect("put")),
        || {
            for i in 0..n {
                assert_eq!(q.get().expect("get").number(), i, "out of order");
            }
        },
    )
}

/// The ceiling: a single-producer single-consumer ring of 64-byte slots in shared memory.
mod raw {
    use super::*;

    pub const SLOTS: u64 = 4096;

    /// Head and tail on lines of their own, then the slots.
    #[repr(C, align(128))]
    struct Padded(AtomicU64);

    #[repr(C)]
    struct Ring {
        head: Padded,
        tail: Padded,
        slots: [[u8; 64]; SLOTS as usize],
    }

    pub fn rate(n: u64) -> f64 {
        let len = size_of::<Ring>();
        let addr = shared_zeroed(len);
        let rate = timed_pair(n, move || produce(addr, n), || consume(addr, n));
        // SAFETY: the mapping made by `shared_zeroed`; the producer has exited.
        unsafe { libc::munmap(addr as *mut libc::c_void, len) };
        rate
    }

    /// A fresh anonymous shared mapping of `len` bytes, zero-filled, as an address (the
    /// forked child inherits it at the same address).
    pub fn shared_zeroed(len: usize) -> usize {
        // SAFETY: mmap with no address hint and no file has no preconditions; the result is
        // checked before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "mmap");
        p as usize
    }

    /// The time for one cache line to go from the consumer's core to the producer's and back,
    /// in nanoseconds: the two pinned processes take turns incrementing one counter, `n`
    /// round trips (median of `rounds`). The queue pays about one such crossing per
    /// message; the ring's streaming stores hide it (NOTES §10, session 10).
    pub fn line_round_trip_ns(n: u64, rounds: usize) -> f64 {
        let len = size_of::<Padded>();
        let runs: Vec<f64> = (0..rounds)
            .map(|_| {
                let addr = shared_zeroed(len);
                // The child answers odd values, this process even ones.
                let rate = timed_pair(n, move || take_turns(addr, n, 1), || take_turns(addr, n, 0));
                // SAFETY: the mapping made by `shared_zeroed`; the child has exited.
                unsafe { libc::munmap(addr as *mut libc::c_void, len) };
                1e9 / rate
            })
            .collect();
        stats::median(runs)
    }

    /// Bumps the counter at `addr` each time it holds a value of parity `mine`, `n` times.
    fn take_turns(addr: usize, n: u64, mine: u64) {
        // SAFETY: `addr` is a live mapping of a `Padded`, inherited by the child.
        let counter = unsafe { &(*(addr as *const Padded)).0 };
        for i in 0..n {
            let want = 2 * i + mine;
            while counter.load(Ordering::Acquire) != want {
                std::hint::spin_loop();
            }
            counter.store(want + 1, Ordering::Release);
        }
    }

    fn ring<'a>(addr: usize) -> &'a Ring {
        // SAFETY: `addr` is the live mapping made in `rate`, inherited by the child.
        unsafe { &*(addr as *const Ring) }
    }

    fn slot(addr: usize, pos: u64) -> *mut [u8; 64] {
        // SAFETY: `pos % SLOTS` is inside the slot array.
        unsafe { (&raw mut (*(addr as *mut Ring)).slots[(pos % SLOTS) as usize]) }
    }

    fn produce(addr: usize, n: u64) {
        let r = ring(addr);
        for i in 0..n {
            while i - r.head.0.load(Ordering::Acquire) >= SLOTS {
                std::hint::spin_loop();
            }
            let bytes = Msg64::numbered(i).0;
            // SAFETY: the slot is free (head has passed it) and only this producer writes it.
            unsafe { slot(addr, i).write_volatile(bytes) };
            r.tail.0.store(i + 1, Ordering::Release);
        }
    }

    fn consume(addr: usize, n: u64) {
        let r = ring(addr);
        for i in 0..n {
            while r.tail.0.load(Ordering::Acquire) <= i {
                std::hint::spin_loop();
            }
            // SAFETY: the slot was published (tail passed it) and is not reused until head
            // moves past it below.
            let bytes = unsafe { slot(addr, i).read_volatile() };
            assert_eq!(u64::from_le_bytes(bytes[..8].try_into().unwrap()), i);
            r.head.0.store(i + 1, Ordering::Release);
        }
    }
}

const PYTHON_QUEUES: &str = r#"
import multiprocessing as mp, os, sys, time
def produce(q, go, n):
    os.sched_setaffinity(0, {0})
    go.wait()
    for i in range(n):
        q.put(i)
def rate(make, n):
    q, go = make(), mp.Event()
    p = mp.Process(target=produce, args=(q, go, n))
    p.start()
    t = time.perf_counter()
    go.set()
    for i in range(n):
        assert q.get() == i
    r = n / (time.perf_counter() - t)
    p.join()
    return r
if __name__ == '__main__':
    os.sched_setaffinity(0, {1})
    n = int(sys.argv[1])
    print(f"{rate(mp.Queue, n):.0f} {rate(mp.SimpleQueue, n):.0f}")
"#;

const PYTHON_POOL: &str = r#"
import multiprocessing as mp, sys, time
def plus_one(x): return x + 1
if __name__ == '__main__':
    n, workers, rounds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    with mp.Pool(workers) as p:
        p.map(plus_one, range(n))  # warm up at full size, as greenrt's pool is
        best = 0.0
        for _ in range(rounds):
            t = time.perf_counter()
            out = p.map(plus_one, range(n))
            assert out[-1] == n
            best = max(best, n / (time.perf_counter() - t))
    print(f"{best:.0f}")
"#;

fn plus_one(x: u64) -> u64 {
    x + 1
}

/// A number behind a serde type of its own: what `map` sends through serde (postcard's
/// varints), where a bare `u64` travels as raw bytes.
#[derive(Clone, Copy, Serialize, Deserialize, PartialEq, Debug)]
struct Id(u64);

fn next_id(x: Id) -> Id {
    Id(x.0 + 1)
}

/// A warmed-up pool of `workers` and its input, for timing `map` of `items` (numbers, and a serde type).
struct PoolTrial {
    pool: Pool,
    input: Vec<u64>,
}

impl PoolTrial {
    fn new(items: u64, workers: usize) -> PoolTrial {
        let pool = Pool::new(workers).expect("pool");
        let input: Vec<u64> = (0..items).collect();
        // Warm up at full size, as Python's pool is: the first maps of a fresh pool also grow
        // the allocator's arenas and page in the buffers, which later maps reuse.
        pool.map(plus_one, input.iter().copied()).expect("warm up");
        pool.map(next_id, input.iter().copied().map(Id))
            .expect("warm up");
        PoolTrial { pool, input }
    }

    /// Items per second of one `map`.
    fn map(&self) -> f64 {
        let start = Instant::now();
        let out = self
            .pool
            .map(plus_one, self.input.iter().copied())
            .expect("map");
        assert_eq!(out.last(), self.input.last().map(|x| x + 1).as_ref());
        self.input.len() as f64 / start.elapsed().as_secs_f64()
    }

    /// Items per second of one `map` of a serde type (the codec's cost included).
    fn map_serde(&self) -> f64 {
        let ids: Vec<Id> = self.input.iter().copied().map(Id).collect();
        let start = Instant::now();
        let out = self.pool.map(next_id, ids).expect("map of Id");
        assert_eq!(out.last(), self.input.last().map(|x| Id(x + 1)).as_ref());
        self.input.len() as f64 / start.elapsed().as_secs_f64()
    }
}

/// Two measurements taken side by side: the best of each, and the median of the ratios
/// `b / a` of the runs made next to each other (on a noisy machine, neighbouring runs share
/// the conditions; the best of each may come from different moments).
struct Paired {
    best_a: f64,
    best_b: f64,
    median_ratio: f64,
}

/// `rounds` runs of `a` and of `b`, alternating which goes first.
fn paired(rounds: usize, mut a: impl FnMut() -> f64, mut b: impl FnMut() -> f64) -> Paired {
    let mut ratios = Vec::new();
    let (mut best_a, mut best_b) = (0f64, 0f64);
    for round in 0..rounds.max(1) {
        let (ra, rb) = if round % 2 == 0 {
            let ra = a();
            (ra, b())
        } else {
            let rb = b();
            (a(), rb)
        };
        best_a = best_a.max(ra);
        best_b = best_b.max(rb);
        ratios.push(rb / ra);
    }
    Paired {
        best_a,
        best_b,
        median_ratio: stats::median(ratios),
    }
}

/// The best of `rounds` runs of `trial`.
fn best(rounds: usize, trial: impl Fn() -> f64) -> f64 {
    (0..rounds).map(|_| trial()).fold(0.0, f64::max)
}

fn row(name: &str, rate: f64) {
    println!("  {name:<44} {:>12.0} msg/s", rate);
}

fn main() {
    let args = args::Cli::new(
        "ipc_compare",
        "ipc::Queue vs a raw shared-memory ring vs Python's queues; Pool.map vs Python's",
    )
    .mirrors("multiprocessing.Queue and Pool.map throughput, course note 0")
    .flag("messages", "N", "2000000", "messages per queue trial")
    .flag(
        "python-messages",
        "N",
        "200000",
        "messages per Python queue trial",
    )
    .flag("items", "N", "200000", "items for Pool.map")
    .flag("workers", "N", "2", "worker processes for Pool.map")
    .flag(
        "rounds",
        "R",
        "3",
        "rounds per measurement (best kept; ratios: median of side-by-side pairs)",
    )
    .parse();
    let n: u64 = args.get("messages");
    let py_n: u64 = args.get("python-messages");
    let items: u64 = args.get("items");
    let workers: usize = args.get("workers");
    let rounds: usize = args.get("rounds");
    pin_to_cpu(1);
    println!(
        "[ipc_compare] producer on CPU 0, consumer on CPU 1; best of {rounds}, ratios: median of {rounds} side-by-side pairs"
    );
    println!(
        "  a cache line's round trip between the two cores: {:.0} ns (median of {rounds})",
        raw::line_round_trip_ns(200_000, rounds)
    );
    let ring_vs_queue = paired(rounds, || raw::rate(n), || queue_64(n));
    row(
        "raw SPSC ring, 64-byte slots (the ceiling)",
        ring_vs_queue.best_a,
    );
    row("greenrt ipc::Queue, 64-byte messages", ring_vs_queue.best_b);
    row(
        "greenrt ipc::Queue, 64-byte, put_many/get_many 64",
        best(rounds, || queue_64_batched(n, 64)),
    );
    row(
        "greenrt ipc::Queue, 8 x u64 (serde per field)",
        best(rounds, || queue_fields(n)),
    );
    let q8 = best(rounds, || queue_u64(n));
    row("greenrt ipc::Queue<u64>", q8);
    let py = python::numbers(PYTHON_QUEUES, &[py_n.to_string()]);
    if let Some(py) = &py {
        row("python multiprocessing.Queue, ints", py[0]);
        row("python multiprocessing.SimpleQueue, ints", py[1]);
    }
    // The pools get every CPU, as a user's would (the queue trials above pinned this process,
    // and what it forks — Python included — inherits the pinning).
    pin::unpin();
    let trial = PoolTrial::new(items, workers);
    let map_serde = best(rounds, || trial.map_serde());
    let python_map = || {
        let args = [items.to_string(), workers.to_string(), "1".to_string()];
        python::numbers(PYTHON_POOL, &args).map(|rates| rates[0])
    };
    let pool_vs_python = python_map()
        .is_some()
        .then(|| paired(rounds, || python_map().unwrap_or(f64::NAN), || trial.map()));
    let map = pool_vs_python
        .as_ref()
        .map_or_else(|| best(rounds, || trial.map()), |p| p.best_b);
    println!(
        "  {:<44} {:>12.0} items/s",
        format!("greenrt Pool::map of u64 (raw), {workers} workers"),
        map
    );
    println!(
        "  {:<44} {:>12.0} items/s",
        format!("greenrt Pool::map of a serde Id(u64), {workers} w."),
        map_serde
    );
    if let Some(p) = &pool_vs_python {
        println!(
            "  {:<44} {:>12.0} items/s",
            format!("python Pool.map, {workers} workers"),
            p.best_a
        );
    }
    println!("ratios (goal):");
    println!(
        "  Queue 64-byte / raw ring          {:>6.3}  (>= 0.333; best / best {:.3})",
        ring_vs_queue.median_ratio,
        ring_vs_queue.best_b / ring_vs_queue.best_a
    );
    if let Some(py) = &py {
        println!(
            "  Queue<u64> / python Queue         {:>6.1}x (>= 20x)",
            q8 / py[0]
        );
    }
    if let Some(p) = &pool_vs_python {
        println!(
            "  Pool::map / python Pool.map       {:>6.1}x (>= 10x; best / best {:.1}x)",
            p.median_ratio,
            p.best_b / p.best_a
        );
        println!(
            "  Pool::map of Id / python Pool.map {:>6.1}x (serde, best / best)",
            map_serde / p.best_a
        );
    }
}
