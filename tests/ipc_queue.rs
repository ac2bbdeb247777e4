//! ipc::Queue: FIFO with wrap-around, many processes, limits, task_done/join, close, green
//! waiting, and producers and consumers killed with SIGKILL at random instants.

mod util;

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use greenrt::ipc::{Array, GetError, LockError, PutError, Queue, QueueBuilder};
use greenrt::process::Process;

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn fifo_of_variable_sizes_wraps_around_a_small_ring() {
    let q: Queue<Vec<u8>> = Queue::new(1000).unwrap();
    let mut expected = std::collections::VecDeque::new();
    let mut rng = 12345u64;
    for i in 0..5000u64 {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = (rng >> 33) as usize % 300;
        let msg = util::pattern(i, len);
        match q.try_put(&msg) {
            Ok(()) => expected.push_back(msg),
            Err(PutError::Full) => {
                // Drain a few and go on: the ring wraps at every byte offset sooner or later.
                for _ in 0..3 {
                    if let Some(want) = expected.pop_front() {
                        assert_eq!(q.try_get().unwrap(), want);
                    }
                }
            }
            Err(e) => panic!("{e}"),
        }
        assert_eq!(q.qsize(), expected.len());
    }
    while let Some(want) = expected.pop_front() {
        assert_eq!(q.get().unwrap(), want);
    }
    assert!(matches!(q.try_get(), Err(GetError::Empty)));
}

#[test]
fn many_producers_and_consumers_across_processes_deliver_each_message_once_in_order() {
    let _t = turn();
    let q: Queue<(u32, u32)> = Queue::new(4096).unwrap();
    let results: Queue<Vec<(u32, u32)>> = Queue::new(1 << 20).unwrap();
    const N: u32 = 3000;
    let producers: Vec<_> = (0..3u32)
        .map(|p| {
            let q = q.clone();
            Process::spawn(move || (0..N).for_each(|i| q.put(&(p, i)).unwrap())).unwrap()
        })
        .collect();
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let (q, results) = (q.clone(), results.clone());
            Process::spawn(move || {
                let mut got = Vec::new();
                while let Ok(item) = q.get() {
                    got.push(item);
                }
                results.put(&got).unwrap();
            })
            .unwrap()
        })
        .collect();
    for p in producers {
        assert!(p.join().unwrap().success());
    }
    q.close().unwrap();
    let mut seen: HashMap<u32, Vec<u32>> = HashMap::new();
    for c in consumers {
        assert!(c.join().unwrap().success());
        let got = results.get().unwrap();
        let mut last: HashMap<u32, u32> = HashMap::new();
        for (p, i) in got {
            // FIFO: one consumer sees each producer's messages in increasing order.
            if let Some(prev) = last.insert(p, i) {
                assert!(i > prev, "producer {p}: {i} after {prev}");
            }
            seen.entry(p).or_default().push(i);
        }
    }
    for p in 0..3 {
        let mut v = seen.remove(&p).unwrap();
        v.sort_unstable();
        assert_eq!(
            v,
            (0..N).collect::<Vec<_>>(),
            "producer {p}: each message exactly once"
        );
    }
}

#[test]
fn oversize_messages_are_refused_and_nothing_is_written() {
    let q: Queue<Vec<u8>> = QueueBuilder::new()
        .capacity(4096)
        .max_message(100)
        .build()
        .unwrap();
    q.put(&vec![1; 10]).unwrap();
    match q.put(&vec![0; 200]) {
        Err(PutError::TooLarge { size, max }) => assert_eq!((size, max), (202, 100)),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(q.qsize(), 1);
    assert_eq!(q.get().unwrap(), vec![1; 10]);
    assert!(
        QueueBuilder::new()
            .capacity(64)
            .max_message(100)
            .build::<u8>()
            .is_err()
    );
    assert!(Queue::<u8>::new(4).is_err());
}

#[test]
fn timeouts_are_hard_limits() {
    let q: Queue<u64> = Queue::new(64).unwrap();
    let start = Instant::now();
    assert!(matches!(
        q.get_timeout(Duration::from_millis(40)),
        Err(GetError::Empty)
    ));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(40) && took < Duration::from_millis(500),
        "{took:?}"
    );
    while q.try_put(&7).is_ok() {}
    let start = Instant::now();
    assert!(matches!(
        q.put_timeout(&7, Duration::from_millis(40)),
        Err(PutError::Full)
    ));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(40) && took < Duration::from_millis(500),
        "{took:?}"
    );
}

#[test]
fn task_done_and_join_across_processes() {
    let _t = turn();
    let q: Queue<u32> = Queue::new(4096).unwrap();
    for i in 0..50 {
        q.put(&i).unwrap();
    }
    assert!(!q.join_timeout(Duration::from_millis(10)).unwrap());
    let worker = Process::spawn({
        let q = q.clone();
        move || {
            for _ in 0..50 {
                q.get().unwrap();
                std::thread::sleep(Duration::from_micros(200));
                q.task_done().unwrap().unwrap();
            }
        }
    })
    .unwrap();
    q.join().unwrap();
    assert!(worker.join().unwrap().success());
    assert_eq!(q.task_done().unwrap(), Err(greenrt::ipc::TaskDoneTooOften));
}

