//! Bounded memory across parallel workers: each network declares the bytes
//! its forward pass will hold at once (its space's estimate) and waits until
//! that fits in a shared budget, so a run's peak stays near libtorch's base
//! plus the budget however many cores score at once. Admission is first come,
//! first served, so a large network is never starved by small ones.

use std::sync::{Condvar, Mutex, MutexGuard};

/// Default budget for the networks' working memory (MB): with libtorch's
/// ~250 MB base, a whole TransNAS run stays under 2 GB.
pub const DEFAULT_BUDGET_MB: u64 = 1536;

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
/// with large proxies (the gate never let them overlap) would still hold
/// both peaks in RSS. Called after a network that reserved much memory.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns unused heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Reservations from which [`release_free_memory`] runs after the network.
pub const TRIM_FROM_BYTES: u64 = 256 << 20;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[test]
    fn waits_until_the_request_fits_then_admits_in_order() {
        let gate = MemoryGate::new(10);
        let first = gate.acquire(8);
        assert_eq!(gate.used(), 8);
        let admitted = AtomicBool::new(false);
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let p = gate.acquire(5);
                admitted.store(true, Ordering::SeqCst);
                p.bytes
            });
            std::thread::sleep(Duration::from_millis(100));
            assert!(!admitted.load(Ordering::SeqCst), "8 + 5 > 10 must wait");
            drop(first);
            assert_eq!(waiter.join().unwrap(), 5);
        });
        assert!(admitted.load(Ordering::SeqCst));
        assert_eq!(gate.used(), 0);
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
}
