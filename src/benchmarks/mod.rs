//! Ground truth: each design space's benchmark accuracies, embedded.

pub mod nafbee;
pub mod nats_archive;
pub mod nats_sss;
pub mod nb201;
pub mod nds;
pub mod pickle;
pub mod transnas;

use crate::dataset::Dataset;
use anyhow::{bail, Result};

/// Test accuracies (%) of a space's architectures, by official index.
pub trait GroundTruth: Send + Sync {
    /// Accuracy of architecture `index` on `dataset`, if the benchmark has it.
    fn accuracy(&self, index: usize, dataset: Dataset) -> Option<f64>;
    /// The datasets with accuracies.
    fn datasets(&self) -> &'static [Dataset];
    /// What the numbers are (shown in reports).
    fn describe(&self) -> &'static str;
    /// Checks that every one of `indices` has a `dataset` accuracy: a
    /// benchmark that cannot serve a run's networks is one error saying how
    /// many are missing, instead of a correlation over fewer networks.
    fn require(&self, indices: &[usize], dataset: Dataset) -> Result<()> {
        let missing: Vec<usize> = indices.iter().copied().filter(|i| self.accuracy(*i, dataset).is_none()).collect();
        if let Some(first) = missing.first() {
            bail!(
                "{} has no {dataset} accuracy for {} of the {} networks asked (the first: index {first})",
                self.describe(),
                missing.len(),
                indices.len()
            );
        }
        Ok(())
    }
    /// The axis label of `dataset`'s values in plots.
    fn label(&self, dataset: Dataset) -> String {
        format!("{dataset} test accuracy (%)")
    }
}

/// Rows of an embedded gzipped CSV table (header skipped, first column — the
/// index — dropped), each with `N` numbers. The tables are built into the
/// binary, so a malformed one is a build defect, not a user error.
pub(crate) fn embedded_rows<const N: usize>(gz: &[u8], what: &str) -> Vec<[f64; N]> {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("embedded {what} table is not valid gzip: {e}"));
    text.lines()
        .skip(1)
        .map(|l| {
            let mut row = [0.0; N];
            for (slot, x) in row.iter_mut().zip(l.split(',').skip(1)) {
                *slot = x.parse().unwrap_or_else(|_| panic!("embedded {what} table holds '{x}'"));
            }
            row
        })
        .collect()
}
