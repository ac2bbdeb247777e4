//! Every example is a tool with a real command line: `--help` prints what it shows, what it
//! mirrors and every flag, and exits 0 without starting work; an unknown flag or a bad value
//! exits 2 naming it. (`cargo test` builds the examples next to this test binary; examples
//! whose required features are off are not built, and are skipped by name.)

mod util;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Every example's name: `examples/NAME.rs` and `examples/NAME/main.rs`.
fn example_names() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_stem()?.to_str()?.to_string();
            let is_example = if path.is_dir() {
                path.join("main.rs").exists()
            } else {
                path.extension().is_some_and(|e| e == "rs")
            };
            is_example.then_some(name)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 40, "only {} examples found", names.len());
    names
}

/// The features an example needs, from `Cargo.toml`'s `[[example]]` tables.
fn required_features(name: &str) -> Vec<String> {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let Some(table) = manifest
        .split("[[example]]")
        .skip(1)
        .find(|t| t.contains(&format!("name = \"{name}\"")))
    else {
        return Vec::new();
    };
    let Some(line) = table.lines().find(|l| l.starts_with("required-features")) else {
        return Vec::new();
    };
    line.split('"')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect()
}

fn feature_on(feature: &str) -> bool {
    match feature {
        "monkey" => cfg!(feature = "monkey"),
        "redis" => cfg!(feature = "redis"),
        other => panic!("an example needs feature {other:?}, unknown to this test"),
    }
}

/// Runs example `name` with `args`, killed after 20 s (an example that starts its work
/// instead of answering would run on).
fn run(name: &str, args: &[&str]) -> Output {
    let mut child = Command::new(util::example(name))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start example {name}: {e} (is it built?)"));
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("example {name} {args:?} still ran after 20 s: it started its work");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn built_examples() -> Vec<String> {
    example_names()
        .into_iter()
        .filter(|name| required_features(name).iter().all(|f| feature_on(f)))
        .collect()
}

#[test]
fn every_example_answers_help_and_exits_0() {
    for name in built_examples() {
        let out = run(&name, &["--help"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{name} --help: {out:?}");
        assert!(
            text.starts_with(&format!("{name} — ")),
            "{name} --help does not start with what it is:\n{text}"
        );
        assert!(
            text.contains(&format!("--example {name}")) && text.contains("--help"),
            "{name} --help has no usage line or flag list:\n{text}"
        );
    }
}

#[test]
fn every_example_refuses_an_unknown_flag_with_status_2() {
    for name in built_examples() {
        let out = run(&name, &["--no-such-flag"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name} --no-such-flag: {out:?}");
        assert!(
            err.contains("--no-such-flag") && out.stdout.is_empty(),
            "{name} did not name the unknown flag (or started work):\n{err}"
        );
    }
}

/// A mistyped flag is not ignored: echo_bench with `--sise` (not `--size`) used to run with
/// the defaults; and a bad value names its flag.
#[test]
fn a_mistyped_flag_or_a_bad_value_is_named() {
    let out = run("echo_bench", &["--conns", "5", "--sise", "64"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown flag --sise"));
    let out = run("echo_bench", &["--conns", "five"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--conns: bad value \"five\""));
    let out = run("tickets", &["--buyers"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--buyers needs a value"));
}

/// The help shows every flag with its default.
#[test]
fn help_lists_flags_with_their_defaults() {
    let out = run("echo_bench", &["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "--addr ADDR",
        "[default: 127.0.0.1:9000]",
        "--conns N",
        "[default: 50]",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
}

/// `stress` says where it is: a numbered phase line as each storm starts, and its table.
#[test]
fn stress_shows_its_phases_and_the_table() {
    let out = run("stress", &["--quick", "--only", "spawn,sync"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for line in [
        "[1/2 spawn] … starting at ",
        "[2/2 sync] … starting at ",
        "stress: ",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
}
