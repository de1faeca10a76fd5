//! NATS-Bench size-space test accuracies (%) after 90 epochs and parameter
//! counts per dataset (see `data/README.md` for provenance).

use super::GroundTruth;
use crate::dataset::Dataset;
use std::sync::OnceLock;

/// The embedded size-space table.
#[derive(Debug)]
pub struct NatsSssTable {
    rows: Vec<[f64; 6]>,
}

/// The table, decoded once.
pub fn table() -> &'static NatsSssTable {
    static TABLE: OnceLock<NatsSssTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let gz: &[u8] = include_bytes!("../../data/nats_sss/test_accuracy.csv.gz");
        let rows = super::embedded_rows::<6>(gz, "NATS-SSS");
        NatsSssTable { rows }
    })
}

fn col(d: Dataset) -> Option<usize> {
    match d {
        Dataset::Cifar10 => Some(0),
        Dataset::Cifar100 => Some(1),
        Dataset::ImageNet16 => Some(2),
        Dataset::Sst2 | Dataset::ImageNet | Dataset::Taskonomy => None,
    }
}

impl NatsSssTable {
    /// The benchmark's parameter count of network `index` built for `dataset`.
    pub fn params(&self, index: usize, dataset: Dataset) -> Option<i64> {
        Some(self.rows.get(index)?[col(dataset)? + 3] as i64)
    }
}

impl GroundTruth for NatsSssTable {
    fn accuracy(&self, index: usize, dataset: Dataset) -> Option<f64> {
        Some(self.rows.get(index)?[col(dataset)?])
    }
    fn datasets(&self) -> &'static [Dataset] {
        &[Dataset::Cifar10, Dataset::Cifar100, Dataset::ImageNet16]
    }
    fn describe(&self) -> &'static str {
        "NATS-Bench size-space test accuracy (%), 90 epochs"
    }
}
