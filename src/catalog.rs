//! The registry of design spaces: every `--space` name, the options each
//! space takes and its ground truth, which is optional (scoring needs none).
//!
//! Adding a space = its own modules plus one entry in [`REGISTRY`]; no space
//! name is matched anywhere else. A user's space (built at run time, e.g. from
//! Python) is one more [`Entry`].

use crate::benchmarks::nats_archive::NatsArchive;
use crate::benchmarks::nds::{Convention, NdsTable, EMBEDDED};
use crate::benchmarks::transnas::TaskTruth;
use crate::benchmarks::{nafbee, nats_sss, nb201, GroundTruth};
use crate::spaces::{self, nds::NdsSpace, transnas::TransNas, Space};
use anyhow::{bail, Context, Result};
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

/// The options a space may take besides its name (each `None` when not
/// given on the command line).
#[derive(Debug, Clone, Copy, Default)]
pub struct SpaceOptions<'a> {
    /// `--benchmark`: a file or folder holding the ground truth.
    pub benchmark: Option<&'a Path>,
    /// `--task`: which of the space's tasks is the ground truth.
    pub task: Option<&'a str>,
    /// `--nds-accuracy`: which NDS accuracy is the ground truth.
    pub nds_accuracy: Option<Convention>,
}

/// What a space takes besides its name: anything else given is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct Takes {
    /// What `--benchmark` names for this space, when it takes one.
    pub benchmark: Option<&'static str>,
    /// The tasks `--task` chooses from (empty: one ground truth per
    /// dataset).
    pub tasks: &'static [&'static str],
    /// Whether `--nds-accuracy` applies.
    pub nds_accuracy: bool,
}

/// A space with its ground truth, when asked for and known.
pub struct Opened {
    /// The space.
    pub space: Shared<dyn Space>,
    /// Its benchmark (`None` when not asked for, or when it has none).
    pub truth: Option<Shared<dyn GroundTruth>>,
}

impl Opened {
    /// The ground truth, or an error saying the space has none.
    pub fn truth(&self) -> Result<Shared<dyn GroundTruth>> {
        self.truth.clone().with_context(|| {
            format!("space {} has no ground truth (no accuracies to search or correlate with)", self.space.name())
        })
    }
}

/// One registry entry: a space, or a family of spaces sharing a rule.
pub trait Entry: Send + Sync {
    /// The `--space` names it opens, as listed to users.
    fn names(&self) -> Vec<String>;
    /// How its names are shown in messages (a family: its pattern).
    fn shown(&self) -> String {
        self.names().join(", ")
    }
    /// Whether it opens `name` (its names, aliases, or a family's rule).
    fn answers(&self, name: &str) -> bool {
        self.names().iter().any(|n| n == name)
    }
    /// The options it takes.
    fn takes(&self) -> Takes;
    /// Opens space `name` with `o` (already checked against
    /// [`Entry::takes`]); its ground truth only when `truth`.
    fn open(&self, name: &str, o: &SpaceOptions, truth: bool) -> Result<Opened>;
}

/// A built-in space with an embedded ground truth; NATS-Bench spaces also
/// take an official archive folder as `--benchmark`.
pub struct Embedded {
    /// The space.
    pub space: &'static dyn Space,
    /// Other names it answers to.
    pub aliases: &'static [&'static str],
    /// Its embedded benchmark.
    pub truth: fn() -> &'static dyn GroundTruth,
    /// Whether `--benchmark` takes a NATS-Bench archive folder.
    pub nats_archive: bool,
}

impl Entry for Embedded {
    fn names(&self) -> Vec<String> {
        vec![self.space.name().to_string()]
    }
    fn answers(&self, name: &str) -> bool {
        name == self.space.name() || self.aliases.contains(&name)
    }
    fn takes(&self) -> Takes {
        Takes { benchmark: self.nats_archive.then_some("a NATS-Bench archive folder"), ..Takes::default() }
    }
    fn open(&self, name: &str, o: &SpaceOptions, truth: bool) -> Result<Opened> {
        let space = Shared::Static(self.space);
        // an archive given is read (and checked) even where no truth is asked for
        let truth: Option<Shared<dyn GroundTruth>> = match (truth, o.benchmark) {
            (_, Some(dir)) => Some(Shared::Owned(Arc::new(archive_of(self.space, name, dir)?))),
            (true, None) => Some(Shared::Static((self.truth)())),
            (false, None) => None,
        };
        Ok(Opened { space, truth })
    }
}

