//! Design spaces: architecture encodings, their official index order, and how
//! each architecture becomes a network. A new space is one module here that
//! implements [`Space`] plus one line in [`by_name`].

pub mod mutation;
pub mod nafbee;
pub mod nats_sss;
pub mod nb201;
pub mod nds;
pub mod transnas;

use crate::nets::Net;
use anyhow::{bail, Result};
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

/// Longest part of a user's string (an arch, a name) echoed in an error.
pub const SHOWN_CHARS: usize = 120;

/// A user's string as an error shows it: control characters escaped (the
/// error stays one line) and cut to [`SHOWN_CHARS`] characters with "..."
/// and the total length.
pub fn shorten(s: &str) -> String {
    let total = s.chars().count();
    let mut out = String::new();
    for c in s.chars().take(SHOWN_CHARS) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if total > SHOWN_CHARS {
        out.push_str(&format!("... ({total} chars)"));
    }
    out
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A design space.
pub trait Space: Send + Sync {
    /// Short name used on the command line (`--space`).
    fn name(&self) -> &str;
    /// Number of architectures.
    fn len(&self) -> usize;
    /// Whether the space is empty (never, for a real space).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The architecture string at an official index.
    fn arch(&self, index: usize) -> Result<String>;
    /// The official index of an architecture string.
    fn index_of(&self, arch: &str) -> Result<usize>;
    /// Builds a freshly initialised network (draws from the global tch RNG in
    /// PyTorch's construction order).
    fn build(&self, arch: &str, dataset: Dataset) -> Result<Box<dyn Net>>;
    /// The datasets with ground truth for this space.
    fn datasets(&self) -> &'static [Dataset];
    /// Estimated bytes a network's scoring holds at once for an input of
    /// `input` shape (`[N, C, H, W]`), used to bound memory across parallel
    /// workers; 0 for spaces whose networks are small.
    fn working_set(&self, _arch: &str, _input: &[i64]) -> Result<u64> {
        Ok(0)
    }
    /// A valid, different network of the space one mutation from `arch`
    /// (guided search, see `mutation`), drawn from `rng` alone; `None`: this
    /// space has no mutation (evolution is refused on it).
    fn mutate(&self, _arch: &str, _rng: &mut dyn rand::RngCore) -> Option<Result<String>> {
        None
    }
}

/// The built-in spaces by `--space` name (NDS families come from their
/// files: see `catalog`): adding a space = its modules plus one line here.
pub const REGISTRY: &[&dyn Space] = &[
    &nb201::Nb201,
    &nats_sss::NatsSss,
    &transnas::TransNas { micro: true },
    &transnas::TransNas { micro: false },
    &nafbee::NAFBEE_VGG19,
    &nafbee::NAFBEE_BERT,
];

/// Names accepted by `--space` for the built-in spaces (each space's own).
pub fn names() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|s| s.name())
}

/// Looks a space up by its command-line name (`nats-tss` is NB201's
/// NATS-Bench name).
pub fn by_name(name: &str) -> Result<&'static dyn Space> {
    let name = if name == "nats-tss" { "nb201" } else { name };
    match REGISTRY.iter().find(|s| s.name() == name) {
        Some(space) => Ok(*space),
        None => bail!("unknown space '{name}' (known: {})", names().collect::<Vec<_>>().join(", ")),
    }
}

/// Serialises "seed the global tch RNG, then draw a network's parameters", so
/// that networks built on several threads keep the weights their seed gives.
static INIT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` right after `tch::manual_seed(seed)`, holding the lock that keeps
/// other threads from drawing from the global RNG meanwhile.
pub fn seeded<T>(seed: i64, f: impl FnOnce() -> T) -> T {
    let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(seed);
    f()
}

/// Builds `arch` right after `tch::manual_seed(seed)`, as the reference does
/// after `torch.manual_seed(seed)`; safe to call from many threads at once.
pub fn build_seeded(space: &dyn Space, arch: &str, dataset: Dataset, seed: i64) -> Result<Box<dyn Net>> {
    seeded(seed, || space.build(arch, dataset))
}
