//! Trace export: what every green thread did, in the Chrome Trace Event format that
//! Perfetto (ui.perfetto.dev) and chrome://tracing open.
//!
//! ```text
//!   track per green thread (tid = green id):  [ run ][ parked: a sleep      ][ready][ run ]
//!   track per hub (its main context):          [poll 3 events]      [poll 1 event]
//! ```
//!
//! * run slices, parked slices named by what the green thread waited on (fd, timer, which
//!   lock, join...), ready slices (queued after a wake-up, with who woke it), spawn and exit
//!   instants, hub poll slices with how many events came back, forks.
//! * Off by default and near free when off: each recording point is one relaxed load of a
//!   flag. Turn it on with [`start`] and get the result with [`stop`], or run a program with
//!   `GREENRT_TRACE=path.json` to record from the first hub to the end of `main`.
//! * A hub's records join the trace when the hub ends, or when the thread that calls [`stop`]
//!   owns it; hubs of threads still running elsewhere are not in it.

use std::fmt::Write as _;
use std::io;
use std::sync::atomic::Ordering;

use crate::hub::trace::{Buffer, DONE, ON, What};

/// Hub poll slices go on their own track: this plus the hub's main-context id.
const POLLS: u64 = 1 << 40;

/// A finished trace. See the module docs.
#[derive(Debug)]
pub struct Trace {
    buffers: Vec<Buffer>,
    pid: u32,
}

/// Starts recording on every hub of this process (discarding anything recorded before).
///
/// ```
/// greenrt::trace::start();
/// greenrt::spawn(|| greenrt::sleep(std::time::Duration::from_millis(5))).join().unwrap();
/// let trace = greenrt::trace::stop();
/// assert!(trace.to_json().contains("parked: a sleep"));
/// ```
pub fn start() {
    crate::hub::flush_trace();
    DONE.lock().unwrap_or_else(|e| e.into_inner()).clear();
    ON.store(true, Ordering::Release);
}

/// Stops recording and returns the trace (see the module docs for which hubs are in it).
pub fn stop() -> Trace {
    ON.store(false, Ordering::Release);
    crate::hub::flush_trace();
    let buffers = std::mem::take(&mut *DONE.lock().unwrap_or_else(|e| e.into_inner()));
    Trace {
        buffers,
        pid: std::process::id(),
    }
}

/// `GREENRT_TRACE=path`: start at the first hub, write the file at exit.
pub(crate) fn start_from_env() {
    use std::sync::atomic::AtomicBool;
    static DONE_ONCE: AtomicBool = AtomicBool::new(false);
    if std::env::var_os("GREENRT_TRACE").is_none() || DONE_ONCE.swap(true, Ordering::AcqRel) {
        return;
    }
    ON.store(true, Ordering::Release);
    crate::sys::shm::at_exit(write_at_exit);
}

extern "C" fn write_at_exit() {
    if let Some(path) = std::env::var_os("GREENRT_TRACE") {
        let trace = stop();
        match trace.write_to(&path) {
            Ok(()) => eprintln!(
                "greenrt: trace of {} events written to {}",
                trace.events(),
                path.to_string_lossy()
            ),
            Err(e) => eprintln!(
                "greenrt: cannot write the trace to {}: {e}",
                path.to_string_lossy()
            ),
        }
    }
}

impl Trace {
    /// How many records the trace holds.
    pub fn events(&self) -> usize {
        self.buffers.iter().map(|b| b.records.len()).sum()
    }

    /// Writes the Chrome Trace Event JSON to `path`.
    pub fn write_to(&self, path: impl AsRef<std::path::Path>) -> io::Result<()> {
        std::fs::write(path, self.to_json())
    }

    /// The trace as Chrome Trace Event JSON (`{"traceEvents": [...]}`).
    pub fn to_json(&self) -> String {
        let origin = self
            .buffers
            .iter()
            .flat_map(|b| b.records.first())
            .map(|r| r.t)
            .min()
            .unwrap_or(0);
        let mut out = Vec::new();
        for buffer in &self.buffers {
            self.buffer_events(buffer, origin, &mut out);
        }
        format!("{{\"traceEvents\":[\n{}\n]}}\n", out.join(",\n"))
    }

