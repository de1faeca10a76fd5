//! NATS-Bench size space: 32,768 networks `c1:c2:c3:c4:c5`, each channel count
//! in {8, 16, ..., 64}; index = five base-8 digits, most significant first.
//! Every network uses the best NB201 cell.

use super::nb201::Cell;
use super::Space;
use crate::dataset::Dataset;
use crate::nets::{nb201::TinyNetwork, Net};
use anyhow::{bail, Result};

/// The cell of every size-space network.
pub const CELL: &str =
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";

/// Channel counts allowed at each layer.
pub const CHANNELS: [i64; 8] = [8, 16, 24, 32, 40, 48, 56, 64];

/// Parses `c1:c2:c3:c4:c5`, with an error naming the bad part.
pub fn parse(arch: &str) -> Result<[i64; 5]> {
    let shown = crate::shown::shorten(arch);
    let parts: Vec<&str> = arch.trim().split(':').collect();
    if parts.len() != 5 {
        bail!("malformed NATS-SSS arch '{shown}': expected 5 channel counts joined by ':', found {}", parts.len());
    }
    let mut out = [0; 5];
    for (i, p) in parts.iter().enumerate() {
        let c: i64 = p.parse().map_err(|_| {
            anyhow::anyhow!("malformed NATS-SSS arch '{shown}': '{}' is not a number", crate::shown::shorten(p))
        })?;
        if !CHANNELS.contains(&c) {
            bail!(
                "NATS-SSS arch '{shown}': channel {c} at layer {} out of range (each must be one of 8, 16, ..., 64)",
                i + 1
            );
        }
        out[i] = c;
    }
    Ok(out)
}

/// The NATS-Bench size space.
#[derive(Debug, Clone, Copy, Default)]
pub struct NatsSss;

impl Space for NatsSss {
    fn name(&self) -> &str {
        "nats-sss"
    }
    fn len(&self) -> usize {
        8usize.pow(5)
    }
    fn arch(&self, index: usize) -> Result<String> {
        if index >= self.len() {
            bail!("NATS-SSS index {index} out of range 0..{}", self.len());
        }
        let digits: Vec<String> = (0..5).rev().map(|k| ((index / 8usize.pow(k)) % 8 * 8 + 8).to_string()).collect();
        Ok(digits.join(":"))
    }
    fn index_of(&self, arch: &str) -> Result<usize> {
        Ok(parse(arch)?.iter().fold(0, |acc, c| acc * 8 + (*c as usize / 8 - 1)))
    }
    fn build(&self, arch: &str, dataset: Dataset) -> Result<Box<dyn Net>> {
        let ch = parse(arch)?;
        Ok(Box::new(TinyNetwork::with_channels(Cell::parse(CELL)?, &ch, dataset.num_classes())))
    }
    fn datasets(&self) -> &'static [Dataset] {
        &[Dataset::Cifar10, Dataset::Cifar100, Dataset::ImageNet16]
    }
    fn mutate(&self, arch: &str, rng: &mut dyn rand::RngCore) -> Option<Result<String>> {
        Some(super::mutation::nats_sss::mutate(arch, rng))
    }
    fn crossover(&self, a: &str, b: &str, rng: &mut dyn rand::RngCore) -> Option<Result<String>> {
        Some(super::mutation::nats_sss::crossover(a, b, rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_order_and_errors() {
        let s = NatsSss;
        assert_eq!(s.arch(0).unwrap(), "8:8:8:8:8");
        assert_eq!(s.arch(1).unwrap(), "8:8:8:8:16");
        assert_eq!(s.arch(32767).unwrap(), "64:64:64:64:64");
        for i in [0, 1, 4097, 32767] {
            assert_eq!(s.index_of(&s.arch(i).unwrap()).unwrap(), i);
        }
        assert!(parse("8:8:8:8").unwrap_err().to_string().contains("expected 5 channel counts"));
        assert!(parse("8:8:12:8:8").unwrap_err().to_string().contains("channel 12 at layer 3 out of range"));
        assert!(parse("8:8:x:8:8").unwrap_err().to_string().contains("'x' is not a number"));
    }
}
