//! The stall watchdog: reports a green thread that runs too long without yielding — the
//! classic bug where a blocking call (a file read, a CPU loop, an unpatched socket) stalls
//! every other green thread on its hub.
//!
//! ```text
//!   hub thread (every resume)                 monitor thread (every threshold / 4)
//!   beat.running = green id, beat.site = ...  for each hub's beat:
//!   beat.switches += 1                          same switch count and a green running
//!   ... green runs ...                          for >= threshold?  -> live report (id, site)
//!   beat.running = 0                                                  beat.stalled_ms = ...
//!   if beat.stalled_ms != 0: full report (name, total run time), printed by the hub itself
//! ```
//!
//! The hub publishes three relaxed stores per switch, nothing more. The monitor cannot read
//! a green thread's name safely while it runs on another thread (it could finish and free it
//! at any moment), so the live report names its id and spawn site (a `'static` location);
//! when the stall ends, the hub prints the full report with the name and the run time. No
//! backtrace is taken: capturing one from another thread would mean a signal handler that
//! allocates, which is not safe.

use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::sys::per_process::PerProcess;

/// What one hub publishes for the monitor.
pub(crate) struct Beat {
    switches: AtomicU64,
    running: AtomicU64,
    site: AtomicPtr<Location<'static>>,
    /// Set by the monitor when it reported the running green thread as stalled.
    stalled_ms: AtomicU64,
    thread: String,
    /// Set by the SIGUSR1 dumper: the hub prints its dump at its next poll.
    pub(crate) dump_requested: AtomicBool,
    /// Wakes the hub (its eventfd), so a sleeping hub answers a dump request at once.
    waker: Arc<super::reactor::Shared>,
}

/// A green thread that ran at least the threshold without yielding.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StallReport {
    /// The green thread's id.
    pub green: u64,
    /// Its name, when known (in the report made after the stall ended).
    pub name: Option<String>,
    /// Where it was spawned.
    pub spawned_at: String,
    /// How long it had run without yielding when reported.
    pub ran: Duration,
    /// The OS thread of its hub.
    pub thread: String,
    /// False for the live report (still running), true for the one made when it yielded.
    pub ended: bool,
}

struct Monitor {
    threshold_ms: AtomicU64,
    started: AtomicBool,
    beats: Mutex<Vec<Weak<Beat>>>,
    reports: Mutex<Vec<StallReport>>,
}

static MONITOR: PerProcess<Monitor> = PerProcess::new();

impl Monitor {
    /// The beats of the hubs that still exist.
    fn live_beats(&self) -> Vec<Arc<Beat>> {
        let beats = self.beats.lock().unwrap_or_else(|e| e.into_inner());
        beats.iter().filter_map(Weak::upgrade).collect()
    }
}

fn monitor() -> &'static Monitor {
    MONITOR.get(|| Monitor {
        threshold_ms: AtomicU64::new(0),
        started: AtomicBool::new(false),
        beats: Mutex::new(Vec::new()),
        reports: Mutex::new(Vec::new()),
    })
}

/// Starts the watchdog (once per process): any green thread that runs `threshold` or longer
/// without yielding is reported on stderr and in [`stall_reports`]. Opt-in; a typical
/// threshold is 100 ms.
///
/// ```
/// greenrt::hub::watchdog(std::time::Duration::from_millis(100));
/// let busy = greenrt::spawn(|| {
///     let start = std::time::Instant::now();
///     while start.elapsed() < std::time::Duration::from_millis(300) {} // never yields
/// });
/// busy.join().unwrap();
/// assert!(greenrt::hub::stall_reports().iter().any(|r| r.ended && r.ran.as_millis() >= 100));
/// ```
pub fn watchdog(threshold: Duration) {
    let m = monitor();
    m.threshold_ms
        .store(threshold.as_millis().max(1) as u64, Ordering::Relaxed);
    if !m.started.swap(true, Ordering::AcqRel) {
        let _ = std::thread::Builder::new()
            .name("greenrt-watchdog".into())
            .spawn(move || watch(m));
    }
}

