//! The course-note programs that got their own example behave as the notes say: each test
//! runs the example binary (built by `cargo test` next to this one) and checks the lines
//! that carry the lesson — the order, the count, the value that would be wrong.

mod util;

use std::io::BufRead;
use std::process::{Command, Stdio};

use util::run_example as run;

/// The number after `took ` in the line that starts with `prefix`.
#[cfg(feature = "monkey")]
fn took_secs(lines: &[String], prefix: &str) -> f64 {
    let line = lines
        .iter()
        .find(|l| l.starts_with(prefix) && l.contains(" took "))
        .unwrap_or_else(|| panic!("no {prefix} took line in {lines:?}"));
    line.split(" took ")
        .nth(1)
        .unwrap()
        .trim_end_matches(" s")
        .parse()
        .unwrap()
}

/// gevent's first program: unpatched, the plain std sleeps (0.2, 0.4, 0.6 s) run one after
/// another (1.2 s); patched, together (0.6 s), all three starting before any ends.
#[cfg(feature = "monkey")]
#[test]
fn monkey_sleep_is_the_sum_unpatched_and_the_longest_patched() {
    let lines = run("monkey_sleep", &["--scale", "0.2"]);
    let (unpatched, patched) = (
        took_secs(&lines, "[unpatched]"),
        took_secs(&lines, "[patched]"),
    );
    assert!(
        (1.15..2.0).contains(&unpatched),
        "unpatched took {unpatched} s: {lines:?}"
    );
    assert!(
        (0.58..1.0).contains(&patched),
        "patched took {patched} s: {lines:?}"
    );
    let patched_lines: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("[patched] start") || l.starts_with("[patched] end"))
        .map(String::as_str)
        .collect();
    assert_eq!(
        patched_lines,
        [
            "[patched] start: 1",
            "[patched] start: 2",
            "[patched] start: 3",
            "[patched] end: 1",
            "[patched] end: 2",
            "[patched] end: 3"
        ]
    );
}

/// `(pid, line number)` of each `PID print N` line.
fn prints(lines: &[String]) -> Vec<(u32, u32)> {
    lines
        .iter()
        .filter_map(|l| {
            let (pid, n) = l.split_once(" print ")?;
            Some((pid.parse().ok()?, n.parse().ok()?))
        })
        .collect()
}

/// Under the lock each process's three lines come together, in order; without it each
/// process still prints 1, 2, 3 (the interleaving itself is timing, not asserted).
#[test]
fn print_lock_groups_each_processs_lines_under_the_lock() {
    let locked = prints(&run("print_lock", &["--pause-ms", "50"]));
    assert_eq!(locked.len(), 9, "{locked:?}");
    for group in locked.chunks(3) {
        assert!(
            group.iter().all(|(pid, _)| *pid == group[0].0)
                && group.iter().map(|(_, n)| *n).eq(1..=3),
            "lines of one process split up under the lock: {locked:?}"
        );
    }
    let free = prints(&run("print_lock", &["--pause-ms", "50", "--no-lock"]));
    assert_eq!(free.len(), 9, "{free:?}");
    for (pid, _) in &free {
        let own: Vec<u32> = free
            .iter()
            .filter(|(p, _)| p == pid)
            .map(|(_, n)| *n)
            .collect();
        assert_eq!(own, [1, 2, 3], "{free:?}");
    }
}

/// Semaphore(5): five acquires print 1..5, the sixth blocks (all five permits held, none
/// free); the literal port that drops each guard prints 1..7 and leaves all five free.
#[test]
fn semaphore_block_blocks_at_the_sixth_and_shows_the_porting_trap() {
    let lines = run("semaphore_block", &["--wait-ms", "200"]);
    let held_end = lines
        .iter()
        .position(|l| l.contains("acquire 6: still blocked"))
        .unwrap();
    assert!(
        lines[held_end].contains("5 permits held, 0 free"),
        "{lines:?}"
    );
    let numbers = |range: &[String]| -> Vec<String> {
        range
            .iter()
            .filter(|l| l.parse::<u32>().is_ok())
            .cloned()
            .collect()
    };
    assert_eq!(numbers(&lines[..held_end]), ["1", "2", "3", "4", "5"]);
    assert_eq!(
        numbers(&lines[held_end..]),
        ["1", "2", "3", "4", "5", "6", "7"]
    );
    assert!(
        lines
            .last()
            .unwrap()
            .contains("never blocked: 5 of 5 permits free")
    );
}

/// The child sets the global to 0 under its own name; the parent still reads 100.
#[test]
fn isolation_a_childs_global_is_its_own() {
    let lines = run("isolation", &["--wait-ms", "100"]);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("[child 'changer' pid ") && l.ends_with("set n = 0")),
        "{lines:?}"
    );
    assert!(
        lines.last().unwrap().contains("\"changer\"") && lines.last().unwrap().ends_with("n = 100"),
        "{lines:?}"
    );
}

/// Named threads are listed by the kernel while they run; after joining, the daemon is left.
#[test]
fn os_threads_lists_named_threads_and_keeps_the_daemon() {
    let lines = run("os_threads", &["--work-ms", "100"]);
    let during = lines
        .iter()
        .find(|l| l.contains("with three workers"))
        .unwrap();
    assert!(during.contains("active count 5"), "{during}");
    for name in ["\"worker-1\"", "\"worker-2\"", "\"worker-3\"", "\"daemon\""] {
        assert!(during.contains(name), "{name} not listed: {during}");
    }
    let after = lines.iter().find(|l| l.contains("after joining")).unwrap();
    assert!(
        after.contains("active count 2") && after.contains("\"daemon\""),
        "{after}"
    );
}

/// Each datagram comes back to its sender unchanged.
#[test]
fn udp_echo_answers_each_datagram() {
    let lines = run("udp_echo", &["--say", "one", "--say", "two"]);
    let echoes: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("[client] echo from"))
        .collect();
    assert_eq!(echoes.len(), 2, "{lines:?}");
    assert!(
        echoes[0].ends_with("\"one\"") && echoes[1].ends_with("\"two\""),
        "{lines:?}"
    );
}

/// Twelve tasks on a pool of three: exactly three worker pids, each start matched by an end.
#[test]
fn pool_executor_runs_every_task_in_three_worker_processes() {
    let lines = run("pool_executor", &["--tasks", "12", "--unit-ms", "10"]);
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("[main] 12 tasks ran in 3 worker processes"),
        "{lines:?}"
    );
    let starts = lines.iter().filter(|l| l.contains(" start (task ")).count();
    let ends = lines.iter().filter(|l| l.contains(" end (task ")).count();
    assert_eq!((starts, ends), (12, 12), "{lines:?}");
}

/// The upper-case server and its separate client: each message comes back in upper case.
#[test]
fn upper_server_and_client_talk_in_upper_case() {
    let mut server = Command::new(util::example("upper_server"))
        .args(["--addr", "127.0.0.1:0", "--connections", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("upper_server (built by cargo test)");
    let mut out = std::io::BufReader::new(server.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let addr = first.trim().rsplit(' ').next().unwrap().to_string();
    let lines = run(
        "upper_client",
        &["--addr", &addr, "--say", "hello", "--say", "green threads"],
    );
    assert_eq!(lines, ["HELLO", "GREEN THREADS"]);
    assert!(
        server.wait().unwrap().success(),
        "the server did not end after its one connection"
    );
}
