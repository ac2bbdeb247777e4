//! ipc benchmarks, side by side with std in one run:
//!
//! * `lock_uncontended`: `ipc::Lock` lock+unlock (a CAS each way, no syscall) vs
//!   `std::sync::Mutex` and `greenrt::sync::Mutex`;
//! * `round_trip`: one small message to a child process and back — `ipc::Queue` pair,
//!   `ipc::pipe`, and a raw std `UnixStream` pair (the kernel's floor for a socket);
//! * `stream`: one-way throughput of small messages from a child process — `ipc::Queue`,
//!   `ipc::pipe`, and a raw `UnixStream` carrying the same 8-byte values;
//! * `process`: `Process::spawn` + `join` of an empty child vs `std::thread` spawn + join.
//!
//! `cargo bench --bench ipc`. Figures and ratios go in NOTES.md.

use std::hint::black_box;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use greenrt::ipc::{Lock, Queue, pipe};
use greenrt::process::Process;

fn lock_uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("lock_uncontended");
    let lock = Lock::new().unwrap();
    group.bench_function("ipc::Lock lock+unlock", |b| {
        b.iter(|| drop(black_box(lock.lock().unwrap())))
    });
    let std_mutex = std::sync::Mutex::new(());
    group.bench_function("std::sync::Mutex lock+unlock", |b| {
        b.iter(|| drop(black_box(std_mutex.lock().unwrap())))
    });
    let green_mutex = greenrt::sync::Mutex::new(());
    group.bench_function("greenrt::sync::Mutex lock+unlock", |b| {
        b.iter(|| drop(black_box(green_mutex.lock())))
    });
    group.finish();
}

/// lock+unlock while a child process does the same on the same `ipc::Lock` in a loop: the
/// contended path (spin with backoff, then the futex).
fn lock_contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("lock_contended");
    let lock = Lock::new().unwrap();
    let stop = greenrt::ipc::Event::new().unwrap();
    let rival = {
        let (lock, stop) = (&lock, &stop);
        Process::spawn(move || {
            while !stop.is_set() {
                for _ in 0..100 {
                    drop(black_box(lock.lock().unwrap()));
                }
            }
        })
        .unwrap()
    };
    group.bench_function("ipc::Lock lock+unlock, a rival process hammering", |b| {
        b.iter(|| drop(black_box(lock.lock().unwrap())))
    });
    stop.set();
    rival.join().unwrap();
    group.finish();
}

/// A child that answers every u64 on `requests` with the same value on `replies`.
fn queue_echo_child(requests: &Queue<u64>, replies: &Queue<u64>) -> Process {
    let (requests, replies) = (requests.clone(), replies.clone());
    Process::spawn(move || {
        while let Ok(v) = requests.get() {
            replies.put(&v).unwrap();
        }
    })
    .unwrap()
}

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("round_trip");
    {
        let (requests, replies) = (
            Queue::<u64>::new(4096).unwrap(),
            Queue::<u64>::new(4096).unwrap(),
        );
        let child = queue_echo_child(&requests, &replies);
        group.bench_function("ipc::Queue pair", |b| {
            b.iter(|| {
                requests.put(&7).unwrap();
                black_box(replies.get().unwrap())
            })
        });
        requests.close().unwrap();
        child.join().unwrap();
    }
    {
        let (here, there) = pipe().unwrap();
        let child = Process::spawn(move || {
            // A sentinel ends the child: EOF would never come, since the child inherited a
            // copy of the parent's end too (as with any fd across fork).
            while let Ok(v) = there.recv::<u64>() {
                if v == u64::MAX {
                    break;
                }
                there.send(&v).unwrap();
            }
        })
        .unwrap();
        group.bench_function("ipc::pipe", |b| {
            b.iter(|| {
                here.send(&7u64).unwrap();
                black_box(here.recv::<u64>().unwrap())
            })
        });
        here.send(&u64::MAX).unwrap();
        child.join().unwrap();
    }
    {
        let (mut here, mut there) = UnixStream::pair().unwrap();
        let child = Process::spawn(move || {
            let mut buf = [0u8; 8];
            while there.read_exact(&mut buf).is_ok() && buf != [0xff; 8] {
                there.write_all(&buf).unwrap();
            }
        })
        .unwrap();
        group.bench_function("std UnixStream pair (raw 8 bytes)", |b| {
            let mut buf = [0u8; 8];
            b.iter(|| {
                here.write_all(&7u64.to_le_bytes()).unwrap();
                here.read_exact(&mut buf).unwrap();
                black_box(buf)
            })
        });
        here.write_all(&[0xff; 8]).unwrap();
        child.join().unwrap();
    }
    group.finish();
}

fn stream(c: &mut Criterion) {
    let mut group = c.benchmark_group("stream");
    group.bench_function("ipc::Queue, child puts n u64", |b| {
        let q = Queue::<u64>::new(64 * 1024).unwrap();
        b.iter_custom(|iters| {
            let producer = {
                let q = q.clone();
                Process::spawn(move || (0..iters).for_each(|i| q.put(&i).unwrap())).unwrap()
            };
            let start = Instant::now();
            for _ in 0..iters {
                black_box(q.get().unwrap());
            }
            let took = start.elapsed();
            producer.join().unwrap();
            took
        })
    });
    group.bench_function("ipc::pipe, child sends n u64", |b| {
        b.iter_custom(|iters| {
            let (here, there) = pipe().unwrap();
            let producer =
                Process::spawn(move || (0..iters).for_each(|i| there.send(&i).unwrap())).unwrap();
            let start = Instant::now();
            for _ in 0..iters {
                black_box(here.recv::<u64>().unwrap());
            }
            let took = start.elapsed();
            producer.join().unwrap();
            took
        })
    });
    group.bench_function("std UnixStream, child writes n raw u64", |b| {
        b.iter_custom(|iters| {
            let (mut here, mut there) = UnixStream::pair().unwrap();
            let producer = Process::spawn(move || {
                (0..iters).for_each(|i| there.write_all(&i.to_le_bytes()).unwrap())
            })
            .unwrap();
            let mut buf = [0u8; 8];
            let start = Instant::now();
            for _ in 0..iters {
                here.read_exact(&mut buf).unwrap();
                black_box(buf);
            }
            let took = start.elapsed();
            producer.join().unwrap();
            took
        })
    });
    group.finish();
}

fn process(c: &mut Criterion) {
    let mut group = c.benchmark_group("process");
    group.bench_function("Process::spawn + join (empty child)", |b| {
        b.iter(|| Process::spawn(|| ()).unwrap().join().unwrap())
    });
    group.bench_function("std::thread spawn + join", |b| {
        b.iter(|| std::thread::spawn(|| ()).join().unwrap())
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! { name = benches; config = config(); targets = lock_uncontended, lock_contended, round_trip, stream, process }
criterion_main!(benches);
