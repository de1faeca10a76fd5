//! NB201: one edge's operation changed to one of the four others. Every
//! one of the 5^6 cells is in the space, so the result always has an index.
//! Crossover: each edge's operation from one parent or the other.

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

/// Each of the six edges' operation from `a` or `b` (uniform crossover).
pub fn crossover(a: &str, b: &str, rng: &mut dyn RngCore) -> Result<String> {
    let (a, mut b) = (Cell::parse(a)?, Cell::parse(b)?);
    let mixed = super::uniform(&a.ops, &b.ops, rng);
    b.ops.copy_from_slice(&mixed);
    Ok(b.to_string())
}
