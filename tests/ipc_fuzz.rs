//! Shared memory written by another process is untrusted input. Every named object kind is
//! created, its file is scribbled on (targeted words, random bytes, truncation) and then
//! opened and used from a child process with a time limit: every case must end in a clean
//! `Ok` or `Err` — no panic, no signal, no hang. Bounded: a few hundred cases, a few seconds.

mod util;

use std::os::unix::fs::FileExt;
use std::time::Duration;

use greenrt::ipc::{
    Condition, Event, Lock, Queue, RLock, Semaphore, SharedDict, SharedList, Value,
};
use util::{Ended, in_child};

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

const SHORT: Duration = Duration::from_millis(20);

/// Each kind: how to create it under a name, and how to open and use it (timed calls only
/// where a forged "held" word could otherwise wait for a live process).
struct KindCase {
    name: &'static str,
    create: fn(&str) -> std::io::Result<()>,
    open_and_use: fn(&str) -> std::io::Result<()>,
}

fn kinds() -> Vec<KindCase> {
    vec![
        KindCase {
            name: "lock",
            create: |n| Lock::create(n).map(std::mem::forget),
            open_and_use: |n| {
                let l = Lock::open(n)?;
                let _ = l.lock_timeout(SHORT);
                let _ = l.try_lock();
                Ok(())
            },
        },
        KindCase {
            name: "rlock",
            create: |n| RLock::create(n).map(std::mem::forget),
            open_and_use: |n| {
                let l = RLock::open(n)?;
                let _ = l.lock_timeout(SHORT);
                Ok(())
            },
        },
        KindCase {
            name: "semaphore",
            create: |n| Semaphore::create(n, 2).map(std::mem::forget),
            open_and_use: |n| {
                let s = Semaphore::open(n)?;
                if let Some(p) = s.acquire_timeout(SHORT)? {
                    drop(p);
                }
                let _ = s.try_acquire()?;
                Ok(())
            },
        },
        KindCase {
            name: "event",
            create: |n| Event::create(n).map(std::mem::forget),
            open_and_use: |n| {
                let e = Event::open(n)?;
                e.set();
                let _ = e.wait_timeout(SHORT);
                e.clear();
                Ok(())
            },
        },
        KindCase {
            name: "condition",
            create: |n| Condition::create(n).map(std::mem::forget),
            open_and_use: |n| {
                let c = Condition::open(n)?;
                c.notify_all();
                Ok(())
            },
        },
        KindCase {
            name: "queue",
            create: |n| Queue::<u64>::create(n, 4096).map(std::mem::forget),
            open_and_use: |n| {
                let q = Queue::<u64>::open(n)?;
                let _ = q.put_timeout(&7, SHORT);
                let _ = q.get_timeout(SHORT);
                let _ = q.try_get();
                let _ = q.join_timeout(SHORT);
                Ok(())
            },
        },
        KindCase {
            name: "value",
            create: |n| Value::<u64>::create(n, 5).map(std::mem::forget),
            open_and_use: |n| {
                let v = Value::<u64>::open(n)?;
                let _ = v.lock_timeout(SHORT);
                Ok(())
            },
        },
        KindCase {
            name: "dict",
            create: |n| SharedDict::<String, u64>::create(n, 4096).map(std::mem::forget),
            open_and_use: |n| {
                let d = SharedDict::<String, u64>::open(n)?;
                let _ = d.get(&"a".to_string())?;
                let _ = d.insert(&"b".to_string(), &2)?;
                Ok(())
            },
        },
        KindCase {
            name: "list",
            create: |n| SharedList::<u64>::create(n, 4096).map(std::mem::forget),
            open_and_use: |n| {
                let l = SharedList::<u64>::open(n)?;
                l.push(&1)?;
                let _ = l.get(0)?;
                Ok(())
            },
        },
    ]
}

/// A tiny deterministic generator (xorshift), so a failing case can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn file_of(name: &str) -> String {
    format!("/dev/shm/greenrt.{name}")
}