    fn buffer_events(&self, b: &Buffer, origin: u64, out: &mut Vec<String>) {
        let pid = self.pid;
        let us = |t: u64| (t.saturating_sub(origin)) as f64 / 1000.0;
        for (tid, what) in [
            (b.main_green, "main context"),
            (POLLS + b.main_green, "hub polls"),
        ] {
            out.push(format!(
                "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":{pid},\"tid\":{tid},\"args\":{{\"name\":\"{what} of '{}'\"}}}}",
                escape(&b.thread)
            ));
        }
        for (id, name) in &b.names {
            out.push(format!(
                "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":{pid},\"tid\":{id},\"args\":{{\"name\":\"green #{id} '{}'\"}}}}",
                escape(name)
            ));
        }
        // Per green thread: when its current state began, and what that state is.
        let mut since: std::collections::HashMap<u64, (u64, String, String)> = Default::default();
        let end = b.records.last().map_or(origin, |r| r.t);
        let close =
            |out: &mut Vec<String>,
             green: u64,
             now: u64,
             since: &mut std::collections::HashMap<u64, (u64, String, String)>| {
                if let Some((t0, name, args)) = since.remove(&green) {
                    let cat = name.split(':').next().unwrap_or("").to_string();
                    out.push(format!(
                    "{{\"name\":\"{}\",\"cat\":\"{cat}\",\"ph\":\"X\",\"ts\":{:.3},\"dur\":{:.3},\"pid\":{pid},\"tid\":{green},\"args\":{{{args}}}}}",
                    escape(&name),
                    us(t0),
                    (now.saturating_sub(t0)) as f64 / 1000.0
                ));
                }
            };
        for r in &b.records {
            let g = r.green;
            match r.what {
                What::Run => {
                    close(out, g, r.t, &mut since);
                    since.insert(g, (r.t, "run".into(), String::new()));
                }
                What::Stop => {
                    close(out, g, r.t, &mut since);
                    // Until a park or the next run: queued again (a yield).
                    since.insert(g, (r.t, "ready".into(), "\"after\":\"a yield\"".into()));
                }
                What::Park(wait) => {
                    since.insert(
                        g,
                        (
                            r.t,
                            format!("parked: {wait}"),
                            format!("\"reason\":\"{}\"", escape(&wait.to_string())),
                        ),
                    );
                }
                What::Wake { by } => {
                    close(out, g, r.t, &mut since);
                    since.insert(g, (r.t, "ready".into(), format!("\"woken_by\":{by}")));
                }
                What::Spawn { by } => {
                    out.push(instant("spawn", pid, g, us(r.t), &format!("\"by\":{by}")));
                    since.insert(g, (r.t, "ready".into(), "\"after\":\"spawn\"".into()));
                }
                What::Exit => {
                    since.remove(&g);
                    out.push(instant("exit", pid, g, us(r.t), ""));
                }
                What::Poll { events, took_ns } => {
                    let t0 = r.t.saturating_sub(took_ns);
                    out.push(format!(
                        "{{\"name\":\"poll\",\"cat\":\"poll\",\"ph\":\"X\",\"ts\":{:.3},\"dur\":{:.3},\"pid\":{pid},\"tid\":{},\"args\":{{\"events\":{events}}}}}",
                        us(t0),
                        took_ns as f64 / 1000.0,
                        POLLS + g
                    ));
                }
                What::Fork { pid: child } => out.push(instant(
                    "fork",
                    pid,
                    g,
                    us(r.t),
                    &format!("\"child\":{child}"),
                )),
            }
        }
        let open: Vec<u64> = since.keys().copied().collect();
        for g in open {
            close(out, g, end, &mut since);
        }
    }
}

fn instant(name: &str, pid: u32, tid: u64, ts: f64, args: &str) -> String {
    format!(
        "{{\"name\":\"{name}\",\"ph\":\"i\",\"s\":\"t\",\"ts\":{ts:.3},\"pid\":{pid},\"tid\":{tid},\"args\":{{{args}}}}}"
    )
}

/// JSON string escaping for names and reasons.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}
