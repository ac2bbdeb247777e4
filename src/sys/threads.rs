//! How many OS threads this process has, from `/proc/self/stat`.

/// The number of threads in this process (field 20 of `/proc/self/stat`); 0 if unreadable.
pub(crate) fn thread_count() -> usize {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    // The command name (field 2) is in parentheses and may contain spaces: count after it.
    let Some(after_name) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0;
    };
    after_name
        .split_whitespace()
        .nth(17)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