#[test]
fn close_wakes_waiters_and_drains() {
    let q: Queue<u32> = Queue::new(4096).unwrap();
    let waiting = {
        let q = q.clone();
        greenrt::spawn(move || matches!(q.get(), Err(GetError::Closed)))
    };
    greenrt::sleep(Duration::from_millis(20));
    q.put(&1).unwrap_or_else(|e| panic!("{e}"));
    // The waiter took 1? No: it is still parked only if it started before the put. Either
    // way, after close every get ends.
    q.close().unwrap();
    let took_closed = waiting.join().unwrap();
    assert!(matches!(q.put(&2), Err(PutError::Closed)));
    if took_closed {
        assert_eq!(q.get().unwrap(), 1, "close still lets gets drain");
    }
    assert!(matches!(q.get(), Err(GetError::Closed)));
    assert!(q.is_closed());
}

#[test]
fn green_consumer_parks_only_itself() {
    let _t = turn();
    let q: Queue<String> = Queue::new(4096).unwrap();
    let producer = Process::spawn({
        let q = q.clone();
        move || {
            std::thread::sleep(Duration::from_millis(300));
            q.put(&"late".to_string()).unwrap();
        }
    })
    .unwrap();
    let ticker = util::Ticker::start(20, Duration::from_millis(10));
    let consumer = greenrt::spawn({
        let q = q.clone();
        move || q.get().unwrap()
    });
    assert_eq!(consumer.join().unwrap(), "late");
    assert_eq!(ticker.finish(), 20);
    assert!(producer.join().unwrap().success());
}

#[test]
fn named_queue_checks_its_item_type() {
    let name = format!("test-queue-{}", std::process::id());
    let q: Queue<u64> = Queue::create(&name, 1024).unwrap();
    q.put(&5).unwrap();
    let same: Queue<u64> = Queue::open(&name).unwrap();
    assert_eq!(same.get().unwrap(), 5);
    let err = Queue::<String>::open(&name).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}

#[test]
fn corrupt_indices_are_invalid_data() {
    let name = format!("test-queue-corrupt-{}", std::process::id());
    let q: Queue<u64> = Queue::create(&name, 1024).unwrap();
    q.put(&5).unwrap();
    // Overwrite everything after the lock word (seqs, counts, capacity, head, tail...) with
    // 0xff bytes, as a rogue process might.
    let path = format!("/dev/shm/greenrt.{name}");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[64 + 4..64 + 200].fill(0xff);
    std::fs::write(&path, &bytes).unwrap();
    match q.try_get() {
        Err(GetError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidData),
        other => panic!("expected InvalidData, got {other:?}"),
    }
    match q.try_put(&1) {
        Err(PutError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidData),
        other => panic!("expected InvalidData, got {other:?}"),
    }
}

/// A message whose payload proves it is whole: made from (incarnation, seq).
fn payload(inc: u32, seq: u32) -> Vec<u8> {
    let len = (seq as usize * 7919 + inc as usize * 31) % 700;
    util::pattern(u64::from(inc) << 32 | u64::from(seq), len)
}

const INCARNATIONS: usize = 400;
const SEQS: usize = 4096;

fn spawn_producer(q: &Queue<(u32, u32, Vec<u8>)>, returned: &Array<u32>, inc: u32) -> Process {
    let (q, returned) = (q.clone(), returned.clone());
    Process::spawn(move || {
        for seq in 0..SEQS as u32 {
            q.put(&(inc, seq, payload(inc, seq))).unwrap();
            // Recorded only after put returned: "every message whose put returned".
            returned.lock().or_else(LockError::recover).unwrap()[inc as usize] = seq + 1;
        }
    })
    .unwrap()
}

fn spawn_consumer(q: &Queue<(u32, u32, Vec<u8>)>, seen: &Array<u8>) -> Process {
    let (q, seen) = (q.clone(), seen.clone());
    Process::spawn(move || {
        while let Ok((inc, seq, data)) = q.get() {
            assert_eq!(data, payload(inc, seq), "a torn or corrupt message");
            let mut s = seen.lock().or_else(LockError::recover).unwrap();
            s[inc as usize * SEQS + seq as usize] += 1;
        }
    })
    .unwrap()
}

