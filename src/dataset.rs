//! The datasets networks are scored on: classifier size, the key used in
//! file names and CSV columns, and the name `--dataset` takes.

use serde::Serialize;
use std::fmt;

/// The datasets a space is benchmarked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, clap::ValueEnum)]
pub enum Dataset {
    /// CIFAR-10 (32x32, 10 classes).
    #[default]
    #[value(name = "cifar10")]
    #[serde(rename = "cifar10")]
    Cifar10,
    /// CIFAR-100 (32x32, 100 classes).
    #[value(name = "cifar100")]
    #[serde(rename = "cifar100")]
    Cifar100,
    /// ImageNet16-120 (16x16, 120 classes).
    #[value(name = "imagenet16-120")]
    #[serde(rename = "imagenet16_120")]
    ImageNet16,
    /// ImageNet (224x224 crops of full images, 1000 classes; NDS `_in`).
    #[value(name = "imagenet")]
    #[serde(rename = "imagenet")]
    ImageNet,
    /// Taskonomy RGB images at full resolution (512x512; TransNAS-Bench-101).
    #[value(name = "taskonomy")]
    #[serde(rename = "taskonomy")]
    Taskonomy,
    /// SST-2 sentences (2 classes; NAFBee's BERT).
    #[value(name = "sst2")]
    #[serde(rename = "sst2")]
    Sst2,
}

impl Dataset {
    /// Classes of the dataset's classifier.
    pub fn num_classes(self) -> i64 {
        match self {
            Dataset::Cifar10 => 10,
            Dataset::Cifar100 => 100,
            Dataset::ImageNet16 => 120,
            Dataset::ImageNet => 1000,
            Dataset::Taskonomy => 0,
            Dataset::Sst2 => 2,
        }
    }

    /// Name used in file names and CSV columns.
    pub fn key(self) -> &'static str {
        match self {
            Dataset::Cifar10 => "cifar10",
            Dataset::Cifar100 => "cifar100",
            Dataset::ImageNet16 => "imagenet16_120",
            Dataset::ImageNet => "imagenet",
            Dataset::Taskonomy => "taskonomy",
            Dataset::Sst2 => "sst2",
        }
    }
}

impl Dataset {
    /// Name accepted by `--dataset` (what errors that list datasets show).
    pub fn cli_name(self) -> &'static str {
        match self {
            Dataset::ImageNet16 => "imagenet16-120",
            other => other.key(),
        }
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}
