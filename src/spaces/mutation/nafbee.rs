//! NAFBee: the activation changed to one of the ten others.

use crate::nets::activation::Activation;
use anyhow::Result;
use rand::{Rng, RngCore};

/// Another activation, uniform over the other ten.
pub fn mutate(arch: &str, rng: &mut dyn RngCore) -> Result<String> {
    let a = Activation::parse(arch)?;
    let others: Vec<&Activation> = Activation::ALL.iter().filter(|x| **x != a).collect();
    Ok(others[rng.random_range(0..others.len())].name().to_string())
}
