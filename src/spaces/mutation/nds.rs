//! NDS spaces are fixed lists of sampled records (a few thousand out of
//! spaces of 10^10 and more), so a one-gene change almost never lands on a
//! record. The mutation moves to the *nearest* record instead: a network's
//! genes are the leaves of its `net` description (each op, input, width,
//! depth, ...; a leaf one net has and the other has not counts as differing),
//! and the child is drawn uniformly among the records with the fewest
//! differing genes (at least one: never the same net).

use anyhow::{bail, Context, Result};
use rand::{Rng, RngCore};
use serde_json::Value;

/// The leaves of a JSON value as sorted `(path, value)` pairs.
pub fn genes(v: &Value) -> Vec<(String, String)> {
    fn walk(v: &Value, path: String, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => m.iter().for_each(|(k, x)| walk(x, format!("{path}/{k}"), out)),
            Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| walk(x, format!("{path}/{i}"), out)),
            other => out.push((path, other.to_string())),
        }
    }
    let mut out = Vec::new();
    walk(v, String::new(), &mut out);
    out.sort();
    out
}

/// Genes that differ between two sorted gene lists.
pub fn distance(a: &[(String, String)], b: &[(String, String)]) -> usize {
    let (mut i, mut j, mut d) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => (d, i) = (d + 1, i + 1),
            std::cmp::Ordering::Greater => (d, j) = (d + 1, j + 1),
            std::cmp::Ordering::Equal => {
                d += usize::from(a[i].1 != b[j].1);
                i += 1;
                j += 1;
            }
        }
    }
    d + (a.len() - i) + (b.len() - j)
}

/// The nearest other record's net (as the space writes archs: compact JSON).
pub fn mutate(nets: &[Value], space: &str, arch: &str, rng: &mut dyn RngCore) -> Result<String> {
    let v: Value = serde_json::from_str(arch).context("NDS mutation: the arch must be a record's 'net' as JSON")?;
    let me = genes(&v);
    let mut best = usize::MAX;
    let mut nearest: Vec<usize> = Vec::new();
    for (i, net) in nets.iter().enumerate() {
        let d = distance(&me, &genes(net));
        if d == 0 {
            continue;
        }
        if d < best {
            best = d;
            nearest.clear();
        }
        if d == best {
            nearest.push(i);
        }
    }
    if nearest.is_empty() {
        bail!("{space}: no other record than this net to mutate to");
    }
    Ok(serde_json::to_string(&nets[nearest[rng.random_range(0..nearest.len())]])?)
}
