//! Core benchmarks, each side by side with its peers in one run:
//!
//! * `switch`: one green-thread yield (green -> hub -> other green) vs a raw corosensei
//!   resume/suspend round trip and a tokio `yield_now` between two tasks;
//! * `spawn_join`: spawn a trivial green thread and join it vs tokio current_thread
//!   spawn+await and may's `go!`+join (from inside a coroutine, one worker);
//! * `mutex_uncontended`: `greenrt::sync::Mutex` lock+unlock vs `std::sync::Mutex`;
//! * `queue_put_get`: one item through a bounded queue between two green threads vs tokio's
//!   mpsc on a current_thread runtime and may's mpsc;
//! * `sync_misc`: Event ping-pong, GreenPool map, ThreadPool submit+result.
//!
//! `cargo bench --bench core`. Figures and ratios go in NOTES.md.

use std::hint::black_box;
use std::time::{Duration, Instant};

use corosensei::{Coroutine, Yielder};
use criterion::{Criterion, criterion_group, criterion_main};

fn switch(c: &mut Criterion) {
    let mut group = c.benchmark_group("switch");
    group.bench_function("greenrt yield_now (per yield)", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let a = greenrt::spawn(move || (0..iters).for_each(|_| greenrt::yield_now()));
            let z = greenrt::spawn(move || (0..iters).for_each(|_| greenrt::yield_now()));
            a.join().unwrap();
            z.join().unwrap();
            start.elapsed() / 2 // two yields per iteration, one in each green thread
        })
    });
    group.bench_function("corosensei resume+suspend", |b| {
        let mut co = Coroutine::new(|y: &Yielder<(), ()>, ()| {
            loop {
                y.suspend(());
            }
        });
        b.iter(|| co.resume(()));
    });
    group.bench_function(
        "corosensei, two coroutines resumed in turn by one loop",
        |b| {
            // The shape of a hub: every switch goes coroutine -> scheduler stack -> coroutine.
            let mut pair = [0, 1].map(|_| {
                Coroutine::new(|y: &Yielder<(), ()>, ()| {
                    loop {
                        y.suspend(());
                    }
                })
            });
            let mut turn = 0;
            b.iter(|| {
                pair[turn].resume(());
                turn ^= 1;
            });
        },
    );
    group.bench_function("tokio current_thread yield_now (per yield)", |b| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        b.iter_custom(|iters| {
            rt.block_on(async move {
                let start = Instant::now();
                let a = tokio::spawn(async move {
                    for _ in 0..iters {
                        tokio::task::yield_now().await;
                    }
                });
                let z = tokio::spawn(async move {
                    for _ in 0..iters {
                        tokio::task::yield_now().await;
                    }
                });
                a.await.unwrap();
                z.await.unwrap();
                start.elapsed() / 2
            })
        })
    });
    group.finish();
}

