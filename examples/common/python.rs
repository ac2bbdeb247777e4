//! Running a Python script for the side-by-side comparisons: its numbers, or `None` when
//! `python3` is missing or the script fails (the comparison then shows greenrt alone).

use std::process::Command;

/// The numbers `script` printed (whitespace-separated), run as `python3 -c script args...`.
pub fn numbers(script: &str, args: &[String]) -> Option<Vec<f64>> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("python3 failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(
        text.split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect(),
    )
}
