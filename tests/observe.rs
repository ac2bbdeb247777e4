//! Seeing inside the runtime: `stats()` and `dump()` agree with a known workload.

use std::rc::Rc;
use std::time::Duration;

/// Tracing is process-wide (a trace holds the records of every hub that ended while it was
/// on): the tests that trace take turns.
static TRACING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn tracing_turn() -> std::sync::MutexGuard<'static, ()> {
    TRACING.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn stats_and_dump_agree_with_a_known_workload() {
    let before = greenrt::stats();
    let event = Rc::new(greenrt::sync::Event::new());
    let listener = greenrt::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let sleepers: Vec<_> = (0..3)
        .map(|i| {
            greenrt::Builder::new()
                .name(format!("sleeper-{i}"))
                .spawn(|| greenrt::sleep(Duration::from_secs(5)))
                .unwrap()
        })
        .collect();
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let e = event.clone();
            greenrt::spawn(move || e.wait())
        })
        .collect();
    let acceptor = greenrt::Builder::new()
        .name("acceptor".into())
        .spawn(move || listener.accept().map(|_| ()))
        .unwrap();
    greenrt::sleep(Duration::from_millis(30)); // everyone starts and parks
    let s = greenrt::stats();
    assert_eq!(s.alive, 6, "{s:?}");
    assert_eq!(
        (s.parked.timer, s.parked.sync, s.parked.io, s.ready),
        (3, 2, 1, 0),
        "{s:?}"
    );
    assert_eq!(s.spawns - before.spawns, 6);
    assert!(s.switches - before.switches >= 6, "{s:?}");
    assert!(s.polls > before.polls);
    // Six parked stacks have at least their top page (frames) resident.
    assert!(s.stack_resident_bytes >= 6 * 4096, "{s:?}");
    let text = greenrt::dump();
    assert_eq!(
        text.lines().filter(|l| l.contains("'sleeper-")).count(),
        3,
        "{text}"
    );
    assert!(
        text.lines()
            .filter(|l| l.contains("a sleep"))
            .all(|l| l.contains("spawned at tests/observe.rs")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("'acceptor' Parked on fd") && l.contains("readable")),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.contains("Event at")).count(),
        2,
        "{text}"
    );
    // The waits are at least as old as our 30 ms nap (the clock is coarse, not early).
    assert!(
        text.lines().filter(|l| l.contains(" for ~")).count() == 6,
        "{text}"
    );
    event.set();
    for h in sleepers {
        h.kill();
    }
    acceptor.kill();
    greenrt::joinall(waiters);
    assert_eq!(greenrt::stats().alive, 0);
}

#[test]
fn watchdog_reports_a_spinning_green_thread_and_not_a_yielding_one() {
    greenrt::hub::watchdog(Duration::from_millis(100));
    let spin = |yielding: bool| {
        move || {
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_millis(300) {
                if yielding {
                    greenrt::yield_now();
                }
                std::hint::spin_loop();
            }
        }
    };
    let polite = greenrt::Builder::new()
        .name("polite".into())
        .spawn(spin(true))
        .unwrap();
    polite.join().unwrap();
    let hog = greenrt::Builder::new()
        .name("hog".into())
        .spawn(spin(false))
        .unwrap();
    let hog_id = hog.id();
    hog.join().unwrap();
    let reports = greenrt::hub::stall_reports();
    let about_hog: Vec<_> = reports.iter().filter(|r| r.green == hog_id).collect();
    assert!(
        about_hog
            .iter()
            .any(|r| !r.ended && r.spawned_at.contains("tests/observe.rs")),
        "live report: {reports:?}"
    );
    assert!(
        about_hog.iter().any(|r| r.ended
            && r.name.as_deref() == Some("hog")
            && r.ran >= Duration::from_millis(100)),
        "{reports:?}"
    );
    assert!(
        !reports.iter().any(|r| r.name.as_deref() == Some("polite")),
        "a yielding green thread was reported: {reports:?}"
    );
}

/// The interleaving of 8 green threads that each yield 5 times, on a fresh hub (a new OS
/// thread) seeded with `seed`.
fn schedule(seed: u64) -> Vec<usize> {
    std::thread::spawn(move || {
        greenrt::hub::seed_schedule(seed);
        let order = Rc::new(std::cell::RefCell::new(Vec::new()));
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let o = order.clone();
                greenrt::spawn(move || {
                    for _ in 0..5 {
                        o.borrow_mut().push(i);
                        greenrt::yield_now();
                    }
                })
            })
            .collect();
        greenrt::joinall(hs);
        order.borrow().clone()
    })
    .join()
    .unwrap()
}