fn spawn_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_join");
    group.bench_function("greenrt spawn+join", |b| {
        b.iter(|| greenrt::spawn(|| black_box(1u64)).join().unwrap());
    });
    group.bench_function("tokio current_thread spawn+await", |b| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        b.iter_custom(|iters| {
            rt.block_on(async move {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(tokio::spawn(async { black_box(1u64) }).await.unwrap());
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("may go!+join (1 worker, from a coroutine)", |b| {
        may::config().set_workers(1);
        b.iter_custom(|iters| {
            may::go!(move || {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(may::go!(|| black_box(1u64)).join().unwrap());
                }
                start.elapsed()
            })
            .join()
            .unwrap()
        })
    });
    group.finish();
}

fn mutex(c: &mut Criterion) {
    let mut group = c.benchmark_group("mutex_uncontended");
    let green = greenrt::sync::Mutex::new(0u64);
    group.bench_function("greenrt::sync::Mutex lock+unlock", |b| {
        b.iter(|| *green.lock() += 1);
    });
    let std_mutex = std::sync::Mutex::new(0u64);
    group.bench_function("std::sync::Mutex lock+unlock", |b| {
        b.iter(|| *std_mutex.lock().unwrap() += 1);
    });
    group.finish();
}

fn queue(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue_put_get");
    group.bench_function("greenrt Queue, producer and consumer green threads", |b| {
        b.iter_custom(|iters| {
            let q: std::rc::Rc<greenrt::sync::Queue<u64>> =
                std::rc::Rc::new(greenrt::sync::Queue::new(1024));
            let start = Instant::now();
            let qp = q.clone();
            let producer = greenrt::spawn(move || (0..iters).for_each(|i| qp.put(i).unwrap()));
            let consumer = greenrt::spawn(move || {
                (0..iters).for_each(|_| {
                    black_box(q.get().unwrap());
                })
            });
            producer.join().unwrap();
            consumer.join().unwrap();
            start.elapsed()
        })
    });
    group.bench_function("tokio mpsc (bounded 1024), current_thread", |b| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        b.iter_custom(|iters| {
            rt.block_on(async move {
                let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
                let start = Instant::now();
                let producer = tokio::spawn(async move {
                    for i in 0..iters {
                        tx.send(i).await.unwrap();
                    }
                });
                let consumer = tokio::spawn(async move {
                    for _ in 0..iters {
                        black_box(rx.recv().await.unwrap());
                    }
                });
                producer.await.unwrap();
                consumer.await.unwrap();
                start.elapsed()
            })
        })
    });
    group.bench_function("may mpsc (1 worker, coroutines)", |b| {
        may::config().set_workers(1);
        b.iter_custom(|iters| {
            may::go!(move || {
                let (tx, rx) = may::sync::mpsc::channel();
                let start = Instant::now();
                let producer = may::go!(move || (0..iters).for_each(|i| tx.send(i).unwrap()));
                let consumer = may::go!(move || (0..iters).for_each(|_| {
                    black_box(rx.recv().unwrap());
                }));
                producer.join().unwrap();
                consumer.join().unwrap();
                start.elapsed()
            })
            .join()
            .unwrap()
        })
    });
    group.finish();
}

fn sync_misc(c: &mut Criterion) {
    let mut group = c.benchmark_group("sync_misc");
    group.bench_function(
        "Event ping-pong round trip between two green threads",
        |b| {
            b.iter_custom(|iters| {
                use greenrt::sync::Event;
                let (ping, pong) = (
                    std::rc::Rc::new(Event::new()),
                    std::rc::Rc::new(Event::new()),
                );
                let (pi, po) = (ping.clone(), pong.clone());
                let start = Instant::now();
                let other = greenrt::spawn(move || {
                    for _ in 0..iters {
                        pi.wait();
                        pi.clear();
                        po.set();
                    }
                });
                for _ in 0..iters {
                    ping.set();
                    pong.wait();
                    pong.clear();
                }
                other.join().unwrap();
                start.elapsed()
            })
        },
    );
    group.bench_function("GreenPool(100) map of 100k trivial tasks (per task)", |b| {
        b.iter_custom(|iters| {
            let pool = greenrt::pool::GreenPool::new(100).unwrap();
            let mut total = Duration::ZERO;
            for _ in 0..iters.div_ceil(100_000) {
                let start = Instant::now();
                black_box(pool.map(|x: u64| x + 1, 0..100_000));
                total += start.elapsed();
            }
            total / (iters.div_ceil(100_000) * 100_000) as u32 * iters as u32
        })
    });
    group.bench_function("ThreadPool(2) submit + result", |b| {
        let pool = greenrt::thread_pool::ThreadPool::new(2).unwrap();
        b.iter(|| pool.submit(|| black_box(1u64)).result().unwrap());
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! { name = benches; config = config(); targets = switch, spawn_join, mutex, queue, sync_misc }
criterion_main!(benches);
