//! ipc::Queue's batches (`put_many`, `get_many`) and the two-sided design under load: many
//! producer and consumer processes on a small ring (so both sides sleep and wake), a batch
//! killed midway, a message that cannot be decoded in the middle of a batch.

mod util;

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use greenrt::ipc::{GetError, PutError, Queue, QueueBuilder};
use greenrt::process::Process;

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn smoke_a_batch_goes_in_and_comes_out_in_order() {
    let q: Queue<u32> = Queue::new(4096).unwrap();
    q.put_many(&[1, 2, 3, 4, 5]).unwrap();
    q.put(&6).unwrap();
    assert_eq!(q.len(), 6);
    assert_eq!(q.get_many(4).unwrap(), [1, 2, 3, 4]);
    assert_eq!(
        q.get_many(100).unwrap(),
        [5, 6],
        "takes what is there, not more"
    );
    assert!(q.is_empty());
}

/// Each put ends on a cache line (so a producer's next frame never shares a line with the
/// one a consumer reads): a 1024-byte ring takes 16 single puts of a small value, while
/// one `put_many` packs its frames end to end and pads once.
#[test]
fn each_put_ends_on_a_cache_line_and_a_batch_pads_once() {
    let q: Queue<u32> = Queue::new(1024).unwrap();
    let mut singles = 0;
    while q.try_put(&7).is_ok() {
        singles += 1;
    }
    assert_eq!(singles, 1024 / 64, "one line per put");
    for _ in 0..singles {
        assert_eq!(q.try_get().unwrap(), 7);
    }
    // 5 bytes a frame (4 of length, 1 of postcard): 200 frames fit in 1000 bytes.
    let batch = vec![7u32; 200];
    q.put_many(&batch).unwrap();
    assert_eq!(q.len(), 200);
    // 1000 bytes padded to 1024: a single put now waits for room.
    assert!(matches!(q.try_put(&7), Err(PutError::Full)));
    assert_eq!(q.get_many(1000).unwrap(), batch);
    // An odd-sized ring is not cut in lines: no padding at all.
    let odd: Queue<u32> = Queue::new(1000).unwrap();
    let mut packed = 0;
    while odd.try_put(&7).is_ok() {
        packed += 1;
    }
    assert_eq!(packed, 1000 / 5);
}

/// A batch larger than the ring goes in ring-full by ring-full while a consumer drains it.
#[test]
fn a_batch_larger_than_the_ring_waits_for_room_piece_by_piece() {
    let _t = turn();
    let q: Queue<u64> = Queue::new(256).unwrap();
    let items: Vec<u64> = (0..10_000).collect();
    let consumer = Process::spawn({
        let q = q.clone();
        move || {
            let mut next = 0u64;
            while next < 10_000 {
                for v in q.get_many(7).unwrap() {
                    assert_eq!(v, next, "out of order");
                    next += 1;
                }
            }
        }
    })
    .unwrap();
    q.put_many(&items).unwrap();
    assert!(consumer.join().unwrap().success());
    assert!(q.is_empty());
}

/// A value too large stops the batch there: the ones before it are in, the count says so.
#[test]
fn a_too_large_value_stops_the_batch_and_says_how_many_went_in() {
    let q: Queue<Vec<u8>> = QueueBuilder::new()
        .capacity(4096)
        .max_message(100)
        .build()
        .unwrap();
    let batch = vec![vec![1u8; 10], vec![2u8; 10], vec![3u8; 500], vec![4u8; 10]];
    let err = q.put_many(&batch).unwrap_err();
    assert_eq!(err.put, 2);
    assert!(
        matches!(err.error, PutError::TooLarge { max: 100, .. }),
        "{err:?}"
    );
    assert_eq!(q.get_many(10).unwrap(), [vec![1u8; 10], vec![2u8; 10]]);
}

/// A value that encodes fine but refuses to decode when it is 3: a message a getter cannot
/// read, made through the public API.
#[derive(Debug, PartialEq, serde::Serialize)]
struct Picky(u32);

impl<'de> serde::Deserialize<'de> for Picky {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Picky, D::Error> {
        match u32::deserialize(d)? {
            3 => Err(serde::de::Error::custom("three is refused")),
            n => Ok(Picky(n)),
        }
    }
}

/// A message that cannot be decoded in the middle of a batch is not skipped: `get_many`
/// returns the good ones before it, the next call returns its error (consuming it, as `get`
/// does), and the one after goes on.
#[test]
fn a_bad_message_in_a_batch_is_returned_as_an_error_not_skipped() {
    let q: Queue<Picky> = Queue::new(4096).unwrap();
    q.put_many(&[Picky(1), Picky(2), Picky(3), Picky(4)])
        .unwrap();
    assert_eq!(
        q.get_many(10).unwrap(),
        [Picky(1), Picky(2)],
        "the good ones before it"
    );
    match q.get_many(10) {
        Err(GetError::Io(e)) => assert!(e.to_string().contains("not a valid"), "{e}"),
        other => panic!("expected its error, got {other:?}"),
    }
    assert_eq!(q.get_many(10).unwrap(), [Picky(4)], "then the rest");
}