#[test]
fn kill_9_storm_never_loses_tears_duplicates_or_deadlocks() {
    let _t = turn();
    let q: Queue<(u32, u32, Vec<u8>)> = Queue::new(16 * 1024).unwrap();
    let returned = Array::<u32>::new(INCARNATIONS).unwrap();
    let seen = Array::<u8>::new(INCARNATIONS * SEQS).unwrap();
    let mut next_inc = 0u32;
    let mut producers: Vec<(u32, Process)> = Vec::new();
    let mut consumers: Vec<Process> = Vec::new();
    let mut consumer_kills = 0;
    let mut rng = 0x9e3779b97f4a7c15u64;
    let end = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < end && (next_inc as usize) < INCARNATIONS - 4 {
        while producers.len() < 3 {
            producers.push((next_inc, spawn_producer(&q, &returned, next_inc)));
            next_inc += 1;
        }
        while consumers.len() < 3 {
            consumers.push(spawn_consumer(&q, &seen));
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_micros(2000 + rng % 20_000));
        let victim = (rng >> 20) as usize % 6;
        if victim < 3 {
            let (_, p) = producers.remove(victim);
            p.kill().unwrap();
            p.join().unwrap();
        } else {
            let c = consumers.remove(victim - 3);
            c.kill().unwrap();
            let status = c.join().unwrap();
            assert!(
                status.signal().is_some() || status.success(),
                "consumer failed: {status:?}"
            );
            consumer_kills += 1;
        }
    }
    for (_, p) in producers.drain(..) {
        p.kill().unwrap();
        p.join().unwrap();
    }
    q.close().unwrap();
    for c in consumers.drain(..) {
        // Survivors drain the queue and stop at Closed: no deadlock.
        let status = c
            .join_timeout(Duration::from_secs(20))
            .unwrap()
            .expect("a consumer hung");
        assert!(status.success(), "consumer failed: {status:?}");
    }
    while let Ok((inc, seq, data)) = q.try_get() {
        assert_eq!(data, payload(inc, seq));
        seen.lock().unwrap()[inc as usize * SEQS + seq as usize] += 1;
    }
    let seen = seen.to_vec().unwrap();
    let returned = returned.to_vec().unwrap();
    assert!(
        seen.iter().all(|&n| n <= 1),
        "a message was delivered twice"
    );
    let mut lost = 0;
    let mut delivered = 0;
    for inc in 0..next_inc as usize {
        for seq in 0..returned[inc] as usize {
            match seen[inc * SEQS + seq] {
                0 => lost += 1,
                _ => delivered += 1,
            }
        }
    }
    // A consumer killed after its get returned took at most one message with it.
    assert!(
        lost <= consumer_kills,
        "{lost} returned puts never delivered ({consumer_kills} consumer kills)"
    );
    assert!(
        delivered > 1000,
        "the storm moved only {delivered} messages"
    );
    eprintln!(
        "storm: {next_inc} producer incarnations, {consumer_kills} consumer kills, {delivered} delivered, {lost} taken by killed consumers"
    );
}

/// A child puts `returned` messages, then is killed at `point` inside put number
/// `returned + 1`, or inside its first get.
fn crash_child(q: &Queue<Vec<u8>>, point: greenrt::ipc::fault::CrashPoint, returned: u32) {
    let q = q.clone();
    let child = Process::spawn(move || {
        use greenrt::ipc::fault::{CrashPoint, kill_self_at};
        match point {
            CrashPoint::GetBeforeCommit => {
                kill_self_at(point, 1);
                let _ = q.get();
            }
            _ => {
                kill_self_at(point, u64::from(returned) + 1);
                for i in 0..=returned {
                    q.put(&util::pattern(u64::from(i), 300)).unwrap();
                }
            }
        }
        unreachable!("the crash point was not reached");
    })
    .unwrap();
    let status = child.join().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the child died at the crash point"
    );
}

#[test]
fn a_put_killed_midway_is_invisible_and_the_queue_goes_on() {
    let _t = turn();
    use greenrt::ipc::fault::CrashPoint;
    for point in [CrashPoint::PutMidCopy, CrashPoint::PutBeforeCommit] {
        let q: Queue<Vec<u8>> = Queue::new(4096).unwrap();
        crash_child(&q, point, 3);
        // The three puts that returned are there, whole; the fourth is not, torn or whole.
        for i in 0..3 {
            assert_eq!(q.try_get().unwrap(), util::pattern(i, 300), "{point:?}");
        }
        assert!(matches!(q.try_get(), Err(GetError::Empty)), "{point:?}");
        q.put(&vec![9; 10]).unwrap();
        assert_eq!(q.get().unwrap(), vec![9; 10]);
    }
}

#[test]
fn a_get_killed_midway_leaves_the_message_for_the_next_consumer() {
    let _t = turn();
    let q: Queue<Vec<u8>> = Queue::new(4096).unwrap();
    q.put(&util::pattern(1, 300)).unwrap();
    q.put(&util::pattern(2, 300)).unwrap();
    crash_child(&q, greenrt::ipc::fault::CrashPoint::GetBeforeCommit, 0);
    assert_eq!(q.qsize(), 2);
    assert_eq!(q.try_get().unwrap(), util::pattern(1, 300));
    assert_eq!(q.try_get().unwrap(), util::pattern(2, 300));
    assert!(matches!(q.try_get(), Err(GetError::Empty)));
}
