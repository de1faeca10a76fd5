//! TransNAS-Bench-101 micro (4,096 cells `64-41414-a_bc_def`) and macro (3,255
//! codes `64-XXXX-basic`) spaces, in the order of the benchmark's tables.

use super::Space;
use crate::dataset::Dataset;
use crate::nets::transnas::{CellCode, NetCode, TransNet};
use crate::nets::Net;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::io::Read;
use std::sync::OnceLock;

/// The seven Taskonomy tasks, in table order.
pub const TASKS: [&str; 7] =
    ["class_scene", "class_object", "jigsaw", "room_layout", "segmentsemantic", "normal", "autoencoder"];

/// Most channels a code may ask for (the benchmark's are 64).
pub const MAX_CHANNELS: i64 = 512;
/// Most macro layers a code may have (the benchmark's have 4 to 6).
pub const MAX_LAYERS: usize = 8;

/// Parses a network code, with an error naming what is wrong. As the
/// reference does, `41414` is built as `41412` (only when `build` asks).
pub fn parse(code: &str) -> Result<NetCode> {
    let bad = |why: String| anyhow::anyhow!("malformed TransNAS arch code '{}': {why}", crate::shown::shorten(code));
    let sh = crate::shown::shorten;
    let parts: Vec<&str> = code.trim().split('-').collect();
    if parts.len() != 3 {
        return Err(bad("expected 'channels-macro-cell', e.g. 64-41414-3_33_333 or 64-4111-basic".into()));
    }
    let channels: i64 = parts[0].parse().map_err(|_| bad(format!("channels '{}' is not a number", sh(parts[0]))))?;
    if !(2..=MAX_CHANNELS).contains(&channels) || channels % 2 != 0 {
        return Err(bad(format!("channels {channels} out of range (an even number in 2..={MAX_CHANNELS})")));
    }
    let macro_code: Vec<u8> = parts[1]
        .bytes()
        .map(|b| (b'1'..=b'4').contains(&b).then_some(b - b'0'))
        .collect::<Option<_>>()
        .ok_or_else(|| bad(format!("macro code '{}' must be digits 1-4", sh(parts[1]))))?;
    if macro_code.len() < 3 {
        return Err(bad(format!("macro code '{}' needs at least 3 layers (the head reads 3)", parts[1])));
    }
    if macro_code.len() > MAX_LAYERS {
        return Err(bad(format!("macro code '{}' has more than {MAX_LAYERS} layers", sh(parts[1]))));
    }
    let cell = if parts[2] == "basic" {
        CellCode::Basic
    } else {
        let nodes: Vec<Vec<u8>> = parts[2]
            .split('_')
            .map(|n| n.bytes().map(|b| (b'0'..=b'3').contains(&b).then_some(b - b'0')).collect::<Option<Vec<u8>>>())
            .collect::<Option<_>>()
            .ok_or_else(|| bad(format!("cell '{}' must be 'basic' or ops 0-3 like a_bc_def", sh(parts[2]))))?;
        if nodes.iter().enumerate().any(|(i, n)| n.len() != i + 1) {
            return Err(bad(format!("cell '{}' must have 1, 2 and 3 ops per node (a_bc_def)", sh(parts[2]))));
        }
        CellCode::Micro(nodes)
    };
    Ok(NetCode { channels, macro_code, cell })
}

/// The embedded table of one space: codes in order, and the seven task values.
pub struct Table {
    /// Codes in index order.
    pub codes: Vec<String>,
    /// `values[i][t]`: task `t` of network `i`.
    pub values: Vec<[f64; 7]>,
    index: HashMap<String, usize>,
}

fn load(gz: &[u8]) -> Table {
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz).read_to_string(&mut text).expect("embedded TransNAS table is valid gzip");
    let mut codes = Vec::new();
    let mut values = Vec::new();
    for line in text.lines().skip(1) {
        let mut it = line.split(',');
        codes.push(it.next().unwrap_or_default().to_string());
        let mut row = [0.0; 7];
        for (slot, v) in row.iter_mut().zip(it) {
            *slot = v.parse().expect("embedded TransNAS value is a number");
        }
        values.push(row);
    }
    let index = codes.iter().enumerate().map(|(i, c)| (c.clone(), i)).collect();
    Table { codes, values, index }
}

/// The micro table.
pub fn micro_table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(|| load(include_bytes!("../../data/transnas/micro.csv.gz")))
}

/// The macro table.
pub fn macro_table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(|| load(include_bytes!("../../data/transnas/macro.csv.gz")))
}

/// A TransNAS space.
#[derive(Debug, Clone, Copy)]
pub struct TransNas {
    /// Micro (cells) or macro (layouts).
    pub micro: bool,
}

