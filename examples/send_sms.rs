//! Start 10 processes that each "send an SMS", join them all, then report. Each child prints
//! its pid; the parent's join parks until every child has ended.

#[path = "common/args.rs"]
mod args;

use std::time::Duration;

use greenrt::process::Process;

fn main() -> std::io::Result<()> {
    args::Cli::new(
        "send_sms",
        "ten processes each send an SMS; the parent joins them all, then reports",
    )
    .mirrors(
        "Process.start / join of many processes, course note 0 (sockets, socketserver, processes)",
    )
    .parse();
    println!(
        "[pid {}] main: sending 10 messages in 10 processes",
        greenrt::process::current_pid()
    );
    let children: Vec<Process> = (1..=10)
        .map(|n| {
            Process::spawn(move || {
                std::thread::sleep(Duration::from_millis(100 + 20 * n));
                println!("[pid {}] message {n} sent", greenrt::process::current_pid());
            })
        })
        .collect::<Result<_, _>>()?;
    for child in &children {
        child.join()?;
    }
    println!("all 10 messages sent");
    Ok(())
}