/// Every stall reported so far in this process.
pub fn stall_reports() -> Vec<StallReport> {
    monitor()
        .reports
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// A new hub's beat, registered with the monitor.
pub(crate) fn new_beat(waker: Arc<super::reactor::Shared>) -> Arc<Beat> {
    let beat = Arc::new(Beat {
        dump_requested: AtomicBool::new(false),
        waker,
        switches: AtomicU64::new(0),
        running: AtomicU64::new(0),
        site: AtomicPtr::new(std::ptr::null_mut()),
        stalled_ms: AtomicU64::new(0),
        thread: std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_string(),
    });
    let mut beats = monitor().beats.lock().unwrap_or_else(|e| e.into_inner());
    beats.retain(|b| b.strong_count() > 0);
    beats.push(Arc::downgrade(&beat));
    beat
}

impl Beat {
    /// The hub is about to resume green thread `id`, spawned at `site`.
    #[inline(always)]
    pub(crate) fn enter(&self, id: u64, site: &'static Location<'static>) {
        // Only this hub's thread writes the count: a load and a store, not a locked RMW.
        self.switches
            .store(self.switches.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.site.store(
            (site as *const Location<'static>).cast_mut(),
            Ordering::Relaxed,
        );
        self.running.store(id, Ordering::Release);
    }

    /// Context switches into green threads so far: the hub's one switch counter, which
    /// `stats()` reports and the monitor samples.
    pub(crate) fn switches(&self) -> u64 {
        self.switches.load(Ordering::Relaxed)
    }

    /// The green thread gave the CPU back. Returns how long it ran if it was reported stalled.
    #[inline(always)]
    pub(crate) fn leave(&self) -> Option<u64> {
        self.running.store(0, Ordering::Release);
        match self.stalled_ms.load(Ordering::Relaxed) {
            0 => None,
            _ => Some(self.stalled_ms.swap(0, Ordering::Relaxed)),
        }
    }
}

/// The hub's report once a stalled green thread has yielded (it knows the name).
pub(crate) fn report_ended(green: &super::green::Green, beat: &Beat, at_least_ms: u64) {
    let report = StallReport {
        green: green.id,
        name: green.name.as_deref().map(str::to_string),
        spawned_at: green.spawned_at.to_string(),
        ran: Duration::from_millis(at_least_ms),
        thread: beat.thread.clone(),
        ended: true,
    };
    eprintln!(
        "greenrt watchdog: green thread #{} '{}' (spawned at {}) ran at least {} ms without yielding; it has yielded now",
        report.green,
        green.display_name(),
        report.spawned_at,
        at_least_ms
    );
    monitor()
        .reports
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(report);
}

/// The monitor thread's loop.
fn watch(m: &'static Monitor) {
    // Per beat: (switch count last seen, when first seen running unchanged).
    let mut seen: Vec<(Weak<Beat>, u64, Instant)> = Vec::new();
    loop {
        let threshold = Duration::from_millis(m.threshold_ms.load(Ordering::Relaxed));
        std::thread::sleep((threshold / 4).max(Duration::from_millis(2)));
        let beats = m.live_beats();
        seen.retain(|(w, _, _)| w.strong_count() > 0);
        let now = Instant::now();
        for beat in beats {
            let switches = beat.switches.load(Ordering::Relaxed);
            let running = beat.running.load(Ordering::Acquire);
            let entry = seen
                .iter_mut()
                .find(|(w, _, _)| w.as_ptr() == Arc::as_ptr(&beat));
            let Some(entry) = entry else {
                seen.push((Arc::downgrade(&beat), switches, now));
                continue;
            };
            if running == 0 || entry.1 != switches {
                entry.1 = switches;
                entry.2 = now;
                continue;
            }
            let ran = now - entry.2;
            if ran >= threshold && beat.stalled_ms.load(Ordering::Relaxed) == 0 {
                let site = beat.site.load(Ordering::Relaxed);
                // SAFETY: the pointer is null or a `&'static Location` stored by `enter`.
                let site = unsafe { site.as_ref() }.map_or("?".to_string(), ToString::to_string);
                eprintln!(
                    "greenrt watchdog: green thread #{running} (spawned at {site}) on thread '{}' has run {} ms without yielding: a blocking call is stalling its hub",
                    beat.thread,
                    ran.as_millis()
                );
                beat.stalled_ms
                    .store(ran.as_millis().max(1) as u64, Ordering::Relaxed);
                m.reports
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(StallReport {
                        green: running,
                        name: None,
                        spawned_at: site,
                        ran,
                        thread: beat.thread.clone(),
                        ended: false,
                    });
            }
        }
    }
}

/// Makes SIGUSR1 print the dump of every hub in this process to stderr (opt-in, like
/// `faulthandler.register` in Python). A signal handler may not allocate or lock, so it only
/// pokes a pipe; a small thread reading it asks each hub to print its dump at its next poll
/// (waking it if it sleeps). A hub stalled by a blocking call cannot answer until it yields —
/// the watchdog reports those.
pub fn dump_on_sigusr1() -> std::io::Result<()> {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::AcqRel) {
        return Ok(());
    }
    let pipe = crate::sys::signal::poke_pipe_on_sigusr1()?;
    std::thread::Builder::new()
        .name("greenrt-dump".into())
        .spawn(move || {
            let mut pipe = std::fs::File::from(pipe);
            let mut byte = [0u8; 64];
            while std::io::Read::read(&mut pipe, &mut byte).is_ok_and(|n| n > 0) {
                let beats = monitor().live_beats();
                for beat in beats {
                    beat.dump_requested.store(true, Ordering::Release);
                    beat.waker.notify();
                }
            }
        })?;
    Ok(())
}
