//! NAS-Bench-201 / NATS-Bench topology test accuracies after 200 epochs,
//! averaged over seeds (see `data/README.md` for provenance).

use super::GroundTruth;
use crate::dataset::Dataset;
use std::sync::OnceLock;

/// The embedded NB201 accuracy table.
#[derive(Debug)]
pub struct Nb201Accuracy {
    rows: Vec<[f64; 3]>,
}

/// The table, decoded once.
pub fn table() -> &'static Nb201Accuracy {
    static TABLE: OnceLock<Nb201Accuracy> = OnceLock::new();
    TABLE.get_or_init(|| {
        let gz: &[u8] = include_bytes!("../../data/nb201/test_accuracy.csv.gz");
        let rows = super::embedded_rows::<3>(gz, "NB201 accuracy");
        Nb201Accuracy { rows }
    })
}

impl GroundTruth for Nb201Accuracy {
    fn accuracy(&self, index: usize, dataset: Dataset) -> Option<f64> {
        let col = match dataset {
            Dataset::Cifar10 => 0,
            Dataset::Cifar100 => 1,
            Dataset::ImageNet16 => 2,
            Dataset::Sst2 | Dataset::ImageNet | Dataset::Taskonomy => return None,
        };
        self.rows.get(index).map(|r| r[col])
    }
    fn datasets(&self) -> &'static [Dataset] {
        &[Dataset::Cifar10, Dataset::Cifar100, Dataset::ImageNet16]
    }
    fn describe(&self) -> &'static str {
        "NATS-Bench topology test accuracy (%), 200 epochs, mean over seeds"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_rows_and_best() {
        let t = table();
        assert_eq!(t.rows.len(), 15625);
        assert_eq!(t.accuracy(0, Dataset::Cifar10), Some(85.86333333333334));
        assert_eq!(t.accuracy(10, Dataset::Cifar10), Some(10.0));
        let best = |d| (0..15625).filter_map(|i| t.accuracy(i, d)).fold(f64::MIN, f64::max);
        assert!((best(Dataset::Cifar10) - 94.37).abs() < 0.01);
        assert!((best(Dataset::Cifar100) - 73.51).abs() < 0.01);
        assert!((best(Dataset::ImageNet16) - 47.31).abs() < 0.01);
        assert_eq!(t.accuracy(15625, Dataset::Cifar10), None);
    }
}
