//! A SIGSTOP storm against the ipc primitives, shared by `stress` and `tests/ipc_deadlines.rs`:
//! the deadline rule under attack.
//!
//! *Victim* processes hammer one `ipc::Queue`, one `ipc::Semaphore` and one `ipc::Lock` while
//! they are frozen for 50–200 ms at a time: by SIGSTOP from outside at random moments, and by
//! themselves at armed points *inside* a critical section, holding the queue's or the
//! semaphore's internal lock (`ipc::fault::stop_self_at`) — the moment a random SIGSTOP almost
//! never hits. *Observer* processes, never frozen, make timed and `try_*` calls on the same
//! objects from two green threads each and measure how far each call overran its deadline
//! (a `try_*` call's deadline is "now"). The rule: no call overruns by more than scheduling
//! noise, whatever the frozen processes hold.

#![allow(dead_code)]

use crate::rng::Rng;
use std::io;
use std::time::{Duration, Instant};

use greenrt::ipc::fault::{CrashPoint, stop_self_at};
use greenrt::ipc::{Event, Lock, Queue, Semaphore};
use greenrt::process::Process;

/// What a freeze storm did and found.
#[derive(Debug, Default)]
pub struct FreezeStorm {
    /// Victims frozen by SIGSTOP from outside.
    pub outside_freezes: usize,
    /// Victims that froze themselves inside a critical section.
    pub inside_freezes: usize,
    /// Timed and `try_*` calls the observers made.
    pub calls: u64,
    /// The largest overrun of a deadline seen.
    pub max_overrun: Duration,
    /// Calls that overran their deadline by more than `late` (the storm's argument).
    pub late: u64,
    /// Observer or victim processes that failed (a panic or a signal other than ours).
    pub failed: usize,
    pub secs: f64,
}

/// The objects every process of a storm shares.
#[derive(Clone)]
struct Shared {
    queue: Queue<u64>,
    semaphore: Semaphore,
    lock: Lock,
    stop: Event,
}

/// Stopped processes risk POSIX's orphaned-process-group rule: when a process group loses its
/// last link to a parent outside it while a member is stopped, the kernel sends every member
/// SIGHUP (then SIGCONT). Whether that happens depends on how the test was launched (a
/// backgrounded shell loop did it: two stopped victims died of signal 1), not on greenrt, so
/// the storm's processes ignore SIGHUP.
fn ignore_hangups() {
    // SAFETY: setting SIGHUP's disposition to "ignore" in this (child) process only.
    unsafe { libc::signal(libc::SIGHUP, libc::SIG_IGN) };
}

