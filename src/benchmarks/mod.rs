//! Ground truth: each design space's benchmark accuracies, embedded.

pub mod nafbee;
pub mod nats_archive;
pub mod nats_sss;
pub mod nb201;
pub mod nds;
pub mod pickle;

use crate::spaces::Dataset;
use anyhow::{bail, Result};

/// Test accuracies (%) of a space's architectures, by official index.
pub trait GroundTruth: Sync {
    /// Accuracy of architecture `index` on `dataset`, if the benchmark has it.
    fn accuracy(&self, index: usize, dataset: Dataset) -> Option<f64>;
    /// The datasets with accuracies.
    fn datasets(&self) -> &'static [Dataset];
    /// What the numbers are (shown in reports).
    fn describe(&self) -> &'static str;
}

/// The embedded ground truth of a space.
pub fn for_space(space: &str) -> Result<&'static dyn GroundTruth> {
    match space {
        "nb201" => Ok(nb201::table()),
        "nats-sss" => Ok(nats_sss::table()),
        "nafbee-vgg19" => Ok(&nafbee::VGG19),
        "nafbee-bert" => Ok(&nafbee::BERT),
        other => bail!("no ground truth for space '{other}'"),
    }
}
