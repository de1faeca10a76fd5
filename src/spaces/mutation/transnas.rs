//! TransNAS-Bench-101. Micro: one of the cell's six operations changed to
//! one of the three others (all 4^6 cells are in the table). Macro: one step
//! of the layout: a block's code changed (1 plain, 2 downsampling, 3 channels
//! doubled, 4 both), a block inserted or one removed; of those neighbours,
//! only the codes in the table (3,255 of the layouts) are drawn from.
//! Crossover (micro only: a macro layout's length varies): each of the
//! cell's operations from one parent or the other.

use crate::spaces::transnas::{parse, TransNas};
use crate::spaces::Space;
use anyhow::{bail, Context, Result};
use rand::{Rng, RngCore};

/// A micro cell with one operation changed (the result must be in the table).
pub fn mutate_micro(arch: &str, rng: &mut dyn RngCore) -> Result<String> {
    let space = TransNas { micro: true };
    space.index_of(arch)?;
    let (head, cell) = arch.trim().rsplit_once('-').context("a micro code has a cell")?;
    let mut ops: Vec<u8> = cell.bytes().collect();
    let slots: Vec<usize> = (0..ops.len()).filter(|i| ops[*i] != b'_').collect();
    let at = slots[rng.random_range(0..slots.len())];
    let others: Vec<u8> = (b'0'..=b'3').filter(|o| *o != ops[at]).collect();
    ops[at] = others[rng.random_range(0..others.len())];
    let code = format!("{head}-{}", String::from_utf8_lossy(&ops));
    space.index_of(&code).with_context(|| format!("micro mutation of '{arch}'"))?;
    Ok(code)
}

/// A micro cell whose operations each come from `a` or `b` (uniform
/// crossover; the result must be in the table).
pub fn crossover_micro(a: &str, b: &str, rng: &mut dyn RngCore) -> Result<String> {
    let space = TransNas { micro: true };
    space.index_of(a)?;
    space.index_of(b)?;
    let (head, ca) = a.trim().rsplit_once('-').context("a micro code has a cell")?;
    let (_, cb) = b.trim().rsplit_once('-').context("a micro code has a cell")?;
    let ops = super::uniform(ca.as_bytes(), cb.as_bytes(), rng);
    let code = format!("{head}-{}", String::from_utf8_lossy(&ops));
    space.index_of(&code).with_context(|| format!("micro crossover of '{a}' and '{b}'"))?;
    Ok(code)
}

/// Every code of the macro table one layout step from `arch`, sorted.
pub fn macro_neighbours(arch: &str) -> Result<Vec<String>> {
    let space = TransNas { micro: false };
    space.index_of(arch)?;
    let code = parse(arch)?;
    let digits: Vec<u8> = code.macro_code.clone();
    let mut layouts: Vec<Vec<u8>> = Vec::new();
    for i in 0..digits.len() {
        for d in 1..=4u8 {
            if d != digits[i] {
                let mut v = digits.clone();
                v[i] = d;
                layouts.push(v);
            }
        }
        let mut v = digits.clone();
        v.remove(i);
        layouts.push(v);
    }
    for i in 0..=digits.len() {
        for d in 1..=4u8 {
            let mut v = digits.clone();
            v.insert(i, d);
            layouts.push(v);
        }
    }
    let mut out: Vec<String> = layouts
        .into_iter()
        .map(|v| format!("{}-{}-basic", code.channels, v.iter().map(|d| char::from(b'0' + d)).collect::<String>()))
        .filter(|c| c != arch.trim() && space.index_of(c).is_ok())
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// A macro layout one step away, uniform over the table's neighbours.
pub fn mutate_macro(arch: &str, rng: &mut dyn RngCore) -> Result<String> {
    let n = macro_neighbours(arch)?;
    if n.is_empty() {
        bail!("'{}' has no neighbour in the transnas-macro table", crate::shown::shorten(arch));
    }
    Ok(n[rng.random_range(0..n.len())].clone())
}