#[test]
fn the_same_seed_replays_the_same_schedule_and_another_seed_differs() {
    let fifo = schedule(0);
    let expected_fifo: Vec<usize> = (0..5).flat_map(|_| 0..8).collect();
    assert_eq!(fifo, expected_fifo, "unseeded is FIFO");
    let a = schedule(12345);
    assert_eq!(a, schedule(12345), "same seed, same schedule");
    assert_ne!(a, schedule(54321), "another seed, another schedule");
    assert_ne!(a, fifo, "a seeded schedule is not FIFO");
    let mut counts = [0; 8];
    a.iter().for_each(|&i| counts[i] += 1);
    assert_eq!(counts, [5; 8], "every green thread still ran all its steps");
}

#[test]
fn sigusr1_prints_the_dump_of_every_hub() {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY (test): a pipe for the child's stderr.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let child = greenrt::process::Process::spawn(move || {
        // SAFETY (test): the child's stderr becomes the pipe.
        unsafe { libc::dup2(fds[1], 2) };
        greenrt::hub::dump_on_sigusr1().unwrap();
        let sleeper = greenrt::Builder::new()
            .name("dreamer".into())
            .spawn(|| greenrt::sleep(Duration::from_secs(5)))
            .unwrap();
        greenrt::sleep(Duration::from_millis(20));
        // SAFETY (test): signalling ourselves.
        unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
        greenrt::sleep(Duration::from_millis(200)); // the hub polls, sees the request, prints
        sleeper.kill();
    })
    .unwrap();
    assert!(child.join().unwrap().success());
    // SAFETY (test): our end of the pipe; the write end closed in the child by its exit.
    unsafe { libc::close(fds[1]) };
    let mut text = String::new();
    // SAFETY (test): the read end, owned by this File only.
    unsafe { std::fs::File::from_raw_fd(fds[0]) }
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains("'dreamer' Parked on a sleep"), "{text}");
}

#[test]
fn trace_is_json_with_well_nested_slices_that_match_the_workload() {
    let _turn = tracing_turn();
    std::thread::spawn(|| {
        greenrt::trace::start();
        let lock = Rc::new(greenrt::sync::Mutex::new(0));
        let hs: Vec<_> = (0..3)
            .map(|i| {
                let lock = lock.clone();
                greenrt::Builder::new()
                    .name(format!("worker-{i}"))
                    .spawn(move || {
                        greenrt::sleep(Duration::from_millis(5));
                        let mut g = lock.lock();
                        greenrt::yield_now();
                        *g += 1;
                    })
                    .unwrap()
            })
            .collect();
        greenrt::joinall(hs);
        let trace = greenrt::trace::stop();
        let json: serde_json::Value = serde_json::from_str(&trace.to_json()).expect("valid JSON");
        let events = json["traceEvents"].as_array().unwrap();
        // Hubs of other tests that end meanwhile add their records: look at our workers only.
        let workers: Vec<u64> = events
            .iter()
            .filter(|e| e["ph"] == "M")
            .filter(|e| {
                e["args"]["name"]
                    .as_str()
                    .is_some_and(|n| n.contains("'worker-"))
            })
            .filter_map(|e| e["tid"].as_u64())
            .collect();
        let count = |name: &str| {
            events
                .iter()
                .filter(|e| e["name"] == name)
                .filter(|e| e["tid"].as_u64().is_some_and(|t| workers.contains(&t)))
                .count()
        };
        assert_eq!(count("spawn"), 3);
        assert_eq!(count("exit"), 3);
        let names: Vec<&str> = events
            .iter()
            .filter(|e| e["ph"] == "M")
            .filter_map(|e| e["args"]["name"].as_str())
            .collect();
        assert!(
            names.iter().filter(|n| n.contains("'worker-")).count() == 3,
            "{names:?}"
        );
        let parked: Vec<&str> = events
            .iter()
            .filter_map(|e| e["name"].as_str())
            .filter(|n| n.starts_with("parked: "))
            .collect();
        assert!(parked.contains(&"parked: a sleep"), "{parked:?}");
        assert!(
            events.iter().any(|e| e["name"] == "poll"),
            "hub poll slices"
        );
        // Slices of one track never overlap: each starts after the previous one ended.
        let mut by_tid: std::collections::HashMap<u64, Vec<(f64, f64)>> = Default::default();
        for e in events.iter().filter(|e| e["ph"] == "X") {
            let (ts, dur) = (e["ts"].as_f64().unwrap(), e["dur"].as_f64().unwrap());
            assert!(dur >= 0.0);
            by_tid
                .entry(e["tid"].as_u64().unwrap())
                .or_default()
                .push((ts, ts + dur));
        }
        for (tid, mut slices) in by_tid {
            slices.sort_by(|a, b| a.0.total_cmp(&b.0));
            for pair in slices.windows(2) {
                assert!(
                    pair[1].0 >= pair[0].1 - 0.002,
                    "track {tid}: {:?} overlaps {:?}",
                    pair[0],
                    pair[1]
                );
            }
        }
    })
    .join()
    .unwrap();
}