/// Opens a NATS-Bench archive folder as the ground truth of `space`, whose
/// index order it must share.
fn archive_of(space: &dyn Space, name: &str, dir: &Path) -> Result<NatsArchive> {
    let archive = NatsArchive::open(dir)?;
    for (i, a) in archive.archs.iter().enumerate().take(1000) {
        if space.arch(i).ok().as_deref() != Some(a.as_str()) {
            bail!(
                "{}: architecture {i} is '{a}', but {name}'s is '{}': not an archive of this space",
                dir.display(),
                space.arch(i).unwrap_or_default()
            );
        }
    }
    Ok(archive)
}

/// A TransNAS-Bench-101 space: one ground truth per task.
pub struct TransNasEntry(pub &'static TransNas);

impl Entry for TransNasEntry {
    fn names(&self) -> Vec<String> {
        vec![self.0.name().to_string()]
    }
    fn takes(&self) -> Takes {
        Takes { tasks: &spaces::transnas::TASKS, ..Takes::default() }
    }
    fn open(&self, _name: &str, o: &SpaceOptions, truth: bool) -> Result<Opened> {
        // a task given is opened (and checked) even where no truth is asked for
        let truth: Option<Shared<dyn GroundTruth>> = match (truth, o.task) {
            (false, None) => None,
            (_, task) => Some(Shared::Owned(Arc::new(TaskTruth::new(self.0.micro, task.unwrap_or(DEFAULT_TASK))?))),
        };
        Ok(Opened { space: Shared::Static(self.0), truth })
    }
}

/// The TransNAS task whose metric is the ground truth when `--task` is not
/// given (the paper's).
pub const DEFAULT_TASK: &str = "segmentsemantic";

/// The NDS spaces `nds-<family>`: an embedded ImageNet file per family, or
/// any NDS file given as `--benchmark` (e.g. a CIFAR-10 one) under any
/// family name.
pub struct NdsEntry;

impl Entry for NdsEntry {
    fn names(&self) -> Vec<String> {
        EMBEDDED.iter().map(|(f, _, _)| format!("nds-{f}")).collect()
    }
    fn shown(&self) -> String {
        "nds-*".into()
    }
    fn answers(&self, name: &str) -> bool {
        name.strip_prefix("nds-").is_some_and(|f| !f.is_empty())
    }
    fn takes(&self) -> Takes {
        Takes { benchmark: Some("an NDS file"), nds_accuracy: true, ..Takes::default() }
    }
    fn open(&self, name: &str, o: &SpaceOptions, truth: bool) -> Result<Opened> {
        let family = name.strip_prefix("nds-").unwrap_or(name);
        let convention = o.nds_accuracy.unwrap_or_default();
        let table = Arc::new(match o.benchmark {
            Some(p) => NdsTable::from_file(p, convention)?,
            None => NdsTable::embedded(family, convention)?,
        });
        let nets = table.records.iter().map(|r| r.net.clone()).collect();
        let space: Arc<dyn Space> = Arc::new(NdsSpace::new(name, &table.source, nets, table.dataset)?);
        Ok(Opened { space: Shared::Owned(space), truth: truth.then(|| Shared::Owned(table as Arc<dyn GroundTruth>)) })
    }
}

fn nb201_truth() -> &'static dyn GroundTruth {
    nb201::table()
}

fn nats_sss_truth() -> &'static dyn GroundTruth {
    nats_sss::table()
}

fn vgg19_truth() -> &'static dyn GroundTruth {
    &nafbee::VGG19
}

fn bert_truth() -> &'static dyn GroundTruth {
    &nafbee::BERT
}

/// Every design space: adding one = its modules plus one line here.
pub static REGISTRY: &[&dyn Entry] = &[
    &Embedded { space: &spaces::nb201::Nb201, aliases: &["nats-tss"], truth: nb201_truth, nats_archive: true },
    &Embedded { space: &spaces::nats_sss::NatsSss, aliases: &[], truth: nats_sss_truth, nats_archive: true },
    &TransNasEntry(&spaces::transnas::MICRO),
    &TransNasEntry(&spaces::transnas::MACRO),
    &NdsEntry,
    &Embedded { space: &spaces::nafbee::NAFBEE_VGG19, aliases: &[], truth: vgg19_truth, nats_archive: false },
    &Embedded { space: &spaces::nafbee::NAFBEE_BERT, aliases: &[], truth: bert_truth, nats_archive: false },
];

