//! Shared memory written by another process is untrusted input: a fuzz of every named
//! object kind, shared by `tests/ipc_fuzz.rs` (a fixed set of cases and a short random run)
//! and `stress` (a longer random run). Each case creates an object, scribbles on its file
//! (targeted words, random bytes, truncation, a forged short body) and then opens and uses it
//! from a child process with a time limit: every case must end in a clean `Ok` or `Err` —
//! no panic, no signal, no hang.

#![allow(dead_code)]

use crate::rng::Rng;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use greenrt::ipc::{
    Barrier, Condition, Event, Lock, Queue, RLock, Semaphore, SharedDict, SharedList, Value,
};
use greenrt::process::Process;

/// Timed calls in the children wait this long (a forged "held" word must not hang them).
const SHORT: Duration = Duration::from_millis(20);
/// A child that has not finished after this long hangs.
const LIMIT: Duration = Duration::from_secs(5);

/// What a fuzz run did: how many cases, and each one that failed.
#[derive(Debug, Default)]
pub struct Fuzz {
    pub cases: usize,
    pub failures: Vec<String>,
}

impl Fuzz {
    fn run(&mut self, outcome: Result<(), String>) {
        self.cases += 1;
        if let Err(e) = outcome {
            self.failures.push(e);
        }
    }
}

/// Each kind: how to create it under a name, and how to open and use it (timed calls only
/// where a forged "held" word could otherwise wait for a live process).
pub struct KindCase {
    pub name: &'static str,
    pub create: fn(&str) -> std::io::Result<()>,
    pub open_and_use: fn(&str) -> std::io::Result<()>,
}

pub fn kinds() -> Vec<KindCase> {
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
            name: "barrier",
            create: |n| Barrier::create(n, 2).map(std::mem::forget),
            open_and_use: |n| {
                let b = Barrier::open(n)?;
                let _ = b.wait_timeout(SHORT); // the other party never comes: broken
                b.reset()?;
                let _ = b.n_waiting();
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

pub fn file_of(name: &str) -> String {
    format!("/dev/shm/greenrt.{name}")
}

/// Writes `bytes` at `offset` of the object's file.
pub fn scribble(name: &str, offset: u64, bytes: &[u8]) {
    if let Ok(f) = std::fs::OpenOptions::new().write(true).open(file_of(name)) {
        let _ = f.write_all_at(bytes, offset);
    }
}

/// Cuts the object's file to `len` bytes.
pub fn truncate(name: &str, len: u64) {
    if let Ok(f) = std::fs::OpenOptions::new().write(true).open(file_of(name)) {
        let _ = f.set_len(len);
    }
}

/// One case: a fresh object, damaged by `damage`, then opened and used in a child process
/// with a time limit. `Err` names the case and how the child failed.
pub fn case(kind: &KindCase, tag: &str, damage: impl FnOnce(&str, u64)) -> Result<(), String> {
    let name = format!("fuzz-{}-{}-{tag}", std::process::id(), kind.name);
    let _ = std::fs::remove_file(file_of(&name));
    (kind.create)(&name).map_err(|e| format!("{} {tag}: create: {e}", kind.name))?;
    let len = std::fs::metadata(file_of(&name)).map_or(0, |m| m.len());
    damage(&name, len);
    let use_it = kind.open_and_use;
    let n = name.clone();
    let ended = Process::spawn(move || {
        let _ = use_it(&n);
    })
    .map_err(|e| format!("{} {tag}: spawn: {e}", kind.name))
    .and_then(|child| watch(&child, LIMIT).map_err(|how| format!("{} {tag}: {how}", kind.name)));
    let _ = std::fs::remove_file(file_of(&name));
    ended
}

/// Waits for `child` at most `limit`: `Ok` if it returned normally, else how it ended (a
/// panic exits 1, a fault is a signal, a hang is killed).
fn watch(child: &Process, limit: Duration) -> Result<(), String> {
    match child.join_timeout(limit) {
        Ok(Some(status)) if status.success() => Ok(()),
        Ok(Some(status)) => Err(format!("the child ended {status}")),
        Ok(None) => {
            let _ = child.kill();
            let _ = child.join();
            Err(format!("the child hung for {limit:?}"))
        }
        Err(e) => Err(format!("join: {e}")),
    }
}

/// The fixed cases, for every kind: every 8-byte word of the header and the first part of
/// the body set to values a careless reader would trust (all ones, the top bit, a huge
/// length); random bytes at random places of the first page; the body cut short; a valid
/// header that agrees with a body too short for the layout (`open` must refuse it).
pub fn fixed_cases() -> Fuzz {
    let mut fuzz = Fuzz::default();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for kind in kinds() {
        for offset in (0..256u64).step_by(8) {
            for (v, value) in [u64::MAX, 1 << 63, 0x7fff_ffff_ffff_ffff, 0xffff_ffff]
                .iter()
                .enumerate()
            {
                let tag = format!("w{offset}v{v}");
                fuzz.run(case(&kind, &tag, |n, _| {
                    scribble(n, offset, &value.to_le_bytes())
                }));
            }
        }
        for i in 0..12 {
            let (offset, word) = (rng.next() % 4096, rng.next().to_le_bytes());
            fuzz.run(case(&kind, &format!("r{i}"), |n, _| {
                scribble(n, offset, &word)
            }));
        }
        for cut in [64u64, 65, 128, 200] {
            fuzz.run(case(&kind, &format!("t{cut}"), |n, len| {
                truncate(n, cut.min(len - 1))
            }));
        }
        // The header's `len` is at offset 16.
        for body in [0u64, 8, 24] {
            fuzz.run(case(&kind, &format!("f{body}"), |n, _| {
                truncate(n, 64 + body);
                scribble(n, 16, &(64 + body).to_le_bytes());
            }));
        }
    }
    fuzz
}

/// Random cases for `secs` (replayable from `seed`): a random kind, then one to four random
/// damages anywhere in its file — a word of a trusted-looking value at an aligned offset, a
/// run of random bytes, or a cut to a random length.
pub fn random_cases(secs: f64, seed: u64) -> Fuzz {
    let mut fuzz = Fuzz::default();
    let mut rng = Rng(seed | 1);
    let kinds = kinds();
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        let kind = &kinds[(rng.next() % kinds.len() as u64) as usize];
        let damages = 1 + rng.next() % 4;
        let case_seed = rng.next();
        let tag = format!("s{case_seed:x}");
        fuzz.run(case(kind, &tag, |n, len| {
            let mut rng = Rng(case_seed | 1);
            for _ in 0..damages {
                damage_randomly(&mut rng, n, len);
            }
        }));
    }
    fuzz
}

fn damage_randomly(rng: &mut Rng, name: &str, len: u64) {
    let len = len.max(1);
    match rng.next() % 3 {
        0 => {
            let values = [
                u64::MAX,
                1 << 63,
                0xffff_ffff,
                0,
                1,
                len,
                len + 1,
                rng.next(),
            ];
            let value = values[(rng.next() % values.len() as u64) as usize];
            let offset = (rng.next() % len) & !7;
            scribble(name, offset, &value.to_le_bytes());
        }
        1 => {
            let bytes: Vec<u8> = (0..1 + rng.next() % 64).map(|_| rng.next() as u8).collect();
            scribble(name, rng.next() % len, &bytes);
        }
        _ => truncate(name, rng.next() % len),
    }
}
