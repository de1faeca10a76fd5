//! Which design spaces exist and their ground truth: the one place that maps
//! `--space` (and `--benchmark`) to a space and its benchmark.

use crate::benchmarks::nats_archive::NatsArchive;
use crate::benchmarks::nds::{Convention, NdsTable, EMBEDDED};
use crate::benchmarks::transnas::TaskTruth;
use crate::benchmarks::{self, GroundTruth};
use crate::spaces::{self, nds::NdsSpace, Space};
use anyhow::{bail, Result};
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

/// A space or a ground truth a run holds: a built-in one (static, built
/// once) or one opened for this run (from a file or a task), shared by the
/// scoring threads.
pub enum Shared<T: ?Sized + 'static> {
    /// Built into the binary.
    Static(&'static T),
    /// Opened for this run.
    Owned(Arc<T>),
}

impl<T: ?Sized> Clone for Shared<T> {
    fn clone(&self) -> Self {
        match self {
            Shared::Static(t) => Shared::Static(*t),
            Shared::Owned(t) => Shared::Owned(Arc::clone(t)),
        }
    }
}

impl<T: ?Sized> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            Shared::Static(t) => t,
            Shared::Owned(t) => t,
        }
    }
}

impl<T: ?Sized> From<&'static T> for Shared<T> {
    fn from(t: &'static T) -> Self {
        Shared::Static(t)
    }
}

/// A space with its ground truth.
pub struct Opened {
    /// The space.
    pub space: Shared<dyn Space>,
    /// Its benchmark.
    pub truth: Shared<dyn GroundTruth>,
}

/// Every `--space` name.
pub fn names() -> Vec<String> {
    let mut v: Vec<String> = spaces::names().map(String::from).collect();
    v.extend(EMBEDDED.iter().map(|(f, _, _)| format!("nds-{f}")));
    v
}

/// Opens a space by name. `nds-<family>` reads the embedded ImageNet file of
/// that family, or `benchmark` (an NDS file, e.g. a CIFAR-10 one) when given;
/// `transnas-*` takes its ground truth from `task`.
pub fn open(name: &str, benchmark: Option<&Path>, convention: Convention, task: &str) -> Result<Opened> {
    if let Some(kind) = name.strip_prefix("transnas-") {
        let space = spaces::by_name(name)?.into();
        if benchmark.is_some() {
            bail!("--benchmark is not used by {name}: its ground truth is embedded");
        }
        let truth: Arc<dyn GroundTruth> = Arc::new(TaskTruth::new(kind == "micro", task)?);
        return Ok(Opened { space, truth: Shared::Owned(truth) });
    }
    if let Some(family) = name.strip_prefix("nds-") {
        let table = Arc::new(match benchmark {
            Some(p) => NdsTable::from_file(p, convention)?,
            None => NdsTable::embedded(family, convention)?,
        });
        let space: Arc<dyn Space> = Arc::new(NdsSpace::new(name, Arc::clone(&table)));
        return Ok(Opened { space: Shared::Owned(space), truth: Shared::Owned(table) });
    }
    let space =
        spaces::by_name(name).map_err(|_| anyhow::anyhow!("unknown space '{name}' (known: {})", names().join(", ")))?;
    let Some(dir) = benchmark else {
        return Ok(Opened { space: space.into(), truth: benchmarks::for_space(space.name())?.into() });
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
    Ok(Opened { space: space.into(), truth: Shared::Owned(Arc::new(archive)) })
}
