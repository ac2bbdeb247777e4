//! A trace as a self-contained SVG timeline: one row per green thread (and per hub's polls),
//! time on the x axis, each slice coloured by state — so the interleaving of a program can be
//! seen at a glance, in any browser, with no viewer installed.
//!
//! | colour | state                                   |
//! |--------|-----------------------------------------|
//! | green  | running                                 |
//! | amber  | ready (queued, waiting for the CPU)     |
//! | blue   | parked on I/O (an fd)                   |
//! | grey   | parked on a timer (sleep, delayed start)|
//! | red    | parked on a lock, event, queue, join... |
//! | brown  | the hub polling its reactor             |

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Item, POLLS, Trace};

const LABEL_W: f64 = 260.0;
const PLOT_W: f64 = 1000.0;
const ROW_H: f64 = 18.0;
const TOP: f64 = 40.0;

/// The colour of a slice, by its name.
fn colour(name: &str) -> &'static str {
    match name {
        "run" => "#2ca02c",
        "ready" => "#ffbf00",
        "poll" => "#8c564b",
        n if n.contains("fd ") => "#1f77b4",
        n if n.contains("a sleep") || n.contains("delayed start") => "#9e9e9e",
        _ => "#d62728",
    }
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Trace {
    /// The trace as an SVG timeline (see the module docs).
    ///
    /// ```
    /// greenrt::trace::start();
    /// greenrt::spawn(|| greenrt::sleep(std::time::Duration::from_millis(5))).join().unwrap();
    /// let svg = greenrt::trace::stop().to_svg();
    /// assert!(svg.starts_with("<svg") && svg.contains("green #"));
    /// ```
    pub fn to_svg(&self) -> String {
        let items = self.items();
        let mut names: BTreeMap<u64, String> = BTreeMap::new();
        let mut slices: BTreeMap<u64, Vec<(f64, f64, String)>> = BTreeMap::new();
        let mut end: f64 = 0.0;
        for item in items {
            match item {
                Item::Track { tid, name } => {
                    names.insert(tid, name);
                }
                Item::Slice {
                    tid,
                    start,
                    dur,
                    name,
                    ..
                } => {
                    end = end.max(start + dur);
                    slices.entry(tid).or_default().push((start, dur, name));
                }
                Item::Instant { .. } => {}
            }
        }
        // Rows: green threads and main contexts in id order, then the hubs' poll tracks.
        let mut rows: Vec<u64> = slices.keys().copied().filter(|t| *t < POLLS).collect();
        rows.extend(slices.keys().copied().filter(|t| *t >= POLLS));
        let end = end.max(1.0);
        let scale = PLOT_W / end;
        let height = TOP + ROW_H * rows.len() as f64 + 50.0;
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"monospace\" font-size=\"11\">\n",
            LABEL_W + PLOT_W + 20.0
        );
        let _ = writeln!(
            svg,
            "<text x=\"4\" y=\"14\">greenrt timeline: {} rows, {:.1} ms</text>",
            rows.len(),
            end / 1000.0
        );
        for i in 0..=10 {
            let x = LABEL_W + PLOT_W * i as f64 / 10.0;
            let _ = writeln!(
                svg,
                "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/><text x=\"{x:.1}\" y=\"30\">{:.1} ms</text>",
                TOP - 4.0,
                TOP + ROW_H * rows.len() as f64,
                end * i as f64 / 10.0 / 1000.0
            );
        }
        for (row, tid) in rows.iter().enumerate() {
            let y = TOP + ROW_H * row as f64;
            let label = names
                .get(tid)
                .cloned()
                .unwrap_or_else(|| format!("track {tid}"));
            let _ = writeln!(
                svg,
                "<g class=\"row\"><text x=\"4\" y=\"{:.1}\">{}</text>",
                y + 13.0,
                xml(&label)
            );
            for (start, dur, name) in &slices[tid] {
                let _ = writeln!(
                    svg,
                    "<rect x=\"{:.2}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{:.1}\" fill=\"{}\"><title>{} {:.3} ms</title></rect>",
                    LABEL_W + start * scale,
                    y + 2.0,
                    (dur * scale).max(0.5),
                    ROW_H - 4.0,
                    colour(name),
                    xml(name),
                    dur / 1000.0
                );
            }
            svg.push_str("</g>\n");
        }
        let legend_y = TOP + ROW_H * rows.len() as f64 + 20.0;
        let legend = [
            ("run", "running"),
            ("ready", "ready"),
            ("fd ", "parked on I/O"),
            ("a sleep", "parked on a timer"),
            ("lock", "parked on sync/join"),
            ("poll", "hub poll"),
        ];
        for (i, (key, text)) in legend.iter().enumerate() {
            let x = LABEL_W + 160.0 * i as f64;
            let _ = writeln!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{legend_y:.1}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\">{text}</text>",
                colour(key),
                x + 16.0,
                legend_y + 10.0
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}