/// A victim: random operations with short holds; now and then it arms a freeze of itself
/// inside the next queue or semaphore critical section.
fn victim(s: &Shared, seed: u64) {
    ignore_hangups();
    let mut rng = Rng(seed | 1);
    let wait = Duration::from_millis(20);
    let mut n = 0u64;
    while !s.stop.is_set() {
        if rng.below(40) == 0 {
            let point = match rng.below(3) {
                0 => CrashPoint::PutBeforeCommit,
                1 => CrashPoint::GetBeforeCommit,
                _ => CrashPoint::SemaphoreBeforeCommit,
            };
            stop_self_at(point, 1 + rng.below(4));
        }
        let hold = Duration::from_micros(rng.below(2000));
        match rng.below(4) {
            0 => drop(s.queue.put_timeout(&n, wait)),
            1 => drop(s.queue.get_timeout(wait)),
            2 => {
                if let Ok(Some(_permit)) = s.semaphore.acquire_timeout(wait) {
                    std::thread::sleep(hold);
                }
            }
            _ => {
                if let Ok(_guard) = s.lock.lock_timeout(wait) {
                    std::thread::sleep(hold);
                }
            }
        }
        n += 1;
        if n.is_multiple_of(8) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// How far calls overran their deadlines, as one observer green thread saw it.
#[derive(Default, Clone, Copy)]
struct Overruns {
    calls: u64,
    max: Duration,
    late: u64,
}

impl Overruns {
    fn note(&mut self, started: Instant, limit: Duration, late: Duration) {
        let over = started.elapsed().saturating_sub(limit);
        self.calls += 1;
        self.max = self.max.max(over);
        if over > late {
            self.late += 1;
        }
    }

    fn merge(self, other: Overruns) -> Overruns {
        Overruns {
            calls: self.calls + other.calls,
            max: self.max.max(other.max),
            late: self.late + other.late,
        }
    }
}

/// One observer green thread: a random timed (5–100 ms) or `try_*` call at a time.
fn observe(s: &Shared, seed: u64, late: Duration) -> Overruns {
    let mut rng = Rng(seed | 1);
    let mut seen = Overruns::default();
    while !s.stop.is_set() {
        let limit = Duration::from_millis(5 + rng.below(96));
        let t0 = Instant::now();
        match rng.below(8) {
            0 => drop(s.queue.get_timeout(limit)),
            1 => drop(s.queue.put_timeout(&7, limit)),
            2 => drop(s.semaphore.acquire_timeout(limit)),
            3 => drop(s.lock.lock_timeout(limit)),
            4 => {
                drop(s.queue.try_get());
                seen.note(t0, Duration::ZERO, late);
                continue;
            }
            5 => {
                drop(s.queue.try_put(&7));
                seen.note(t0, Duration::ZERO, late);
                continue;
            }
            6 => {
                drop(s.semaphore.try_acquire());
                seen.note(t0, Duration::ZERO, late);
                continue;
            }
            _ => {
                drop(s.lock.try_lock());
                seen.note(t0, Duration::ZERO, late);
                continue;
            }
        }
        seen.note(t0, limit, late);
    }
    seen
}

/// An observer process: two green threads observing; it reports through `reports`.
fn spawn_observer(
    s: &Shared,
    reports: &Queue<(u64, u64, u64)>,
    seed: u64,
    late: Duration,
) -> io::Result<Process> {
    let (s, reports) = (s.clone(), reports.clone());
    Process::spawn(move || {
        ignore_hangups();
        let twins: Vec<_> = (0..2u64)
            .map(|i| {
                let s = s.clone();
                greenrt::spawn(move || observe(&s, seed ^ ((i + 1) * 0x9e37_79b9), late))
            })
            .collect();
        let seen = twins
            .into_iter()
            .map(|t| t.join().expect("an observer panicked"))
            .fold(Overruns::default(), Overruns::merge);
        let max_us = u64::try_from(seen.max.as_micros()).unwrap_or(u64::MAX);
        reports
            .put(&(seen.calls, max_us, seen.late))
            .expect("report");
    })
}

/// What /proc says of a hung process: its name, state, kernel wait channel and user stack
/// pointer's neighbourhood is beyond us, but the kernel stack shows where it sleeps.
fn describe(pid: u32) -> String {
    let read =
        |what: &str| std::fs::read_to_string(format!("/proc/{pid}/{what}")).unwrap_or_default();
    let stat = read("stat");
    let state = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .next()
        .unwrap_or("?");
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|t| {
                    let tid = t.file_name().to_string_lossy().to_string();
                    let wchan = read(&format!("task/{tid}/wchan"));
                    let comm = read(&format!("task/{tid}/comm"));
                    format!("{tid} {} in {wchan}", comm.trim())
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{} state {state}; threads: {}",
        read("comm").trim(),
        threads.join(", ")
    )
}

/// `pid`'s state letter from /proc (`T` = stopped).
fn state_of(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: signalling our own child, which we have not reaped yet.
    unsafe { libc::kill(pid as libc::pid_t, sig) };
}

/// One victim, as the thawer sees it.
struct Frozen {
    process: Process,
    /// When it was seen stopped, and how long it stays so.
    since: Option<(Instant, Duration)>,
    /// We stopped it (not itself).
    by_us: bool,
}

/// Runs a freeze storm for `secs` with `victims` and `observers` processes; a call that
/// overruns its deadline by more than `late` is counted in [`FreezeStorm::late`].
pub fn freeze_storm(
    secs: f64,
    victims: usize,
    observers: usize,
    late: Duration,
    seed: u64,
) -> io::Result<FreezeStorm> {
    let s = Shared {
        queue: Queue::new(512)?,
        semaphore: Semaphore::new(2)?,
        lock: Lock::new()?,
        stop: Event::new()?,
    };
    let reports: Queue<(u64, u64, u64)> = Queue::new(4096)?;
    let mut rng = Rng(seed | 1);
    let mut frozen: Vec<Frozen> = (0..victims)
        .map(|i| {
            let (s, seed) = (s.clone(), rng.next() ^ i as u64);
            Process::spawn(move || victim(&s, seed)).map(|process| Frozen {
                process,
                since: None,
                by_us: false,
            })
        })
        .collect::<io::Result<_>>()?;
    let watchers: Vec<Process> = (0..observers)
        .map(|_| spawn_observer(&s, &reports, rng.next(), late))
        .collect::<io::Result<_>>()?;
    let mut report = FreezeStorm::default();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut next_outside = start;
    while Instant::now() < end {
        thaw_or_note(&mut frozen, &mut rng, &mut report);
        if Instant::now() >= next_outside {
            let v = &mut frozen[rng.below(victims as u64) as usize];
            if v.since.is_none() {
                signal(v.process.pid(), libc::SIGSTOP);
                v.by_us = true;
                report.outside_freezes += 1;
            }
            next_outside = Instant::now() + Duration::from_millis(20 + rng.below(40));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    report.secs = start.elapsed().as_secs_f64();
    s.stop.set();
    finish(frozen, watchers, &reports, &mut report);
    Ok(report)
}

/// Notes newly stopped victims (each gets 50–200 ms) and resumes those whose time is up.
fn thaw_or_note(frozen: &mut [Frozen], rng: &mut Rng, report: &mut FreezeStorm) {
    for v in frozen.iter_mut() {
        match v.since {
            None if state_of(v.process.pid()) == Some('T') => {
                if !v.by_us {
                    report.inside_freezes += 1;
                }
                let hold = Duration::from_millis(50 + rng.below(151));
                v.since = Some((Instant::now(), hold));
            }
            Some((at, hold)) if at.elapsed() >= hold => {
                signal(v.process.pid(), libc::SIGCONT);
                v.since = None;
                v.by_us = false;
            }
            _ => {}
        }
    }
}

/// Joins everyone (10 s at most in all) and gathers the observers' reports. Every process
/// still running is resumed on every pass, not just the one being joined: a victim may
/// freeze itself at an armed point on its way out *inside* the semaphore's critical
/// section, and another victim's permit release then waits for that lock (a release cannot
/// give up) — resuming only the process being joined made the other look hung.
fn finish(
    frozen: Vec<Frozen>,
    watchers: Vec<Process>,
    reports: &Queue<(u64, u64, u64)>,
    report: &mut FreezeStorm,
) {
    let mut running: Vec<Process> = frozen
        .into_iter()
        .map(|v| v.process)
        .chain(watchers)
        .collect();
    let give_up = Instant::now() + Duration::from_secs(10);
    while !running.is_empty() && Instant::now() < give_up {
        for p in &running {
            signal(p.pid(), libc::SIGCONT);
        }
        let mut still = Vec::new();
        for p in running {
            match p.join_timeout(Duration::from_millis(10)) {
                Ok(None) => still.push(p),
                Ok(Some(status)) if status.success() => {}
                Ok(Some(status)) => {
                    eprintln!("freeze storm: process {} ended {status:?}", p.pid());
                    report.failed += 1;
                }
                Err(e) => {
                    eprintln!("freeze storm: process {}: join: {e}", p.pid());
                    report.failed += 1;
                }
            }
        }
        running = still;
    }
    for p in running {
        eprintln!(
            "freeze storm: process {} hung: {}",
            p.pid(),
            describe(p.pid())
        );
        let _ = p.kill();
        let _ = p.join();
        report.failed += 1;
    }
    while let Ok((calls, max_us, late)) = reports.try_get() {
        report.calls += calls;
        report.max_overrun = report.max_overrun.max(Duration::from_micros(max_us));
        report.late += late;
    }
}