/// Writes `bytes` at `offset` of the object's file.
fn scribble(name: &str, offset: u64, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(file_of(name))
        .unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

/// One case: a fresh object, damaged by `damage`, then opened and used in a child.
fn case(kind: &KindCase, tag: &str, damage: impl FnOnce(&str, u64)) -> Result<(), String> {
    let name = format!("fuzz-{}-{}-{tag}", std::process::id(), kind.name);
    let _ = std::fs::remove_file(file_of(&name));
    (kind.create)(&name).unwrap();
    let len = std::fs::metadata(file_of(&name)).unwrap().len();
    damage(&name, len);
    let use_it = kind.open_and_use;
    let n = name.clone();
    let ended = in_child(5, move || {
        let _ = use_it(&n);
        0
    });
    let _ = std::fs::remove_file(file_of(&name));
    match ended {
        Ended::Exited(0) => Ok(()),
        other => Err(format!("{} {tag}: {other:?}", kind.name)),
    }
}

#[test]
fn smoke_an_undamaged_object_opens_and_works() {
    let _t = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for kind in kinds() {
        case(&kind, "intact", |_, _| {}).unwrap();
    }
}

#[test]
fn targeted_words_random_bytes_and_truncation_end_in_clean_errors() {
    let _t = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut failures = Vec::new();
    let mut cases = 0;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for kind in kinds() {
        // Every 8-byte word of the header and the first part of the body, set to values a
        // careless reader would trust: all ones, the top bit, a huge length.
        for offset in (0..256u64).step_by(8) {
            for (v, value) in [u64::MAX, 1 << 63, 0x7fff_ffff_ffff_ffff, 0xffff_ffff]
                .iter()
                .enumerate()
            {
                cases += 1;
                let tag = format!("w{offset}v{v}");
                if let Err(e) = case(&kind, &tag, |n, _| {
                    scribble(n, offset, &value.to_le_bytes())
                }) {
                    failures.push(e);
                }
            }
        }
        // Random bytes at random places of the first page.
        for i in 0..12 {
            let (offset, word) = (rng.next() % 4096, rng.next().to_le_bytes());
            cases += 1;
            if let Err(e) = case(&kind, &format!("r{i}"), |n, _| scribble(n, offset, &word)) {
                failures.push(e);
            }
        }
        // Truncated: the header stays, the body is cut short (or gone).
        for cut in [64u64, 65, 128, 200] {
            cases += 1;
            if let Err(e) = case(&kind, &format!("t{cut}"), |n, len| {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(file_of(n))
                    .unwrap();
                f.set_len(cut.min(len - 1)).unwrap();
            }) {
                failures.push(e);
            }
        }
        // Forged short: a valid header that agrees with a body too short for the layout
        // (the header's `len` is at offset 16): `open` must refuse it, not a later use.
        for body in [0u64, 8, 24] {
            cases += 1;
            if let Err(e) = case(&kind, &format!("f{body}"), |n, _| {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(file_of(n))
                    .unwrap();
                f.set_len(64 + body).unwrap();
                f.write_all_at(&(64 + body).to_le_bytes(), 16).unwrap();
            }) {
                failures.push(e);
            }
        }
    }
    eprintln!(
        "{cases} damaged objects opened and used, {} failures",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed: {failures:#?}",
        failures.len()
    );
}

#[test]
fn a_forged_short_object_is_invalid_data_at_open() {
    let _t = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let name = format!("fuzz-{}-short-queue", std::process::id());
    let _ = std::fs::remove_file(file_of(&name));
    let q = Queue::<u64>::create(&name, 4096).unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(file_of(&name))
        .unwrap();
    f.set_len(64 + 8).unwrap();
    f.write_all_at(&(64u64 + 8).to_le_bytes(), 16).unwrap();
    let err = Queue::<u64>::open(&name).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("too short"), "{err}");
    drop(q);
}
