//! Weights drawn from the global tch RNG, seeded: PyTorch's
//! `torch.manual_seed(s)` then the module's construction, so that the
//! reference's weights are reproduced bit for bit, from any thread.

/// Serialises "seed the global tch RNG, then draw a network's parameters", so
/// that networks built on several threads keep the weights their seed gives.
static INIT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` right after `tch::manual_seed(seed)`, holding the lock that keeps
/// other threads from drawing from the global RNG meanwhile.
pub fn seeded<T>(seed: i64, f: impl FnOnce() -> T) -> T {
    let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(seed);
    f()
}
