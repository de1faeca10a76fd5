//! NAFBee ground truth: accuracy (%) of VGG-19 on CIFAR-10 and BERT-base on
//! SST-2 trained with each of the 11 activations (`data/nafbee`, MIT).

use super::GroundTruth;
use crate::dataset::Dataset;
use crate::nets::activation::Activation;
use std::collections::HashMap;
use std::sync::OnceLock;

/// One NAFBee table.
pub struct Nafbee {
    json: &'static str,
    dataset: Dataset,
    cell: OnceLock<Vec<Option<f64>>>,
}

/// VGG-19 / CIFAR-10.
pub static VGG19: Nafbee = Nafbee {
    json: include_str!("../../data/nafbee/NAFBee_VGG19.json"),
    dataset: Dataset::Cifar10,
    cell: OnceLock::new(),
};
/// BERT-base / SST-2.
pub static BERT: Nafbee =
    Nafbee { json: include_str!("../../data/nafbee/NAFBee_BERT.json"), dataset: Dataset::Sst2, cell: OnceLock::new() };

#[derive(serde::Deserialize)]
struct Entry {
    activation: String,
    accuracy: f64,
}

impl Nafbee {
    /// Accuracy per activation, in [`Activation::ALL`] order.
    pub fn accuracies(&self) -> &[Option<f64>] {
        self.cell.get_or_init(|| {
            let rows: HashMap<String, Entry> = serde_json::from_str(self.json).expect("embedded NAFBee table is JSON");
            Activation::ALL
                .iter()
                .map(|a| rows.values().find(|e| e.activation == a.name()).map(|e| e.accuracy))
                .collect()
        })
    }
}

impl GroundTruth for Nafbee {
    fn accuracy(&self, index: usize, dataset: Dataset) -> Option<f64> {
        (dataset == self.dataset).then(|| self.accuracies().get(index).copied().flatten()).flatten()
    }
    fn datasets(&self) -> &'static [Dataset] {
        match self.dataset {
            Dataset::Sst2 => &[Dataset::Sst2],
            _ => &[Dataset::Cifar10],
        }
    }
    fn describe(&self) -> &'static str {
        "NAFBee test accuracy (%) after training with each activation"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_complete() {
        assert_eq!(VGG19.accuracies()[0], Some(91.06));
        assert_eq!(BERT.accuracies()[1], Some(92.97));
        assert!(VGG19.accuracies().iter().chain(BERT.accuracies()).all(|a| a.is_some()));
    }
}
