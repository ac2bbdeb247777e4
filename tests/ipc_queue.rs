//! ipc::Queue: FIFO with wrap-around, many processes, limits, task_done/join, close, green
//! waiting, and producers and consumers killed with SIGKILL at random instants.

#[path = "../examples/common/rng.rs"]
mod rng;
#[path = "../examples/common/ipc_storm.rs"]
mod storm;
mod util;

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use greenrt::ipc::{GetError, PutError, Queue, QueueBuilder};
use greenrt::process::Process;

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn fifo_of_variable_sizes_wraps_around_a_small_ring() {
    // 1000 bytes: frames packed end to end. 1024 and 1088: rings cut in cache lines, where
    // each put ends on a line boundary when the padding fits (and not when it does not).
    for capacity in [1000, 1024, 1088] {
        fifo_of_variable_sizes(capacity);
    }
}

fn fifo_of_variable_sizes(capacity: usize) {
    let q: Queue<Vec<u8>> = Queue::new(capacity).unwrap();
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
                q.task_done().unwrap();
            }
        }
    })
    .unwrap();
    q.join().unwrap();
    assert!(worker.join().unwrap().success());
    let err = q.task_done().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(
        err.get_ref()
            .and_then(|e| e.downcast_ref::<greenrt::ipc::TaskDoneTooOften>()),
        Some(&greenrt::ipc::TaskDoneTooOften)
    );
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
fn a_forged_padding_flag_is_invalid_data() {
    // A 1000-byte ring is not cut in cache lines: no put pads, so a frame whose length
    // prefix claims padding (bit 31) sends the next frame past the tail.
    let name = format!("test-queue-pad-{}", std::process::id());
    let q: Queue<u64> = Queue::create(&name, 1000).unwrap();
    q.put(&5).unwrap();
    let path = format!("/dev/shm/greenrt.{name}");
    let mut bytes = std::fs::read(&path).unwrap();
    let frame = [1, 0, 0, 0, 5]; // length 1, then postcard's 5
    let at = bytes
        .windows(frame.len())
        .position(|w| w == frame)
        .expect("the frame is in the file");
    bytes[at + 3] |= 0x80;
    std::fs::write(&path, &bytes).unwrap();
    match q.try_get() {
        Err(GetError::Io(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
            assert!(e.to_string().contains("padding past the tail"), "{e}");
        }
        other => panic!("expected InvalidData, got {other:?}"),
    }
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

#[test]
fn kill_9_storm_never_loses_tears_duplicates_or_deadlocks() {
    let _t = turn();
    let r = storm::queue_storm(2.5, 3, 0x9e37_79b9_7f4a_7c15).unwrap();
    eprintln!("{r:?}");
    assert_eq!(r.duplicates, 0, "a message was delivered twice");
    assert_eq!(
        r.failed_consumers, 0,
        "a consumer saw a torn message or failed"
    );
    assert_eq!(r.hung_consumers, 0, "a surviving consumer hung");
    // A consumer killed after its get returned took at most one message with it.
    assert!(
        r.lost <= r.consumer_kills,
        "{} returned puts never delivered",
        r.lost
    );
    assert!(
        r.delivered > 1000,
        "the storm moved only {} messages",
        r.delivered
    );
}

#[test]
fn lock_storm_kills_holders_and_the_lock_survives() {
    let _t = turn();
    let r = storm::lock_storm(1.5, 3, 42).unwrap();
    eprintln!("{r:?}");
    assert_eq!(r.overlaps, 0, "two holders at once");
    assert!(r.kills > 20 && r.entries > 1000, "{r:?}");
    assert!(r.recoveries <= r.kills as u64, "{r:?}");
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

/// An ipc queue iterates across processes until it is closed and drained: every message, in
/// order, then the end (not a hang); `try_iter` takes what is there now.
#[test]
fn an_ipc_queue_iterates_until_closed() {
    let q: Queue<u64> = Queue::new(64 * 1024).unwrap();
    q.put(&7).unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q.try_iter().map(Result::unwrap).collect::<Vec<_>>(), [7]);
    let child = greenrt::process::Process::spawn({
        let q = q.clone();
        move || {
            for i in 0..100u64 {
                q.put(&i).unwrap();
            }
            q.close().unwrap();
        }
    })
    .unwrap();
    let got: Vec<u64> = (&q).into_iter().collect::<std::io::Result<_>>().unwrap();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    assert!(child.join().unwrap().success());
}