/// A single `get` of a message that cannot be decoded returns its error and consumes it
/// (the payload is decoded after the get side is let go, so the frame is already freed):
/// the count drops by one and the next `get` returns the message after it.
#[test]
fn a_get_of_a_bad_message_returns_its_error_and_the_next_get_goes_on() {
    let q: Queue<Picky> = Queue::new(4096).unwrap();
    q.put_many(&[Picky(2), Picky(3), Picky(4)]).unwrap();
    assert_eq!(q.get().unwrap(), Picky(2));
    match q.get() {
        Err(GetError::Io(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
            assert!(e.to_string().contains("not a valid"), "{e}");
        }
        other => panic!("expected its error, got {other:?}"),
    }
    assert_eq!(
        q.len(),
        1,
        "the bad message was consumed, the last one is left"
    );
    assert_eq!(q.get().unwrap(), Picky(4));
    assert!(matches!(q.try_get(), Err(GetError::Empty)));
}

/// A batch killed before it is published leaves nothing: not the first frame, not a torn one.
#[test]
fn a_batch_killed_before_publication_leaves_nothing() {
    let _t = turn();
    use greenrt::ipc::fault::{CrashPoint, kill_self_at};
    for point in [CrashPoint::PutMidCopy, CrashPoint::PutBeforeCommit] {
        let q: Queue<Vec<u8>> = Queue::new(64 * 1024).unwrap();
        q.put(&vec![0; 5]).unwrap();
        let child = Process::spawn({
            let q = q.clone();
            move || {
                kill_self_at(point, 1);
                let batch: Vec<Vec<u8>> = (0..20).map(|i| util::pattern(i, 300)).collect();
                let _ = q.put_many(&batch);
                unreachable!("the crash point was not reached");
            }
        })
        .unwrap();
        assert_eq!(child.join().unwrap().signal(), Some(9), "{point:?}");
        assert_eq!(
            q.get_many(100).unwrap(),
            [vec![0; 5]],
            "{point:?}: only what was there"
        );
        q.put_many(&[vec![1; 3], vec![2; 3]]).unwrap(); // the put side was repaired
        assert_eq!(
            q.get_many(100).unwrap(),
            [vec![1; 3], vec![2; 3]],
            "{point:?}"
        );
        assert_eq!(q.len(), 0, "{point:?}: the count was repaired too");
    }
}

/// Three producers and three consumers on a ring that holds a handful of messages: both
/// sides keep running out, sleep and are woken. Every message arrives once; nobody hangs
/// (the consumers end on `Closed`).
#[test]
fn three_producers_and_three_consumers_on_a_tiny_ring_lose_no_wake_up() {
    let _t = turn();
    const PER_PRODUCER: u64 = 20_000;
    let q: Queue<u64> = Queue::new(64).unwrap();
    let totals: Queue<(u64, u64)> = Queue::new(4096).unwrap();
    let consumers: Vec<Process> = (0..3)
        .map(|_| {
            let (q, totals) = (q.clone(), totals.clone());
            Process::spawn(move || {
                let (mut count, mut sum) = (0u64, 0u64);
                loop {
                    match q.get_many(5) {
                        Ok(values) => {
                            count += values.len() as u64;
                            sum += values.iter().sum::<u64>();
                        }
                        Err(GetError::Closed) => break,
                        Err(e) => panic!("{e}"),
                    }
                }
                totals.put(&(count, sum)).unwrap();
            })
            .unwrap()
        })
        .collect();
    let began = Instant::now();
    let producers: Vec<Process> = (0..3u64)
        .map(|p| {
            let q = q.clone();
            Process::spawn(move || {
                for i in 0..PER_PRODUCER {
                    let v = p * PER_PRODUCER + i;
                    if i % 2 == 0 {
                        q.put(&v).unwrap();
                    } else {
                        q.put_many(&[v]).unwrap();
                    }
                }
            })
            .unwrap()
        })
        .collect();
    for p in &producers {
        let ended = p.join_timeout(Duration::from_secs(30)).unwrap();
        assert!(
            ended.is_some_and(|s| s.success()),
            "a producer hung or failed"
        );
    }
    q.close().unwrap();
    for c in &consumers {
        let ended = c.join_timeout(Duration::from_secs(30)).unwrap();
        assert!(
            ended.is_some_and(|s| s.success()),
            "a consumer hung or failed"
        );
    }
    let (mut count, mut sum) = (0, 0);
    for _ in 0..3 {
        let (c, s) = totals.get().unwrap();
        count += c;
        sum += s;
    }
    let n = 3 * PER_PRODUCER;
    assert_eq!(count, n, "messages lost or doubled");
    assert_eq!(sum, n * (n - 1) / 2, "messages lost or doubled");
    eprintln!(
        "{n} messages through a 64-byte ring in {:?}",
        began.elapsed()
    );
}

/// `close` while a getter is on its way to sleep: the getter must see it. A getter process is
/// frozen (SIGSTOP) just after it found the queue empty and open, before it registers to
/// sleep; the close runs then (it bumps the word and wakes nobody, for nobody sleeps yet);
/// the getter goes on. Without a second look at `closed` after registering, it slept for
/// ever on a word that had already moved.
#[test]
fn a_close_between_a_getters_look_and_its_sleep_is_not_missed() {
    let _t = turn();
    use greenrt::ipc::fault::{CrashPoint, stop_self_at};
    let q: Queue<u32> = Queue::new(1024).unwrap();
    let getter = Process::spawn({
        let q = q.clone();
        move || {
            stop_self_at(CrashPoint::GetBeforeSleep, 1);
            assert!(matches!(q.get(), Err(GetError::Closed)));
        }
    })
    .unwrap();
    util::wait_stopped(getter.pid());
    q.close().unwrap();
    // SAFETY (test): signalling our own child.
    unsafe { libc::kill(getter.pid() as i32, libc::SIGCONT) };
    let ended = getter.join_timeout(Duration::from_secs(10)).unwrap();
    if ended.is_none() {
        let _ = getter.kill();
    }
    assert!(
        ended.is_some_and(|s| s.success()),
        "the getter slept through the close"
    );
}
