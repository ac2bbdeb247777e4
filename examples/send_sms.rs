//! Start 10 processes that each "send an SMS", join them all, then report. Each child prints
//! its pid; the parent's join parks until every child has ended.

use std::time::Duration;

use greenrt::process::Process;

fn main() -> std::io::Result<()> {
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
