//! Shared memory written by another process is untrusted input. Every named object kind is
//! created, its file is scribbled on (targeted words, random bytes, truncation) and then
//! opened and used from a child process with a time limit: every case must end in a clean
//! `Ok` or `Err` — no panic, no signal, no hang. Bounded: the fixed cases and two seconds of
//! random ones (`stress` runs the random fuzz longer). The harness is
//! `examples/common/ipc_fuzz.rs`.

#[path = "../examples/common/ipc_fuzz.rs"]
mod ipc_fuzz;
#[path = "../examples/common/rng.rs"]
mod rng;

use std::os::unix::fs::FileExt;

use greenrt::ipc::Queue;
use ipc_fuzz::{case, file_of, kinds};

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn smoke_an_undamaged_object_opens_and_works() {
    let _t = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for kind in kinds() {
        case(&kind, "intact", |_, _| {}).unwrap();
    }
}

fn assert_clean(what: &str, fuzz: &ipc_fuzz::Fuzz) {
    eprintln!(
        "{what}: {} damaged objects opened and used, {} failures",
        fuzz.cases,
        fuzz.failures.len()
    );
    assert!(fuzz.cases > 0);
    assert!(
        fuzz.failures.is_empty(),
        "{} of {} cases failed: {:#?}",
        fuzz.failures.len(),
        fuzz.cases,
        fuzz.failures
    );
}

#[test]
fn targeted_words_random_bytes_and_truncation_end_in_clean_errors() {
    let _t = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    assert_clean("fixed cases", &ipc_fuzz::fixed_cases());
}

#[test]
fn random_damage_anywhere_in_the_file_ends_in_clean_errors() {
    let _t = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    assert_clean(
        "random cases",
        &ipc_fuzz::random_cases(2.0, 0x00f0_0d5e_ed00_1234),
    );
}

#[test]
fn a_forged_short_object_is_invalid_data_at_open() {
    let _t = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let name = format!("fuzz-{}-short-queue", std::process::id());
    let _ = std::fs::remove_file(file_of(&name));
    let q = Queue::<u64>::create(&name, 4096).unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(file_of(&name))
        .unwrap();
    f.set_len(64 + 8).unwrap();
    f.write_all_at(&(64u64 + 8).to_le_bytes(), 16).unwrap();
    let err = Queue::<u64>::open(&name).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("too short"), "{err}");
    drop(q);
}
