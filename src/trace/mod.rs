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

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;
use std::sync::atomic::Ordering;

mod svg;

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

/// `GREENRT_TRACE=path`: record from program start, write the file at exit. Run by the C
/// runtime before `main`, like a constructor (`.init_array`), so the hub never has to ask:
/// the trace glue stays here, above the hub it watches.
extern "C" fn start_from_env() {
    if std::env::var_os("GREENRT_TRACE").is_none() {
        return;
    }
    ON.store(true, Ordering::Release);
    crate::sys::shm::at_exit(write_at_exit);
}

#[used]
#[unsafe(link_section = ".init_array")]
static START_FROM_ENV: extern "C" fn() = start_from_env;

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
        let pid = self.pid;
        let mut out = Vec::new();
        for item in self.items() {
            out.push(match item {
                Item::Track { tid, name } => format!(
                    "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":{pid},\"tid\":{tid},\"args\":{{\"name\":\"{}\"}}}}",
                    escape(&name)
                ),
                Item::Slice { tid, start, dur, name, args } => {
                    let cat = name.split(':').next().unwrap_or("");
                    format!(
                        "{{\"name\":\"{}\",\"cat\":\"{cat}\",\"ph\":\"X\",\"ts\":{start:.3},\"dur\":{dur:.3},\"pid\":{pid},\"tid\":{tid},\"args\":{{{args}}}}}",
                        escape(&name)
                    )
                }
                Item::Instant { tid, at, name, args } => format!(
                    "{{\"name\":\"{name}\",\"ph\":\"i\",\"s\":\"t\",\"ts\":{at:.3},\"pid\":{pid},\"tid\":{tid},\"args\":{{{args}}}}}"
                ),
            });
        }
        format!("{{\"traceEvents\":[\n{}\n]}}\n", out.join(",\n"))
    }

    /// The trace as tracks, slices (times in µs from the first record) and instants: what the
    /// JSON export and the SVG timeline both draw from.
    pub(crate) fn items(&self) -> Vec<Item> {
        let origin = self
            .buffers
            .iter()
            .flat_map(|b| b.records.first())
            .map(|r| r.t)
            .min()
            .unwrap_or(0);
        let mut out = Vec::new();
        for buffer in &self.buffers {
            buffer_items(buffer, origin, &mut out);
        }
        out
    }
}

/// One thing to draw. Times are µs from the start of the trace.
#[derive(Debug, Clone)]
pub(crate) enum Item {
    /// A track (a green thread, a main context, a hub's polls) and its name.
    Track { tid: u64, name: String },
    /// A state lasting `dur`: `run`, `ready`, `parked: <what>`, `poll`.
    Slice {
        tid: u64,
        start: f64,
        dur: f64,
        name: String,
        args: String,
    },
    /// A moment: `spawn`, `exit`, `fork`.
    Instant {
        tid: u64,
        at: f64,
        name: &'static str,
        args: String,
    },
}

/// Turns one hub's records into items: per green thread, each record ends the state that
/// began at the previous one. A green thread's records come as
///
/// ```text
///   Spawn ─ ready ─ Run ─ run ─ Park(w) ─ parked: w ─ (Stop) ─ ... ─ Wake ─ ready ─ Run ...
///                         └─ run ─ Stop ─ ready (a yield) ─ Run ...
/// ```
///
/// so a Stop right after a Park changes nothing: the green thread stays parked until woken.
fn buffer_items(b: &Buffer, origin: u64, out: &mut Vec<Item>) {
    let us = |t: u64| t.saturating_sub(origin) as f64 / 1000.0;
    out.push(Item::Track {
        tid: b.main_green,
        name: format!("main context of '{}'", b.thread),
    });
    out.push(Item::Track {
        tid: POLLS + b.main_green,
        name: format!("hub polls of '{}'", b.thread),
    });
    for (id, name) in &b.names {
        out.push(Item::Track {
            tid: *id,
            name: format!("green #{id} '{name}'"),
        });
    }
    // Per green thread: when its current state began, its name and its args.
    let mut since: HashMap<u64, (u64, String, String)> = HashMap::new();
    let close = |out: &mut Vec<Item>,
                 green: u64,
                 now: u64,
                 since: &mut HashMap<u64, (u64, String, String)>| {
        if let Some((t0, name, args)) = since.remove(&green) {
            out.push(Item::Slice {
                tid: green,
                start: us(t0),
                dur: now.saturating_sub(t0) as f64 / 1000.0,
                name,
                args,
            });
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
                // A green thread that parked stays parked (its Park record came just before
                // it stopped); one that stopped running without parking yielded: it is
                // queued again until its next run.
                let parked = since
                    .get(&g)
                    .is_some_and(|(_, name, _)| name.starts_with("parked"));
                if !parked {
                    close(out, g, r.t, &mut since);
                    since.insert(g, (r.t, "ready".into(), "\"after\":\"a yield\"".into()));
                }
            }
            What::Park(wait) => {
                close(out, g, r.t, &mut since); // the run slice ends where the park begins
                let reason = wait.to_string();
                since.insert(
                    g,
                    (
                        r.t,
                        format!("parked: {reason}"),
                        format!("\"reason\":\"{}\"", escape(&reason)),
                    ),
                );
            }
            What::Wake { by } => {
                close(out, g, r.t, &mut since);
                since.insert(g, (r.t, "ready".into(), format!("\"woken_by\":{by}")));
            }
            What::Spawn { by } => {
                out.push(Item::Instant {
                    tid: g,
                    at: us(r.t),
                    name: "spawn",
                    args: format!("\"by\":{by}"),
                });
                since.insert(g, (r.t, "ready".into(), "\"after\":\"spawn\"".into()));
            }
            What::Exit => {
                since.remove(&g);
                out.push(Item::Instant {
                    tid: g,
                    at: us(r.t),
                    name: "exit",
                    args: String::new(),
                });
            }
            What::Poll { events, took_ns } => out.push(Item::Slice {
                tid: POLLS + g,
                start: us(r.t.saturating_sub(took_ns)),
                dur: took_ns as f64 / 1000.0,
                name: "poll".into(),
                args: format!("\"events\":{events}"),
            }),
            What::Fork { pid } => out.push(Item::Instant {
                tid: g,
                at: us(r.t),
                name: "fork",
                args: format!("\"child\":{pid}"),
            }),
        }
    }
    let end = b.records.last().map_or(origin, |r| r.t);
    let open: Vec<u64> = since.keys().copied().collect();
    for g in open {
        close(out, g, end, &mut since);
    }
}

/// JSON string escaping for names and reasons (the SVG export escapes for XML itself).
pub(crate) fn escape(text: &str) -> String {
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
