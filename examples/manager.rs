//! Shared dict and list, as with multiprocessing's `Manager()`: the list starts as
//! `range(5)`; each of N processes writes `dict[pid] = pid`, appends its pid to the list and
//! prints the list as it sees it; the parent prints both. No server
//! process: both live in shared memory (see `ipc::SharedDict`).
//!
//! `cargo run --release --example manager -- [--procs 10]`

#[path = "common/args.rs"]
mod args;

use greenrt::ipc::{SharedDict, SharedList};
use greenrt::process::{Process, current_pid};

fn main() -> std::io::Result<()> {
    let procs: usize = args::Cli::new(
        "manager",
        "processes fill a shared dict and list (Manager().dict() / .list())",
    )
    .mirrors("multiprocessing.Manager, course note 4 (multiprocessing: Process, Queue, Pipe, Manager, Pool)")
    .flag("procs", "N", 10, "processes")
    .parse()
    .get("procs");
    let dict: SharedDict<u32, u32> = SharedDict::new(64 * 1024)?;
    let list: SharedList<u32> = SharedList::new(64 * 1024)?;
    for i in 0..5 {
        list.push(&i)?; // manager.list(range(5))
    }
    let children: Vec<Process> = (0..procs)
        .map(|_| {
            let (dict, list) = (dict.clone(), list.clone());
            Process::spawn(move || {
                let me = current_pid();
                dict.insert(&me, &me).expect("dict insert");
                list.push(&me).expect("list push");
                let seen = list.snapshot().expect("list snapshot");
                println!("[pid {me}] wrote dict[{me}], appended {me}: list {seen:?}");
            })
        })
        .collect::<Result<_, _>>()?;
    for child in &children {
        child.join()?;
    }
    let entries = dict.snapshot()?;
    println!(
        "[pid {}] dict: {{{}}}",
        current_pid(),
        entries
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("[pid {}] list: {:?}", current_pid(), list.snapshot()?);
    println!(
        "manager: dict_len={} list_len={}",
        entries.len(),
        list.len()?
    );
    Ok(())
}
