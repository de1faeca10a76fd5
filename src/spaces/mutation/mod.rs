//! Mutations for guided search (`search --strategy evolution`): one module
//! per space, each turning an architecture into a valid, different network
//! of the same space (one that has an official index), reached through
//! [`super::Space::mutate`].
//!
//! A mutation draws only from the generator it is given, so a seeded
//! search reproduces its whole history.

pub mod nafbee;
pub mod nats_sss;
pub mod nb201;
pub mod nds;
pub mod transnas;

use rand::{Rng, RngCore};

/// One of `choices` uniformly (`None` when there is none).
pub fn pick<T: Clone>(choices: &[T], rng: &mut dyn RngCore) -> Option<T> {
    if choices.is_empty() {
        return None;
    }
    Some(choices[rng.random_range(0..choices.len())].clone())
}
