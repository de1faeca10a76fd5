//! Which design spaces exist and their ground truth: the one place that maps
//! `--space` (and `--benchmark`) to a space and its benchmark.

use crate::benchmarks::nats_archive::NatsArchive;
use crate::benchmarks::nds::{Convention, NdsTable, EMBEDDED};
use crate::benchmarks::transnas::TaskTruth;
use crate::benchmarks::{self, GroundTruth};
use crate::spaces::{self, nds::NdsSpace, Space};
use anyhow::{bail, Result};
use std::path::Path;

/// A space with its ground truth.
pub struct Opened {
    /// The space.
    pub space: &'static dyn Space,
    /// Its benchmark.
    pub truth: &'static dyn GroundTruth,
}

/// Every `--space` name.
pub fn names() -> Vec<String> {
    let mut v: Vec<String> = spaces::NAMES.iter().map(|s| s.to_string()).collect();
    v.extend(EMBEDDED.iter().map(|(f, _, _)| format!("nds-{f}")));
    v
}

/// Opens a space by name. `nds-<family>` reads the embedded ImageNet file of
/// that family, or `benchmark` (an NDS file, e.g. a CIFAR-10 one) when given;
/// `transnas-*` takes its ground truth from `task`.
pub fn open(name: &str, benchmark: Option<&Path>, convention: Convention, task: &str) -> Result<Opened> {
    if let Some(kind) = name.strip_prefix("transnas-") {
        let space = spaces::by_name(name)?;
        if benchmark.is_some() {
            bail!("--benchmark is not used by {name}: its ground truth is embedded");
        }
        let truth: &'static TaskTruth = Box::leak(Box::new(TaskTruth::new(kind == "micro", task)?));
        return Ok(Opened { space, truth });
    }
    if let Some(family) = name.strip_prefix("nds-") {
        let table = match benchmark {
            Some(p) => NdsTable::from_file(p, convention)?,
            None => NdsTable::embedded(family, convention)?,
        };
        // a CLI run opens one space: leaking it gives the 'static borrow the
        // scoring threads share
        let table: &'static NdsTable = Box::leak(Box::new(table));
        let leaked_name: &'static str = Box::leak(name.to_string().into_boxed_str());
        let space: &'static NdsSpace = Box::leak(Box::new(NdsSpace::new(leaked_name, table)));
        return Ok(Opened { space, truth: table });
    }
    let space =
        spaces::by_name(name).map_err(|_| anyhow::anyhow!("unknown space '{name}' (known: {})", names().join(", ")))?;
    let Some(dir) = benchmark else {
        return Ok(Opened { space, truth: benchmarks::for_space(name)? });
    };
    if !matches!(space.name(), "nb201" | "nats-sss") {
        bail!(
            "--benchmark takes an NDS file (nds-* spaces) or a NATS-Bench archive folder (nb201, nats-sss), not {name}"
        );
    }
    let archive = NatsArchive::open(dir)?;
    // the archive's order must be the space's
    for (i, a) in archive.archs.iter().enumerate().take(1000) {
        if space.arch(i).ok().as_deref() != Some(a.as_str()) {
            bail!(
                "{}: architecture {i} is '{a}', but {name}'s is '{}': not an archive of this space",
                dir.display(),
                space.arch(i).unwrap_or_default()
            );
        }
    }
    Ok(Opened { space, truth: Box::leak(Box::new(archive)) })
}
