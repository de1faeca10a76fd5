//! Bounded memory across parallel workers: each network declares the bytes
//! its forward pass will hold at once (its space's estimate) and waits until
//! that fits in a shared budget, so a run's peak stays near libtorch's base
//! plus the budget however many cores score at once. Admission is first come,
//! first served, so a large network is never starved by small ones.

use std::sync::{Condvar, Mutex, MutexGuard};

/// The smallest default budget for the networks' working memory (MB): with
/// libtorch's ~250 MB base, a whole TransNAS run stays under 2 GB.
pub const DEFAULT_BUDGET_MB: u64 = 1536;

/// The default budget (MB) where the process can still allocate `available`
/// bytes ([`available`]: the machine's free memory, or a Slurm job's or a
/// container's limit): half of it, and at least [`DEFAULT_BUDGET_MB`]. A
/// fixed 1,536 MB held GraSP (1.2 GB a network) to one network at a time on
/// any machine, half of two cores idle.
pub fn default_budget_mb(available: Option<u64>) -> u64 {
    available.map_or(DEFAULT_BUDGET_MB, |b| ((b / 2) >> 20).max(DEFAULT_BUDGET_MB))
}

/// A shared memory budget (see the module docs).
#[derive(Debug)]
pub struct MemoryGate {
    budget: u64,
    state: Mutex<State>,
    turn: Condvar,
}

#[derive(Debug, Default)]
struct State {
    used: u64,
    next_ticket: u64,
    serving: u64,
}

/// Bytes held in a [`MemoryGate`], given back when dropped.
#[derive(Debug)]
pub struct Permit<'a> {
    gate: &'a MemoryGate,
    bytes: u64,
}

impl MemoryGate {
    /// A gate of `budget_bytes`; 0 means unlimited.
    pub fn new(budget_bytes: u64) -> Self {
        Self { budget: budget_bytes, state: Mutex::new(State::default()), turn: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for the earlier callers, then until `bytes` fit beside what is
    /// held. A request larger than the whole budget runs alone.
    pub fn acquire(&self, bytes: u64) -> Permit<'_> {
        if self.budget == 0 {
            return Permit { gate: self, bytes: 0 };
        }
        let want = bytes.min(self.budget);
        let mut st = self.lock();
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        while st.serving != ticket || st.used + want > self.budget {
            st = self.turn.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        st.serving += 1;
        st.used += want;
        self.turn.notify_all();
        Permit { gate: self, bytes: want }
    }

    /// Bytes held now.
    pub fn used(&self) -> u64 {
        self.lock().used
    }

    /// Whether a caller is waiting for its turn or for memory now.
    pub fn waited_on(&self) -> bool {
        let st = self.lock();
        st.next_ticket > st.serving
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.bytes > 0 {
            let mut st = self.gate.lock();
            st.used -= self.bytes;
            self.gate.turn.notify_all();
        }
    }
}

/// Hands the allocator's free memory back to the system (glibc's
/// `malloc_trim`). Each worker thread's malloc arena otherwise keeps the
/// peak of the largest network it scored, so two workers that took turns
/// with large proxies (the gate made one wait) would still hold both peaks
/// in RSS. Called after a network that reserved much memory while another
/// waited at the gate: the pages given back are faulted in again by the
/// next network, which cost 16% of a gradient proxy's time when done after
/// every network.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns unused heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Makes glibc's malloc keep freed memory for the next network instead of
/// handing it back to the kernel and faulting it in again: allocations up
/// to 32 MB come from the heap (glibc's default moves this threshold with
/// the sizes freed, so a gradient proxy's 4 MB activations were mapped and
/// unmapped each time), and up to 512 MB of free heap top is kept. Measured
/// with `rbflex bench --networks 20 --jobs 1 --proxy snip` on NB201: page
/// faults 1.51 M -> 0.20 M together with [`release_free_memory`] run only
/// while another worker waits. Called once by the command line, before its
/// threads start; a library does not change its host process's allocator.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets two of the allocator's thresholds.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

/// Bytes this process can still allocate: the least of the system's
/// available memory (`MemAvailable`), what its address-space limit
/// (`ulimit -v`) leaves beside what it maps now, and what its cgroup's
/// memory limit (a Slurm job's, a container's) leaves; `None` where none of
/// them can be read (not Linux). What a run would need beyond it is refused
/// before it starts (see [`check_fits`]), instead of ending in an
/// allocation failure or the kernel's OOM killer.
pub fn available() -> Option<u64> {
    let mut least: Option<u64> = None;
    let mut take = |v: u64| least = Some(least.map_or(v, |l| l.min(v)));
    let read = |p: &str| std::fs::read_to_string(p).ok();
    if let Some(kb) = read("/proc/meminfo").as_deref().and_then(|m| meminfo_field(m, "MemAvailable:")) {
        take(kb.saturating_mul(1024));
    }
    #[cfg(target_os = "linux")]
    {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes the limit into `lim`.
        if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) } == 0 && lim.rlim_cur != libc::RLIM_INFINITY {
            let mapped = read("/proc/self/statm")
                .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse::<u64>().ok()))
                .map_or(0, |pages| pages.saturating_mul(4096));
            take(lim.rlim_cur.saturating_sub(mapped));
        }
    }
    if let (Some(max), Some(cur)) = (read("/sys/fs/cgroup/memory.max"), read("/sys/fs/cgroup/memory.current")) {
        if let (Ok(max), Ok(cur)) = (max.trim().parse::<u64>(), cur.trim().parse::<u64>()) {
            take(max.saturating_sub(cur));
        }
    }
    least
}

