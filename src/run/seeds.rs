//! The seeds of a run: each network is built with its own init seed, so
//! that a score never depends on order, jobs or resumption.

use anyhow::{bail, Result};

/// Networks a space may hold: `init_seed` gives each index its own million.
pub const MAX_SPACE_LEN: usize = 1_000_000;

/// The largest run seed whose init seeds (`seed * 1_000_000 + index`) all fit
/// in PyTorch's `manual_seed` (an i64): 9,223,372,036,853.
pub const MAX_RUN_SEED: u64 = (i64::MAX as u64 - (MAX_SPACE_LEN as u64 - 1)) / MAX_SPACE_LEN as u64;

/// Refuses a run seed whose init seeds would overflow (and so collide with
/// another seed's networks).
pub fn check_run_seed(seed: u64) -> Result<()> {
    if seed > MAX_RUN_SEED {
        bail!(
            "--seed {seed} is too large: networks are built with seed * 1000000 + index, which must fit in a 64-bit signed integer (at most {MAX_RUN_SEED})"
        );
    }
    Ok(())
}

/// The seed a network is built with in a run: `seed * 1_000_000 + index`,
/// distinct for every (seed, index) pair that [`check_run_seed`] and
/// [`MAX_SPACE_LEN`] allow (`Setting::new` checks both).
pub fn init_seed(run_seed: u64, index: usize) -> i64 {
    (run_seed as i64).wrapping_mul(1_000_000).wrapping_add(index as i64)
}
