//! NATS-SSS: one layer's channel count moved to a neighbouring choice
//! (8 <-> 16 <-> ... <-> 64); every combination is in the space.
//! Crossover: each layer's channel count from one parent or the other.

use crate::spaces::nats_sss::{parse, CHANNELS};
use anyhow::Result;
use rand::{Rng, RngCore};

/// `arch` with one layer (uniform over the five) one channel step up or
/// down (uniform over the steps that stay in 8..=64).
pub fn mutate(arch: &str, rng: &mut dyn RngCore) -> Result<String> {
    let mut ch = parse(arch)?;
    let layer = rng.random_range(0..ch.len());
    let at = CHANNELS.iter().position(|c| *c == ch[layer]).unwrap_or(0);
    let steps: Vec<usize> =
        [at.checked_sub(1), Some(at + 1).filter(|n| *n < CHANNELS.len())].into_iter().flatten().collect();
    ch[layer] = CHANNELS[steps[rng.random_range(0..steps.len())]];
    Ok(join(&ch))
}

/// Each of the five layers' channel count from `a` or `b` (uniform crossover).
pub fn crossover(a: &str, b: &str, rng: &mut dyn RngCore) -> Result<String> {
    Ok(join(&super::uniform(&parse(a)?, &parse(b)?, rng)))
}

fn join(ch: &[i64]) -> String {
    ch.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(":")
}