/// (name, start µs, duration µs) of every slice on the track of the green thread `name`.
fn slices_of(json: &serde_json::Value, name: &str) -> Vec<(String, f64, f64)> {
    let events = json["traceEvents"].as_array().unwrap();
    let tid = events
        .iter()
        .find(|e| {
            e["ph"] == "M"
                && e["args"]["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with(name))
        })
        .and_then(|e| e["tid"].as_u64())
        .unwrap_or_else(|| panic!("no track for {name}"));
    let mut slices: Vec<_> = events
        .iter()
        .filter(|e| e["ph"] == "X" && e["tid"].as_u64() == Some(tid))
        .map(|e| {
            let name = e["name"].as_str().unwrap().to_string();
            (name, e["ts"].as_f64().unwrap(), e["dur"].as_f64().unwrap())
        })
        .collect();
    slices.sort_by(|a, b| a.1.total_cmp(&b.1));
    slices
}

#[test]
fn a_sleeper_is_drawn_running_then_parked_for_its_whole_sleep() {
    let _turn = tracing_turn();
    std::thread::spawn(|| {
        greenrt::trace::start();
        let sleeper = greenrt::Builder::new()
            .name("sleeper".into())
            .spawn(|| greenrt::sleep(Duration::from_millis(200)))
            .unwrap();
        let yielder = greenrt::Builder::new()
            .name("yielder".into())
            .spawn(|| (0..3).for_each(|_| greenrt::yield_now()))
            .unwrap();
        sleeper.join().unwrap();
        yielder.join().unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&greenrt::trace::stop().to_json()).unwrap();

        let slices = slices_of(&json, "'sleeper'");
        let parks: Vec<_> = slices.iter().filter(|s| s.0 == "parked: a sleep").collect();
        assert_eq!(parks.len(), 1, "{slices:?}");
        let park = parks[0];
        assert!(
            (190_000.0..1_000_000.0).contains(&park.2),
            "the 200 ms sleep is a {} µs parked slice: {slices:?}",
            park.2
        );
        let run = slices.iter().find(|s| s.0 == "run").expect("a run slice");
        assert!(
            run.1 + run.2 <= park.1 + 1.0,
            "it ran before it parked: {slices:?}"
        );
        assert!(
            slices
                .iter()
                .filter(|s| s.0 == "ready")
                .all(|s| s.2 < 50_000.0),
            "no long ready slice while it slept: {slices:?}"
        );

        // A yield is drawn as run, then ready until the next run.
        let yields = slices_of(&json, "'yielder'");
        assert_eq!(
            yields.iter().filter(|s| s.0 == "run").count(),
            4,
            "{yields:?}"
        );
        assert!(
            yields.iter().all(|s| !s.0.starts_with("parked")),
            "{yields:?}"
        );
    })
    .join()
    .unwrap();
}

/// Checks that `xml` is well formed in the simple way our SVG needs: tags balance.
fn tags_balance(xml: &str) -> bool {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = xml;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').map(|c| open + c);
        let Some(close) = close else { return false };
        let tag = &rest[open + 1..close];
        if let Some(name) = tag.strip_prefix('/') {
            if stack.pop().as_deref() != Some(name.trim()) {
                return false;
            }
        } else if !tag.ends_with('/') && !tag.starts_with('?') && !tag.starts_with('!') {
            stack.push(tag.split_whitespace().next().unwrap_or("").to_string());
        }
        rest = &rest[close + 1..];
    }
    stack.is_empty()
}

#[test]
fn svg_timeline_is_valid_xml_with_one_row_per_green_thread() {
    let _turn = tracing_turn();
    std::thread::spawn(|| {
        greenrt::trace::start();
        let hs: Vec<_> = (0..4)
            .map(|i| {
                greenrt::Builder::new()
                    .name(format!("row-{i}"))
                    .spawn(move || greenrt::sleep(Duration::from_millis(2 + i)))
                    .unwrap()
            })
            .collect();
        greenrt::joinall(hs);
        let svg = greenrt::trace::stop().to_svg();
        assert!(
            svg.starts_with("<svg") && tags_balance(&svg),
            "malformed SVG:\n{svg}"
        );
        let rows: Vec<&str> = svg
            .lines()
            .filter(|l| l.starts_with("<g class=\"row\">"))
            .collect();
        assert_eq!(
            rows.iter().filter(|l| l.contains("'row-")).count(),
            4,
            "{rows:?}"
        );
        assert!(
            svg.contains("fill=\"#9e9e9e\""),
            "sleeps drawn as timer waits"
        );
        assert!(svg.contains("fill=\"#2ca02c\""), "run slices drawn");
    })
    .join()
    .unwrap();
}
