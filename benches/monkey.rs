//! The cost of the monkey hooks on a ready socket: a 64-byte write + read through a Unix
//! socket pair, by a green thread, patched vs unpatched, in one run. The goal is patched at
//! most 1.05x unpatched (both make the same two system calls when the socket is ready).
//!
//! Criterion measures one variant after the other, so a machine that gets busier halfway
//! skews their ratio; the run therefore starts with an *interleaved* measurement — rounds of
//! unpatched and patched alternately — and prints the median of the per-pair ratios.
//!
//! `cargo bench --features monkey --bench monkey`

use std::hint::black_box;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};

fn round(iters: u64, patched: bool) -> Duration {
    if patched {
        greenrt::monkey::patch_all();
    } else {
        greenrt::monkey::unpatch_all();
    }
    let h = greenrt::spawn(move || {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let msg = [7u8; 64];
        let mut buf = [0u8; 64];
        let start = Instant::now();
        for _ in 0..iters {
            a.write_all(&msg).unwrap();
            b.read_exact(&mut buf).unwrap();
            black_box(&buf);
        }
        start.elapsed()
    });
    h.join().unwrap()
}

fn hooks(c: &mut Criterion) {
    let mut group = c.benchmark_group("ready_socket_write_read");
    group.bench_function("unpatched (real calls)", |b| {
        b.iter_custom(|n| round(n, false))
    });
    group.bench_function("patched (hooked, green thread)", |b| {
        b.iter_custom(|n| round(n, true))
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

/// Alternating rounds of 20,000 write+read pairs; prints the median patched/unpatched ratio.
fn interleaved() {
    const PAIRS: usize = 21;
    const ITERS: u64 = 20_000;
    round(ITERS, false); // warm up both paths
    round(ITERS, true);
    let mut ratios: Vec<f64> = (0..PAIRS)
        .map(|_| {
            let plain = round(ITERS, false).as_secs_f64();
            let hooked = round(ITERS, true).as_secs_f64();
            hooked / plain
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    println!(
        "interleaved: patched/unpatched median {:.3}x (min {:.3}x, max {:.3}x) over {PAIRS} pairs of {ITERS}",
        ratios[PAIRS / 2],
        ratios[0],
        ratios[PAIRS - 1]
    );
}

criterion_group! { name = benches; config = config(); targets = hooks }

fn main() {
    interleaved();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
