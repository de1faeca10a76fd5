//! NB201: one edge's operation changed to one of the four others. Every
//! one of the 5^6 cells is in the space, so the result always has an index.

use crate::spaces::nb201::{Cell, Op};
use anyhow::Result;
use rand::{Rng, RngCore};

/// `arch` with one edge (uniform over the six) given another op (uniform
/// over the other four).
pub fn mutate(arch: &str, rng: &mut dyn RngCore) -> Result<String> {
    let mut cell = Cell::parse(arch)?;
    let edge = rng.random_range(0..cell.ops.len());
    let others: Vec<Op> = Op::ALL.into_iter().filter(|o| *o != cell.ops[edge]).collect();
    cell.ops[edge] = others[rng.random_range(0..others.len())];
    Ok(cell.to_string())
}
