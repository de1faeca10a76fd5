//! NAS-Bench-201 / NATS-Bench topology space: 15,625 cells of 6 edges, each one
//! of 5 ops, written `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`, in the official
//! index order (embedded from the benchmark's table).

use super::Space;
use crate::dataset::Dataset;
pub use crate::nets::nb201::{Cell, Op, EDGE_INPUT, EDGE_OUTPUT};
use crate::nets::{nb201::TinyNetwork, Net};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::sync::OnceLock;

impl Op {
    /// All ops in NB201's order.
    pub const ALL: [Op; 5] = [Op::None, Op::Skip, Op::Conv1x1, Op::Conv3x3, Op::AvgPool];

    /// The op's name in arch strings.
    pub fn name(self) -> &'static str {
        match self {
            Op::None => "none",
            Op::Skip => "skip_connect",
            Op::Conv1x1 => "nor_conv_1x1",
            Op::Conv3x3 => "nor_conv_3x3",
            Op::AvgPool => "avg_pool_3x3",
        }
    }

    fn from_name(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.name() == s)
    }
}

impl Cell {
    /// Parses an arch string, with an error naming what is wrong.
    pub fn parse(arch: &str) -> Result<Cell> {
        let bad = |why: String| anyhow::anyhow!("malformed NB201 arch '{}': {why}", crate::shown::shorten(arch));
        let nodes: Vec<&str> = arch.trim().split('+').collect();
        if nodes.len() != 3 {
            return Err(bad(format!("expected 3 nodes joined by '+', found {}", nodes.len())));
        }
        let mut ops = Vec::with_capacity(6);
        for (n, node) in nodes.iter().enumerate() {
            let inner = node.strip_prefix('|').and_then(|s| s.strip_suffix('|')).ok_or_else(|| {
                bad(format!("node {} '{}' must start and end with '|'", n + 1, crate::shown::shorten(node)))
            })?;
            let edges: Vec<&str> = inner.split('|').collect();
            if edges.len() != n + 1 {
                return Err(bad(format!("node {} needs {} edges, found {}", n + 1, n + 1, edges.len())));
            }
            for (i, edge) in edges.iter().enumerate() {
                let (name, input) = edge
                    .split_once('~')
                    .ok_or_else(|| bad(format!("edge '{}' is not 'op~input'", crate::shown::shorten(edge))))?;
                let op = Op::from_name(name).ok_or_else(|| {
                    let names: Vec<_> = Op::ALL.iter().map(|o| o.name()).collect();
                    bad(format!("unknown op '{}' (expected one of {})", crate::shown::shorten(name), names.join(", ")))
                })?;
                if input != i.to_string() {
                    return Err(bad(format!(
                        "edge '{}' of node {} must read node {i}",
                        crate::shown::shorten(edge),
                        n + 1
                    )));
                }
                ops.push(op);
            }
        }
        let mut out = [Op::None; 6];
        out.copy_from_slice(&ops);
        Ok(Cell { ops: out })
    }

    /// The cell as six op digits (NB201 `OP_NAMES` indices), e.g. `"331133"`.
    pub fn digits(&self) -> String {
        self.ops.iter().map(|o| char::from(b'0' + *o as u8)).collect()
    }

    fn from_digits(d: &str) -> Option<Cell> {
        let ops: Vec<Op> =
            d.bytes().map(|b| Op::ALL.get(b.wrapping_sub(b'0') as usize).copied()).collect::<Option<_>>()?;
        (ops.len() == 6).then(|| {
            let mut out = [Op::None; 6];
            out.copy_from_slice(&ops);
            Cell { ops: out }
        })
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = |i: usize| format!("{}~{}", self.ops[i].name(), EDGE_INPUT[i]);
        write!(f, "|{}|+|{}|{}|+|{}|{}|{}|", e(0), e(1), e(2), e(3), e(4), e(5))
    }
}

/// The official index order: `cells()[index]`.
struct Order {
    cells: Vec<Cell>,
    index: HashMap<Cell, usize>,
}

fn order() -> &'static Order {
    static ORDER: OnceLock<Order> = OnceLock::new();
    ORDER.get_or_init(|| {
        let gz: &[u8] = include_bytes!("../../data/nb201/archs.txt.gz");
        let mut text = String::new();
        flate2::read::GzDecoder::new(gz).read_to_string(&mut text).expect("embedded NB201 arch table is valid gzip");
        let cells: Vec<Cell> =
            text.lines().map(|l| Cell::from_digits(l).expect("embedded NB201 arch table holds op digits")).collect();
        let index = cells.iter().enumerate().map(|(i, c)| (*c, i)).collect();
        Order { cells, index }
    })
}

/// The NB201 topology space.
#[derive(Debug, Clone, Copy, Default)]
pub struct Nb201;

impl Space for Nb201 {
    fn name(&self) -> &str {
        "nb201"
    }
    fn len(&self) -> usize {
        order().cells.len()
    }
    fn arch(&self, index: usize) -> Result<String> {
        order()
            .cells
            .get(index)
            .map(|c| c.to_string())
            .with_context(|| format!("NB201 index {index} out of range 0..{}", self.len()))
    }
    fn index_of(&self, arch: &str) -> Result<usize> {
        let cell = Cell::parse(arch)?;
        Ok(order().index[&cell])
    }
    fn build(&self, arch: &str, dataset: Dataset) -> Result<Box<dyn Net>> {
        let cell = Cell::parse(arch)?;
        Ok(Box::new(TinyNetwork::new(cell, 16, 5, dataset.num_classes())))
    }
    fn datasets(&self) -> &'static [Dataset] {
        &[Dataset::Cifar10, Dataset::Cifar100, Dataset::ImageNet16]
    }
    fn mutate(&self, arch: &str, rng: &mut dyn rand::RngCore) -> Option<Result<String>> {
        Some(super::mutation::nb201::mutate(arch, rng))
    }
    fn crossover(&self, a: &str, b: &str, rng: &mut dyn rand::RngCore) -> Option<Result<String>> {
        Some(super::mutation::nb201::crossover(a, b, rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_matches_official_indices() {
        let s = Nb201;
        assert_eq!(s.len(), 15625);
        assert_eq!(
            s.arch(0).unwrap(),
            "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
        );
        assert_eq!(
            s.arch(15624).unwrap(),
            "|nor_conv_1x1~0|+|none~0|nor_conv_1x1~1|+|none~0|nor_conv_1x1~1|nor_conv_1x1~2|"
        );
        for i in [0, 1, 77, 9999, 15624] {
            assert_eq!(s.index_of(&s.arch(i).unwrap()).unwrap(), i);
        }
        assert!(s.arch(15625).is_err());
    }

    #[test]
    fn malformed_arch_strings_are_named() {
        let e = Cell::parse("|none~0|+|none~0|none~1|").unwrap_err().to_string();
        assert!(e.contains("expected 3 nodes"), "{e}");
        let e = Cell::parse("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|").unwrap_err().to_string();
        assert!(e.contains("unknown op 'conv_5x5'"), "{e}");
        let e = Cell::parse("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|").unwrap_err().to_string();
        assert!(e.contains("must read node 0"), "{e}");
        let e = Cell::parse("|none~0|+|none~0|+|none~0|none~1|none~2|").unwrap_err().to_string();
        assert!(e.contains("node 2 needs 2 edges"), "{e}");
    }
}