/// A `/proc/meminfo` field's value (kB).
fn meminfo_field(meminfo: &str, name: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// Refuses `need` bytes (what `what` would hold) when more than `available`
/// is: one line naming the estimate, what is available and what to change.
pub fn check_fits(need: u64, available: Option<u64>, what: &str, advice: &str) -> anyhow::Result<()> {
    match available {
        Some(free) if need > free => {
            anyhow::bail!("{what} needs about {} of memory, more than the {} available: {advice}", gb(need), gb(free))
        }
        _ => Ok(()),
    }
}

/// How many items fit where `n` items need `need` bytes: in nine tenths of
/// `available` (a tenth kept aside: what the process maps grows as it
/// runs); 0 when unknown.
pub fn fitting(available: Option<u64>, n: u64, need: u64) -> u64 {
    available.map_or(0, |f| (u128::from(n) * u128::from(f) * 9 / 10 / u128::from(need.max(1))) as u64)
}

/// Bytes as gigabytes for messages (`21.3 GB`).
pub fn gb(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

/// Reservations from which [`release_free_memory`] runs after the network.
pub const TRIM_FROM_BYTES: u64 = 256 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_does_not_fit_is_refused_with_the_figures() {
        let e = check_fits(21_300_000_000, Some(15_000_000_000), "proxy snip", "use --proxy-batch 2100 or less");
        assert_eq!(
            e.unwrap_err().to_string(),
            "proxy snip needs about 21.3 GB of memory, more than the 15.0 GB available: use --proxy-batch 2100 or less"
        );
        // 10 items need 300 bytes; nine tenths of 1000 hold 30; unknown: 0
        assert_eq!((fitting(Some(1000), 10, 300), fitting(None, 10, 300)), (30, 0));
        assert!(check_fits(5, Some(5), "x", "y").is_ok() && check_fits(u64::MAX, None, "x", "y").is_ok());
        assert_eq!(meminfo_field("MemTotal:  10 kB\nMemAvailable:   2048 kB\n", "MemAvailable:"), Some(2048));
        assert!(available().is_some_and(|b| b > 0), "Linux: /proc/meminfo");
    }
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[test]
    fn waits_until_the_request_fits_then_admits_in_order() {
        let gate = MemoryGate::new(10);
        let first = gate.acquire(8);
        assert_eq!(gate.used(), 8);
        assert!(!gate.waited_on(), "nobody waits yet");
        let admitted = AtomicBool::new(false);
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let p = gate.acquire(5);
                admitted.store(true, Ordering::SeqCst);
                p.bytes
            });
            std::thread::sleep(Duration::from_millis(100));
            assert!(!admitted.load(Ordering::SeqCst), "8 + 5 > 10 must wait");
            assert!(gate.waited_on(), "the second caller waits");
            drop(first);
            assert_eq!(waiter.join().unwrap(), 5);
        });
        assert!(admitted.load(Ordering::SeqCst));
        assert_eq!(gate.used(), 0);
        assert!(!gate.waited_on(), "the waiter was served");
    }

    #[test]
    fn oversized_requests_run_alone_and_zero_budget_is_unlimited() {
        let gate = MemoryGate::new(10);
        let big = gate.acquire(50);
        assert_eq!(gate.used(), 10);
        drop(big);
        assert_eq!(gate.used(), 0);
        let free = MemoryGate::new(0);
        let (_a, _b) = (free.acquire(u64::MAX), free.acquire(u64::MAX));
        assert_eq!(free.used(), 0);
    }

    #[test]
    fn the_default_budget_is_half_the_available_memory_and_at_least_1536_mb() {
        assert_eq!(default_budget_mb(Some(10 << 30)), 5120);
        assert_eq!(default_budget_mb(Some(1 << 30)), 1536);
        assert_eq!(default_budget_mb(None), 1536);
    }
}
