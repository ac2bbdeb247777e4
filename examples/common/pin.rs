//! Pinning the calling thread (and the children it forks after) to one CPU, for the
//! side-by-side comparisons: producer and consumer on different cores, every run alike.

/// Runs the calling thread on `cpu` only; a process forked after inherits it.
pub fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET writes inside it; sched_setaffinity
    // only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Lets the calling thread (and the children it forks after) run on every CPU again.
#[allow(dead_code)] // not every example that pins unpins
pub fn unpin() {
    // SAFETY: as in `pin_to_cpu`, with every CPU the set can name.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for cpu in 0..libc::CPU_SETSIZE as usize {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}