/// Every `--space` name.
pub fn names() -> Vec<String> {
    REGISTRY.iter().flat_map(|e| e.names()).collect()
}

/// The entry that opens `name`.
pub fn entry(name: &str) -> Result<&'static dyn Entry> {
    REGISTRY
        .iter()
        .copied()
        .find(|e| e.answers(name))
        .with_context(|| format!("unknown space '{}' (known: {})", crate::shown::shorten(name), names().join(", ")))
}

/// How the entries that take an option are shown (`transnas-micro,
/// transnas-macro`).
fn shown_where(takes: impl Fn(&Takes) -> bool) -> String {
    REGISTRY.iter().filter(|e| takes(&e.takes())).map(|e| e.shown()).collect::<Vec<_>>().join(", ")
}

/// Refuses the options `name`'s entry does not take, and an unknown task.
pub fn check_options(name: &str, o: &SpaceOptions) -> Result<()> {
    let takes = entry(name)?.takes();
    if let (Some(t), true) = (o.task, takes.tasks.is_empty()) {
        bail!(
            "--task {t} is for {} spaces; {name} has one ground truth per dataset",
            shown_where(|t| !t.tasks.is_empty())
        );
    }
    if o.nds_accuracy.is_some() && !takes.nds_accuracy {
        bail!("--nds-accuracy is for {} spaces, not {name}", shown_where(|t| t.nds_accuracy));
    }
    if let (Some(_), None) = (o.benchmark, takes.benchmark) {
        let which: Vec<String> =
            REGISTRY.iter().filter_map(|e| e.takes().benchmark.map(|b| format!("{b} ({})", e.shown()))).collect();
        bail!(
            "--benchmark is not used by {name}: its ground truth is embedded (--benchmark takes {})",
            which.join("; ")
        );
    }
    Ok(())
}

/// Opens space `name` with `o`; its ground truth only when `truth`.
pub fn open(name: &str, o: &SpaceOptions, truth: bool) -> Result<Opened> {
    check_options(name, o)?;
    entry(name)?.open(name, o, truth)
}

/// The ground truth of every task of space `name` (`--task all`), in the
/// space's order.
pub fn task_truths(name: &str) -> Result<Vec<(&'static str, Shared<dyn GroundTruth>)>> {
    let entry = entry(name)?;
    entry
        .takes()
        .tasks
        .iter()
        .map(|task| {
            let o = SpaceOptions { task: Some(task), ..SpaceOptions::default() };
            Ok((*task, entry.open(name, &o, true)?.truth()?))
        })
        .collect()
}

/// The space `name` with no options and no ground truth (tests, tools).
pub fn space(name: &str) -> Result<Shared<dyn Space>> {
    Ok(open(name, &SpaceOptions::default(), false)?.space)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_opens_its_own_space_and_only_the_options_it_takes() {
        for name in names() {
            let opened = open(&name, &SpaceOptions::default(), true).unwrap();
            assert_eq!(opened.space.name(), name);
            assert!(opened.truth.is_some(), "{name} has an embedded ground truth");
            assert!(open(&name, &SpaceOptions::default(), false).unwrap().truth.is_none());
        }
        assert_eq!(space("nats-tss").unwrap().name(), "nb201");
        let e = open("nb201", &SpaceOptions { task: Some("jigsaw"), ..Default::default() }, false);
        assert_eq!(
            e.err().unwrap().to_string(),
            "--task jigsaw is for transnas-micro, transnas-macro spaces; nb201 has one ground truth per dataset"
        );
        let e = open(
            "transnas-micro",
            &SpaceOptions { nds_accuracy: Some(Convention::Naswot), ..Default::default() },
            false,
        );
        assert_eq!(e.err().unwrap().to_string(), "--nds-accuracy is for nds-* spaces, not transnas-micro");
        let e = open("nafbee-vgg19", &SpaceOptions { benchmark: Some(Path::new("x")), ..Default::default() }, false);
        assert!(e.err().unwrap().to_string().starts_with("--benchmark is not used by nafbee-vgg19"));
        assert!(entry("nb999").err().unwrap().to_string().starts_with("unknown space 'nb999' (known: nb201, nats-sss"));
    }
}