/// TransNAS-Bench-101 micro: 4,096 cells.
pub static MICRO: TransNas = TransNas { micro: true };

/// TransNAS-Bench-101 macro: 3,255 layouts.
pub static MACRO: TransNas = TransNas { micro: false };

impl TransNas {
    /// Its table.
    pub fn table(&self) -> &'static Table {
        if self.micro {
            micro_table()
        } else {
            macro_table()
        }
    }
}

impl Space for TransNas {
    fn name(&self) -> &str {
        if self.micro {
            "transnas-micro"
        } else {
            "transnas-macro"
        }
    }
    fn len(&self) -> usize {
        self.table().codes.len()
    }
    fn arch(&self, index: usize) -> Result<String> {
        self.table()
            .codes
            .get(index)
            .cloned()
            .with_context(|| format!("{} index {index} out of range 0..{}", self.name(), self.len()))
    }
    fn index_of(&self, arch: &str) -> Result<usize> {
        parse(arch)?;
        self.table()
            .index
            .get(arch.trim())
            .copied()
            .with_context(|| format!("'{}' is not in the {} space", crate::shown::shorten(arch), self.name()))
    }
    fn build(&self, arch: &str, _dataset: Dataset) -> Result<Box<dyn Net>> {
        match (self.micro, parse(arch)?.cell) {
            (true, CellCode::Basic) => bail!(
                "'{arch}' is a transnas-macro code (basic blocks); transnas-micro takes cell codes such as 64-41414-3_33_333"
            ),
            (false, CellCode::Micro(_)) => bail!(
                "'{arch}' is a transnas-micro code (a searched cell); transnas-macro takes codes such as 64-4111-basic"
            ),
            _ => {}
        }
        let code = parse(&arch.replace("41414", "41412"))?;
        Ok(Box::new(TransNet::new(&code)))
    }
    fn datasets(&self) -> &'static [Dataset] {
        &[Dataset::Taskonomy]
    }
    fn mutate(&self, arch: &str, rng: &mut dyn rand::RngCore) -> Option<Result<String>> {
        use super::mutation::transnas::{mutate_macro, mutate_micro};
        Some(if self.micro { mutate_micro(arch, rng) } else { mutate_macro(arch, rng) })
    }
    fn crossover(&self, a: &str, b: &str, rng: &mut dyn rand::RngCore) -> Option<Result<String>> {
        self.micro.then(|| super::mutation::transnas::crossover_micro(a, b, rng))
    }
    /// Measured at 512x512 (peak RSS minus the process's base, batch 3):
    /// 2.7-7.1 times the largest feature map of the batch, for the three
    /// sizes of largest map in the macro space; 7 times is the estimate.
    fn working_set(&self, arch: &str, input: &[i64]) -> Result<u64> {
        let code = parse(arch)?;
        let (n, h, w) = match input {
            [n, _, h, w] => (*n, *h, *w),
            _ => bail!("TransNAS input must be [N, C, H, W], got {input:?}"),
        };
        Ok(7 * 4 * (n * code.largest_feature(h, w)).max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_errors() {
        assert_eq!(micro_table().codes.len(), 4096);
        assert_eq!(macro_table().codes.len(), 3255);
        assert_eq!(micro_table().codes[0], "64-41414-0_00_000");
        let c = parse("64-41414-1_02_333").unwrap();
        assert_eq!(c.cell, CellCode::Micro(vec![vec![1], vec![0, 2], vec![3, 3, 3]]));
        assert!(parse("64-41514-basic").unwrap_err().to_string().contains("digits 1-4"));
        assert!(parse("64-4141-0_00_00").unwrap_err().to_string().contains("1, 2 and 3 ops"));
        assert!(parse("64-41414-0_04_000").unwrap_err().to_string().contains("ops 0-3"));
        assert!(parse("x-41414-basic").unwrap_err().to_string().contains("not a number"));
        // 512 channels at 128x128, batch 3, float32, times 7
        let macro_space = TransNas { micro: false };
        let ws = macro_space.working_set("64-222113-basic", &[3, 3, 512, 512]).unwrap();
        assert_eq!(ws, 7 * 4 * 3 * 512 * 128 * 128);
        // the stem's 32 x 256 x 256 is the largest map of every micro net
        let ws = TransNas { micro: true }.working_set("64-41414-3_33_333", &[3, 3, 512, 512]).unwrap();
        assert_eq!(ws, 7 * 4 * 3 * 32 * 256 * 256);
        assert!(parse("64_41414").unwrap_err().to_string().contains("expected 'channels-macro-cell'"));
    }
}
