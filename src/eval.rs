//! Scoring many networks: seeded per architecture (so a score never depends
//! on order, jobs or resumption), in parallel across networks with one
//! libtorch thread each, appended to a resumable CSV as they finish.

use crate::catalog::Shared;
use crate::memory::MemoryGate;
use crate::progress::Progress;
use crate::proxies::{Columns, Init, Measure, Probe, Proxy, Selection};
use crate::spaces::{seeded, Dataset, Space};
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;
use tch::Tensor;

/// Networks a space may hold: `init_seed` gives each index its own million.
pub const MAX_SPACE_LEN: usize = 1_000_000;

/// The largest run seed whose init seeds (`seed * 1_000_000 + index`) all fit
/// in PyTorch's `manual_seed` (an i64): 9,223,372,036,853.
pub const MAX_RUN_SEED: u64 = (i64::MAX as u64 - (MAX_SPACE_LEN as u64 - 1)) / MAX_SPACE_LEN as u64;

/// Refuses a run seed whose init seeds would overflow (and so collide with
/// another seed's networks).
pub fn check_run_seed(seed: u64) -> Result<()> {
    if seed > MAX_RUN_SEED {
        bail!(
            "--seed {seed} is too large: networks are built with seed * 1000000 + index, which must fit in a 64-bit signed integer (at most {MAX_RUN_SEED})"
        );
    }
    Ok(())
}

/// The seed a network is built with in a run: `seed * 1_000_000 + index`,
/// distinct for every (seed, index) pair that [`check_run_seed`] and
/// [`MAX_SPACE_LEN`] allow (`Setting::new` checks both).
pub fn init_seed(run_seed: u64, index: usize) -> i64 {
    (run_seed as i64).wrapping_mul(1_000_000).wrapping_add(index as i64)
}

/// An input batch kept as raw values, so that every worker thread can make
/// its own tensors.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[N, ...]` float32 values and their shape.
    pub x: (Vec<f32>, Vec<i64>),
    /// Class labels, when known.
    pub labels: Option<Vec<i64>>,
}

impl Batch {
    /// Keeps `x` (and its labels) for the workers.
    pub fn new(x: &Tensor, labels: Option<&Tensor>) -> Result<Self> {
        let x = x.to_kind(tch::Kind::Float).contiguous();
        let v = Vec::<f32>::try_from(x.reshape([-1])).context("input batch is not float data")?;
        let labels = labels.map(|l| Vec::<i64>::try_from(l.to_kind(tch::Kind::Int64))).transpose()?;
        Ok(Self { x: (v, x.size()), labels })
    }

    fn tensors(&self) -> (Tensor, Option<Tensor>) {
        (
            Tensor::from_slice(&self.x.0).reshape(self.x.1.as_slice()),
            self.labels.as_ref().map(|l| Tensor::from_slice(l)),
        )
    }

    /// Batch size N.
    pub fn len(&self) -> i64 {
        self.x.1.first().copied().unwrap_or(0)
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Everything that determines a run's values besides the architecture.
pub struct Setting {
    /// The design space.
    pub space: Shared<dyn Space>,
    /// Dataset (classifier size and images).
    pub dataset: Dataset,
    /// Run seed: network inits and image choice.
    pub seed: u64,
    /// The proxies scored.
    pub selection: Selection,
    /// The run's `--batch` (RBFleX's N).
    pub batch: usize,
    /// Input batches by size: the run's `--batch` and each proxy's own.
    pub batches: BTreeMap<usize, Batch>,
    /// Where the `--batch` images came from.
    pub images: String,
    /// Digest of every input the batches are drawn from (`None` for a
    /// given `--input` batch, which no results folder records).
    pub inputs_digest: Option<String>,
    /// Where the networks run (built on the CPU, then moved).
    pub device: tch::Device,
    /// The shard of a sharded run this process scores, as `run.json`
    /// records it (see [`crate::shard`]); `None` for a whole run.
    pub shard: Option<serde_json::Value>,
}

impl Setting {
    /// A run of `selection` on `space`; every proxy's input batch is drawn
    /// from `source` with `seed` now. A proxy that needs what the space or
    /// the inputs cannot give is refused here, before anything is scored.
    pub fn new(
        space: Shared<dyn Space>,
        dataset: Dataset,
        seed: u64,
        selection: Selection,
        source: &crate::inputs::Source,
        batch: usize,
    ) -> Result<Self> {
        check_run_seed(seed)?;
        if space.len() > MAX_SPACE_LEN {
            bail!(
                "{} holds {} networks; at most {MAX_SPACE_LEN} are supported (each index needs its own init seed)",
                space.name(),
                space.len()
            );
        }
        // what `--proxy all` brought and this run cannot serve is skipped; a named proxy is an error
        let mut skipped = Vec::new();
        for p in &selection.proxies {
            if let Err(e) = check_support(p.as_ref(), &*space, dataset, source) {
                if !selection.implied.contains(&p.name()) {
                    return Err(e);
                }
                skipped.push(p.name());
            }
        }
        let selection = if skipped.is_empty() {
            selection
        } else {
            eprintln!(
                "note: --proxy all on {} ({dataset}) skips {}: they need a classifier network or labelled images",
                space.name(),
                skipped.join(", ")
            );
            selection.without(&skipped)
        };
        if selection.proxies.is_empty() {
            bail!("no proxy asked for can run on {} ({dataset})", space.name());
        }
        let mut batches = BTreeMap::new();
        for p in std::iter::once(None).chain(selection.proxies.iter().map(|p| Some(p.as_ref()))) {
            let n = p.map_or(batch, |p| selection.batch_of(p, batch));
            if let std::collections::btree_map::Entry::Vacant(slot) = batches.entry(n) {
                let (x, labels) = source.batch(n, seed)?;
                slot.insert(Batch::new(&x, labels.as_ref())?);
            }
        }
        Ok(Self {
            space,
            dataset,
            seed,
            selection,
            batch,
            batches,
            images: source.describe(batch, seed),
            inputs_digest: Some(source.digest()),
            device: tch::Device::Cpu,
            shard: None,
        })
    }

    /// A setting around one given batch (`score --input`): every proxy sees
    /// it, whatever its protocol's batch.
    pub fn with_batch(
        space: Shared<dyn Space>,
        dataset: Dataset,
        seed: u64,
        selection: Selection,
        batch: Batch,
        images: String,
    ) -> Self {
        let n = batch.len() as usize;
        let mut batches: BTreeMap<usize, Batch> =
            selection.proxies.iter().map(|p| (selection.batch_of(p.as_ref(), n), batch.clone())).collect();
        batches.insert(n, batch);
        Self {
            space,
            dataset,
            seed,
            selection,
            batch: n,
            batches,
            images,
            inputs_digest: None,
            device: tch::Device::Cpu,
            shard: None,
        }
    }

    /// The same setting with its networks and inputs on `device`.
    pub fn on(self, device: tch::Device) -> Self {
        Self { device, ..self }
    }

    /// The batch proxy `p` is fed.
    fn batch_for(&self, p: &dyn Proxy) -> Result<&Batch> {
        let n = self.selection.batch_of(p, self.batch);
        self.batches.get(&n).with_context(|| format!("no input batch of {n} for proxy {}", p.name()))
    }

    /// Estimated bytes that scoring `arch` with the proxies not yet in
    /// `known` holds at once: the space's estimate for the `--batch` input,
    /// or the largest proxy's (they run one after another), whichever is
    /// larger.
    fn working_set(&self, arch: &str, known: Option<&Record>) -> Result<u64> {
        let mut most = self.space.working_set(arch, self.input_shape())?;
        for p in &self.selection.proxies {
            if known.is_some_and(|r| r.values.contains_key(&p.columns().value)) {
                continue;
            }
            let values: i64 = self.batch_for(p.as_ref())?.x.1.iter().product();
            most = most.max(p.memory_per_input_value().saturating_mul(values.max(0) as u64));
        }
        Ok(most)
    }

    /// The shape of the `--batch` input (`[N, C, H, W]`).
    pub fn input_shape(&self) -> &[i64] {
        self.batches.get(&self.batch).map_or(&[], |b| b.x.1.as_slice())
    }

    fn header(&self) -> RunHeader {
        RunHeader {
            space: self.space.name().to_string(),
            dataset: self.dataset.key().to_string(),
            seed: self.seed,
            batch: self.batch as i64,
            images: self.images.clone(),
            inputs: self.inputs_digest.clone(),
            device: device_kind(self.device).into(),
            init_seed: "seed * 1000000 + index".into(),
            proxies: self
                .selection
                .proxies
                .iter()
                .map(|p| (p.name().to_string(), proxy_settings(p.as_ref(), &self.selection)))
                .collect(),
            shard: self.shard.clone(),
        }
    }
}

/// What `run.json` records of a device: `cpu` or `cuda` (GPU and CPU
/// scores differ in the last digits; GPUs of one kind agree).
fn device_kind(d: tch::Device) -> &'static str {
    if d.is_cuda() {
        "cuda"
    } else {
        "cpu"
    }
}

/// A proxy's settings as recorded in `run.json`: its own and its batch.
fn proxy_settings(p: &dyn Proxy, sel: &Selection) -> serde_json::Value {
    let mut v = p.settings();
    if let (Some(obj), true) = (v.as_object_mut(), p.needs().batch.is_some()) {
        obj.insert("batch".into(), sel.batch_of(p, 0).into());
    }
    v
}

/// Refuses a proxy that the space's networks or the inputs cannot serve.
fn check_support(p: &dyn Proxy, space: &dyn Space, dataset: Dataset, source: &crate::inputs::Source) -> Result<()> {
    let needs = p.needs();
    if needs.classifier && dataset.num_classes() == 0 {
        bail!(
            "proxy {} needs a classifier network (class logits, or the map its global pooling reads), but {}'s networks on {dataset} have none",
            p.name(),
            space.name()
        );
    }
    if needs.labels && !source.has_labels() {
        bail!(
            "proxy {} needs labelled images: the image folder has no class sub-folders (put each class in its own folder, as torchvision's ImageFolder) or use CIFAR .bin batches",
            p.name()
        );
    }
    Ok(())
}

/// Builds `arch` right after `manual_seed(seed)` and re-draws it by `init`,
/// all under the seeded lock (so the weights depend on the seed alone).
pub fn build_init(
    space: &dyn Space,
    arch: &str,
    dataset: Dataset,
    seed: i64,
    init: Init,
) -> Result<Box<dyn crate::nets::Net>> {
    build_init_on(space, arch, dataset, seed, init, tch::Device::Cpu)
}

/// [`build_init`], then the parameters moved to `device` (drawn on the CPU,
/// so the network is the same on every device).
pub fn build_init_on(
    space: &dyn Space,
    arch: &str,
    dataset: Dataset,
    seed: i64,
    init: Init,
    device: tch::Device,
) -> Result<Box<dyn crate::nets::Net>> {
    let net = seeded(seed, || {
        let net = space.build(arch, dataset)?;
        init.apply(net.params());
        Ok::<_, anyhow::Error>(net)
    })?;
    net.params().to_device(device);
    Ok(net)
}

/// One scored architecture: every column of `scores.csv` known for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Official index in the space.
    pub index: usize,
    /// Architecture string.
    pub arch: String,
    /// The seed its network was built with.
    pub init_seed: i64,
    /// Values by column (each proxy's value, parts and seconds).
    pub values: BTreeMap<String, f64>,
}

impl Record {
    /// Proxy `p`'s value (NaN when it was not scored).
    pub fn value(&self, p: &dyn Proxy) -> f64 {
        self.values.get(&p.columns().value).copied().unwrap_or(f64::NAN)
    }

    /// A column's value.
    pub fn get(&self, column: &str) -> Option<f64> {
        self.values.get(column).copied()
    }

    /// Whether every proxy of `sel` has a value.
    fn has_all(&self, sel: &Selection) -> bool {
        sel.proxies.iter().all(|p| self.values.contains_key(&p.columns().value))
    }

    /// Seconds one worker spent on the proxies of `sel` for this network.
    pub fn seconds(&self, sel: &Selection) -> f64 {
        sel.proxies.iter().filter_map(|p| self.get(&p.columns().seconds)).sum()
    }
}

/// Runs every proxy of the setting on the network `build` makes, each on
/// its own input batch, skipping those `skip` says are known: (name, value,
/// columns, seconds) per proxy run.
pub fn score_with(
    s: &Setting,
    build: &dyn Fn(Init) -> Result<Box<dyn crate::nets::Net>>,
    seed: i64,
) -> Result<Vec<(&'static str, Measure, Columns)>> {
    score_some(s, build, seed, &|_| false).map(|v| v.into_iter().map(|(n, m, c, _)| (n, m, c)).collect())
}

fn score_some(
    s: &Setting,
    build: &dyn Fn(Init) -> Result<Box<dyn crate::nets::Net>>,
    seed: i64,
    skip: &dyn Fn(&Columns) -> bool,
) -> Result<Vec<(&'static str, Measure, Columns, f64)>> {
    let mut out = Vec::new();
    let shared = std::cell::RefCell::new(BTreeMap::new());
    let mut todo: Vec<&Arc<dyn Proxy>> = s.selection.proxies.iter().filter(|p| !skip(&p.columns())).collect();
    let names: Vec<&'static str> = todo.iter().map(|p| p.name()).collect();
    // a pass that also yields other asked proxies runs before them
    todo.sort_by_key(|p| !p.also_yields().iter().any(|n| names.contains(n)));
    for (k, p) in todo.iter().enumerate() {
        let cols = p.columns();
        let (x, labels) = s.batch_for(p.as_ref())?.tensors();
        let (x, labels) = (x.to_device(s.device), labels.map(|l| l.to_device(s.device)));
        let t0 = Instant::now();
        let pending: Vec<&'static str> = todo[k + 1..].iter().map(|p| p.name()).collect();
        let probe = Probe {
            build,
            x: &x,
            labels: labels.as_ref(),
            classes: s.dataset.num_classes(),
            seed,
            shared: &shared,
            pending: &pending,
        };
        let m = p.score(&probe).with_context(|| format!("proxy {}", p.name()))?;
        out.push((p.name(), m, cols, t0.elapsed().as_secs_f64()));
    }
    // reported in the selection's order, whatever order the passes ran in
    out.sort_by_key(|(name, ..)| names.iter().position(|n| n == name));
    Ok(out)
}

/// Scores one architecture of the run with every proxy of the selection
/// not yet in `known`, once its estimated working memory fits in `gate`
/// (the wait is not counted in its seconds).
pub fn score_index(s: &Setting, index: usize, gate: &MemoryGate, known: Option<&Record>) -> Result<Record> {
    let arch = s.space.arch(index)?;
    let reserve = s.working_set(&arch, known)?;
    let _permit = gate.acquire(reserve);
    let record = score_index_now(s, index, arch, known);
    if reserve >= crate::memory::TRIM_FROM_BYTES {
        crate::memory::release_free_memory();
    }
    record
}

fn score_index_now(s: &Setting, index: usize, arch: String, known: Option<&Record>) -> Result<Record> {
    let seed = init_seed(s.seed, index);
    let build = |init: Init| build_init_on(&*s.space, &arch, s.dataset, seed, init, s.device);
    let mut values = known.map(|r| r.values.clone()).unwrap_or_default();
    let known_cols = values.clone();
    for (name, m, cols, secs) in score_some(s, &build, seed, &|c| known_cols.contains_key(&c.value))? {
        values.insert(cols.seconds, secs);
        for (c, v) in std::iter::once(cols.value).chain(cols.parts).zip(std::iter::once(m.value).chain(m.parts)) {
            values.insert(c.clone(), lowest_if_undefined(v, name, &c, index));
        }
    }
    Ok(Record { index, arch, init_seed: seed, values })
}

/// A proxy's NaN or +inf (undefined for this network) kept as -inf, the
/// lowest score, which is how rankings treat it, and said on stderr.
fn lowest_if_undefined(v: f64, proxy: &str, column: &str, index: usize) -> f64 {
    if v.is_nan() || v == f64::INFINITY {
        eprintln!("note: proxy {proxy} gave {v} for {column} of index {index}; recorded as -inf (lowest)");
        return f64::NEG_INFINITY;
    }
    v
}

/// Largest `run.json` read (a real one is a few hundred bytes per proxy).
pub const MAX_RUN_JSON: u64 = 1 << 20;

/// What a results folder was computed with (`run.json`); a rerun with other
/// settings is refused instead of mixing scores. Proxies accumulate: a rerun
/// may add proxies, never change one's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RunHeader {
    space: String,
    dataset: String,
    seed: u64,
    batch: i64,
    images: String,
    /// Digest of the inputs the batches are drawn from (see
    /// `inputs::Source::digest`); absent in folders older than it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inputs: Option<String>,
    /// `cpu` or `cuda` (folders older than devices ran on the CPU).
    #[serde(default = "cpu")]
    device: String,
    init_seed: String,
    /// Settings of every proxy whose values the folder holds.
    proxies: BTreeMap<String, serde_json::Value>,
    /// The shard this folder holds, when it holds one ([`crate::shard`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shard: Option<serde_json::Value>,
}

fn cpu() -> String {
    "cpu".into()
}

/// `run.json` as the first versions wrote it (RBFleX only, its gammas at
/// the top level).
#[derive(Deserialize)]
struct LegacyHeader {
    space: String,
    dataset: String,
    seed: u64,
    batch: i64,
    gamma_k: f64,
    gamma_q: f64,
    images: String,
    init_seed: String,
}

impl RunHeader {
    fn parse(text: &str) -> serde_json::Result<Self> {
        serde_json::from_str::<RunHeader>(text).or_else(|e| {
            let Ok(old) = serde_json::from_str::<LegacyHeader>(text) else { return Err(e) };
            let rbflex = serde_json::json!({ "gamma_k": old.gamma_k, "gamma_q": old.gamma_q });
            Ok(RunHeader {
                space: old.space,
                dataset: old.dataset,
                seed: old.seed,
                batch: old.batch,
                images: old.images,
                inputs: None,
                device: cpu(),
                init_seed: old.init_seed,
                proxies: BTreeMap::from([("rbflex".to_string(), rbflex)]),
                shard: None,
            })
        })
    }

    /// The differences that forbid sharing a folder, as `field was A (now B)`.
    ///
    /// Inputs compare by their digest where both headers have one (the same
    /// images under another path are the same inputs); a folder older than
    /// digests compares by the `images` description alone.
    fn conflicts(&self, new: &RunHeader) -> Result<Vec<String>> {
        let (mut a, mut b) = (serde_json::to_value(self)?, serde_json::to_value(new)?);
        for v in [&mut a, &mut b] {
            if let Some(o) = v.as_object_mut() {
                if self.inputs.is_some() && new.inputs.is_some() {
                    o.remove("images");
                } else {
                    o.remove("inputs");
                }
            }
        }
        let (pa, pb) =
            (a.as_object_mut().and_then(|o| o.remove("proxies")), b.as_object_mut().and_then(|o| o.remove("proxies")));
        let mut diff: Vec<String> = b
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| a.get(k.as_str()) != Some(v))
            .map(|(k, v)| format!("{k} was {} (now {v})", a.get(k.as_str()).unwrap_or(&serde_json::Value::Null)))
            .collect();
        for (k, v) in a.as_object().into_iter().flatten().filter(|(k, _)| b.get(k.as_str()).is_none()) {
            diff.push(format!("{k} was {v} (now none)"));
        }
        if let (Some(pa), Some(pb)) = (pa, pb) {
            for (name, now) in pb.as_object().into_iter().flatten() {
                if let Some(was) = pa.get(name).filter(|was| *was != now) {
                    diff.push(format!("proxy {name} was {was} (now {now})"));
                }
            }
        }
        Ok(diff)
    }
}

/// An exclusive lock on a results folder (`.lock`, holding the owner's
/// pid), so that two runs never score into one folder. It is an OS file lock
/// (`flock`): released when the holder exits, however it exits, so a lock
/// file left by a dead run is simply taken over.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock of `dir`, or says which process holds it.
    pub fn take(dir: &Path) -> Result<Self> {
        let path = dir.join(".lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                bail!(
                    "{} is in use by another rbflex run{}: wait for it to finish or use another --out",
                    dir.display(),
                    if holder.is_empty() { String::new() } else { format!(" (pid {holder})") }
                );
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        file.set_len(0)
            .and_then(|_| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
            .with_context(|| format!("cannot write the lock file {}", path.display()))?;
        Ok(Self { _file: file })
    }
}

/// The temporary name `path` is written under before it is renamed into
/// place: `name.tmp.ext` (the extension kept, for writers that read it).
pub fn tmp_path(path: &Path) -> PathBuf {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("out");
    let name = match path.extension().and_then(|e| e.to_str()) {
        Some(ext) => format!(".{stem}.tmp.{ext}"),
        None => format!(".{stem}.tmp"),
    };
    path.with_file_name(name)
}

/// `run.json`'s text for the whole run that a shard's `run.json` is part of
/// (the same settings, no shard): what an unsharded run writes.
pub fn unsharded_header(text: &str) -> Result<String> {
    let mut h = RunHeader::parse(text)?;
    h.shard = None;
    Ok(serde_json::to_string_pretty(&h)?)
}

/// Writes `text` to `path` through a temporary file renamed into place, so
/// that a crash or a full disk never leaves a half-written file.
pub fn write_atomic(path: &Path, text: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let written = File::create(&tmp)
        .and_then(|mut f| f.write_all(text).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp); // nothing half-written stays behind
    }
    written.with_context(|| format!("cannot write {}", path.display()))
}

/// Scores already computed in a results folder (`scores.csv`), appended to
/// as new ones finish so that an interrupted run resumes where it stopped.
///
/// The file has one column per proxy value, part and time after
/// `index,arch,init_seed`; a row holds what one pass computed (other cells
/// empty) and rows of one index merge. A run that adds proxies rewrites the
/// file once with the wider header (renamed into place).
pub struct ScoreCache {
    path: Option<PathBuf>,
    columns: Vec<String>,
    done: BTreeMap<usize, Record>,
    _lock: Option<RunLock>,
}

const KEYS: [&str; 3] = ["index", "arch", "init_seed"];

impl ScoreCache {
    /// A cache that keeps nothing on disk.
    pub fn in_memory() -> Self {
        Self { path: None, columns: Vec::new(), done: BTreeMap::new(), _lock: None }
    }

    /// Opens (or starts) the cache in `dir` for this setting, holding the
    /// folder's lock (see [`RunLock`]) until the cache is dropped.
    ///
    /// Refused, with nothing written: a folder whose `run.json` records
    /// other settings, a `scores.csv` without the `run.json` that says how
    /// it was computed, and any row that the setting would not have written
    /// (index out of the space, another arch or init seed for its index, a
    /// value that is NaN or +inf).
    pub fn open(dir: &Path, s: &Setting) -> Result<Self> {
        if dir.exists() && !dir.is_dir() {
            bail!("--out {} is a file, not a folder", dir.display());
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create results folder {}", dir.display()))?;
        let lock = RunLock::take(dir)?;
        let mut header = s.header();
        let run = dir.join("run.json");
        let path = dir.join("scores.csv");
        let old = if run.exists() {
            let text = crate::files::read_text_capped(&run, "run file", MAX_RUN_JSON)?;
            let old = RunHeader::parse(&text)
                .with_context(|| format!("{} is corrupt; delete it or use another --out", run.display()))?;
            let diff = old.conflicts(&header)?;
            if !diff.is_empty() {
                let why = if old.device != header.device {
                    " (CPU and GPU scores differ in the last digits: resume a folder on the device that began it)"
                } else {
                    ""
                };
                bail!(
                    "{} holds scores computed with other settings: {}{why}; use another --out or delete the folder",
                    dir.display(),
                    diff.join(", ")
                );
            }
            Some(old)
        } else {
            if std::fs::metadata(&path).is_ok_and(|m| m.len() > 0) {
                bail!(
                    "{} holds scores.csv but no run.json: the settings its scores were computed with are unknown; delete scores.csv or use another --out",
                    dir.display()
                );
            }
            None
        };
        let (columns, done) =
            if path.exists() { read_scores(&path, &|r| check_row(s, r))? } else { (Vec::new(), BTreeMap::new()) };
        match old {
            Some(old) => {
                let mut merged = old.proxies.clone();
                merged.extend(header.proxies);
                header.proxies = merged;
                if header.inputs.is_some() && header.inputs == old.inputs {
                    header.images = old.images.clone(); // the same inputs, perhaps under another path
                }
                if header != old {
                    write_atomic(&run, serde_json::to_string_pretty(&header)?.as_bytes())?;
                }
            }
            None => write_atomic(&run, serde_json::to_string_pretty(&header)?.as_bytes())?,
        }
        Ok(Self { path: Some(path), columns, done, _lock: Some(lock) })
    }

    /// What is known of `index`.
    pub fn get(&self, index: usize) -> Option<&Record> {
        self.done.get(&index)
    }

    fn append(&mut self, r: Record, file: &mut Option<csv::Writer<File>>) -> Result<()> {
        if let (Some(w), Some(p)) = (file.as_mut(), &self.path) {
            w.write_record(row(&self.columns, &r)).with_context(|| format!("cannot append to {}", p.display()))?;
            w.flush().with_context(|| format!("cannot append to {}", p.display()))?;
        }
        self.done.insert(r.index, r);
        Ok(())
    }

    /// Opens the file for appending with the selection's columns, widening
    /// its header first when the selection brings new ones.
    fn writer(&mut self, sel: &Selection) -> Result<Option<csv::Writer<File>>> {
        let Some(p) = self.path.clone() else { return Ok(None) };
        let mut wanted = self.columns.clone();
        for c in sel.proxies.iter().flat_map(|p| {
            let c = p.columns();
            std::iter::once(c.value).chain(c.parts).chain(std::iter::once(c.seconds))
        }) {
            if !wanted.contains(&c) {
                wanted.push(c);
            }
        }
        let fresh = !p.exists() || std::fs::metadata(&p).map(|m| m.len() == 0).unwrap_or(true);
        if !fresh && wanted != self.columns {
            // rewrite every known row under the wider header
            write_atomic(&p, &scores_text(&wanted, self.done.values())?)?;
        }
        self.columns = wanted;
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .with_context(|| format!("cannot open {}", p.display()))?;
        let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(f);
        if fresh {
            w.write_record(KEYS.iter().map(|s| s.to_string()).chain(self.columns.iter().cloned()))
                .with_context(|| format!("cannot write {}", p.display()))?;
        }
        Ok(Some(w))
    }
}

/// A record's cells under `columns` (empty where unknown).
fn row(columns: &[String], r: &Record) -> Vec<String> {
    let mut v = vec![r.index.to_string(), r.arch.clone(), r.init_seed.to_string()];
    v.extend(columns.iter().map(|c| r.values.get(c).map(|x| x.to_string()).unwrap_or_default()));
    v
}

/// A whole `scores.csv`: the header, then `rows` (in the order given)
/// under `columns`.
pub(crate) fn scores_text<'a>(columns: &[String], rows: impl IntoIterator<Item = &'a Record>) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(KEYS.iter().map(|s| s.to_string()).chain(columns.iter().cloned()))?;
    for r in rows {
        w.write_record(row(columns, r))?;
    }
    w.into_inner().context("cannot buffer scores.csv")
}

/// What a `scores.csv` holds: its value columns, its rows merged by index,
/// and, when its last line is torn (an interrupted write), that line's
/// number and the text without it.
pub(crate) struct ScoresFile {
    pub(crate) columns: Vec<String>,
    pub(crate) rows: BTreeMap<usize, Record>,
    pub(crate) torn: Option<(usize, String)>,
}

/// Parses `scores.csv` without changing it; each parsed row must pass
/// `check`. Any bad line but a torn last one is an error naming it.
pub(crate) fn parse_scores(path: &Path, check: &dyn Fn(&Record) -> Result<()>) -> Result<ScoresFile> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let lines: Vec<String> = BufReader::new(f)
        .lines()
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut file = ScoresFile { columns: Vec::new(), rows: BTreeMap::new(), torn: None };
    let Some(first) = lines.first() else { return Ok(file) };
    let header: Vec<String> = first.split(',').map(String::from).collect();
    if header.len() < 4 || header[..3] != KEYS {
        bail!("{}: header is not 'index,arch,init_seed,...': not an rbflex scores file", path.display());
    }
    file.columns = header[3..].to_vec();
    let mut good = format!("{first}\n");
    let n = lines.len();
    for (i, line) in lines.iter().enumerate().skip(1) {
        match parse_row(line, &file.columns) {
            Ok(r) => {
                check(&r).map_err(|e| anyhow::anyhow!("{} line {}: {e}", path.display(), i + 1))?;
                good.push_str(line);
                good.push('\n');
                match file.rows.get_mut(&r.index) {
                    None => {
                        file.rows.insert(r.index, r);
                    }
                    Some(old) => {
                        merge(old, r).map_err(|e| anyhow::anyhow!("{} line {}: {e}", path.display(), i + 1))?
                    }
                }
            }
            Err(_) if i + 1 == n => file.torn = Some((i + 1, std::mem::take(&mut good))),
            Err(e) => bail!("{} line {}: {e}", path.display(), i + 1),
        }
    }
    Ok(file)
}

/// Reads `scores.csv` of a results folder: its value columns and the merged
/// rows. A torn last line (an interrupted write) is dropped from the file
/// and recomputed later.
fn read_scores(path: &Path, check: &dyn Fn(&Record) -> Result<()>) -> Result<(Vec<String>, BTreeMap<usize, Record>)> {
    let file = parse_scores(path, check)?;
    if let Some((line, kept)) = &file.torn {
        eprintln!("warning: {}: dropping a torn last line {line}; it will be recomputed", path.display());
        write_atomic(path, kept.as_bytes())?;
    }
    Ok((file.columns, file.rows))
}

fn parse_row(line: &str, columns: &[String]) -> Result<Record> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).from_reader(line.as_bytes());
    let rec = rdr.records().next().context("empty record")??;
    if rec.len() != columns.len() + 3 {
        bail!("{} fields, the header has {}", rec.len(), columns.len() + 3);
    }
    let index = rec[0].parse().with_context(|| format!("index '{}' is not a number", &rec[0]))?;
    let init_seed = rec[2].parse().with_context(|| format!("init_seed '{}' is not a number", &rec[2]))?;
    let mut values = BTreeMap::new();
    for (c, cell) in columns.iter().zip(rec.iter().skip(3)) {
        if !cell.is_empty() {
            let v: f64 = cell.parse().with_context(|| format!("{c} '{cell}' is not a number"))?;
            if v.is_nan() || v == f64::INFINITY {
                bail!("{c} is {cell}: scores are numbers or -inf");
            }
            values.insert(c.clone(), v);
        }
    }
    Ok(Record { index, arch: rec[1].to_string(), init_seed, values })
}

/// Whether a cached row is one `s` would have written: its index in the
/// space, its arch the space's for that index, its init seed the run's.
fn check_row(s: &Setting, r: &Record) -> Result<()> {
    if r.index >= s.space.len() {
        bail!("index {} is out of {} (0..{})", r.index, s.space.name(), s.space.len());
    }
    let arch = s.space.arch(r.index)?;
    if r.arch != arch {
        bail!(
            "index {} has arch '{}' but {}'s is '{}'",
            r.index,
            crate::spaces::shorten(&r.arch),
            s.space.name(),
            crate::spaces::shorten(&arch)
        );
    }
    let seed = init_seed(s.seed, r.index);
    if r.init_seed != seed {
        bail!("index {} has init_seed {} but this run builds it with {seed} (seed {})", r.index, r.init_seed, s.seed);
    }
    Ok(())
}

/// Merges a later row of the same index into `old`; the same column with
/// another value (or another arch or init seed) is an error.
pub(crate) fn merge(old: &mut Record, new: Record) -> Result<()> {
    if old.arch != new.arch || old.init_seed != new.init_seed {
        bail!("index {} appears with two architectures or init seeds", new.index);
    }
    for (c, v) in new.values {
        match old.values.get(&c) {
            Some(w) if w.to_bits() != v.to_bits() && !c.ends_with("seconds") => {
                bail!("index {} has two values of {c}: {w} and {v}", new.index)
            }
            _ => {
                old.values.insert(c, v);
            }
        }
    }
    Ok(())
}

/// How networks are scored in parallel: worker threads (one libtorch thread
/// each) and the memory budget they share (see [`crate::memory`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Workers {
    /// Networks scored at once, at most.
    pub jobs: usize,
    /// Working memory all workers' networks may hold at once (MB; 0: no limit).
    pub memory_budget_mb: u64,
}

/// Says once when the budget holds fewer networks than there are workers
/// (their estimated working memory, that of the first network to score), so
/// that workers would take turns (the proxies' per-input figures are upper
/// bounds measured at 32x32; they over-estimate large inputs).
fn warn_if_serialised(s: &Setting, index: usize, workers: Workers, cache: &ScoreCache) -> Result<()> {
    let budget = workers.memory_budget_mb.saturating_mul(1 << 20);
    if workers.jobs < 2 || budget == 0 {
        return Ok(());
    }
    let need = s.working_set(&s.space.arch(index)?, cache.get(index))?;
    let (mb, jobs) = (workers.memory_budget_mb, workers.jobs);
    if need > budget {
        eprintln!(
            "note: a network's estimated working memory ({} MB) exceeds --memory-budget {mb} MB: networks run one at a time; --memory-budget 0 (no limit) or a larger one lets {jobs} run at once",
            need >> 20,
        );
    } else if need > 0 && budget / need < jobs as u64 {
        eprintln!(
            "note: --memory-budget {mb} MB holds {} of the {jobs} workers at once (a network's estimated working memory: {} MB); a budget of {} MB, or 0 (no limit), lets all {jobs} run",
            budget / need,
            need >> 20,
            (need * jobs as u64).div_ceil(1 << 20),
        );
    }
    Ok(())
}

/// Scores `indices` (skipping those whose every proxy is in the cache) on
/// `workers`, appending each result as it finishes. Returns the records of
/// all `indices` and the wall seconds spent scoring.
pub fn score_many(
    s: &Setting,
    indices: &[usize],
    workers: Workers,
    cache: &mut ScoreCache,
    quiet: bool,
) -> Result<(Vec<Record>, f64)> {
    let mut todo: Vec<usize> =
        indices.iter().copied().filter(|i| !cache.get(*i).is_some_and(|r| r.has_all(&s.selection))).collect();
    todo.sort_unstable();
    todo.dedup();
    let t0 = Instant::now();
    if !todo.is_empty() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(workers.jobs.max(1)).build()?;
        let gate = MemoryGate::new(workers.memory_budget_mb.saturating_mul(1 << 20));
        if !quiet {
            warn_if_serialised(s, todo[0], workers, cache)?;
        }
        let mut pb = Progress::new(todo.len() as u64, "scoring", quiet);
        let mut writer = cache.writer(&s.selection)?;
        let known: HashMap<usize, Record> =
            todo.iter().filter_map(|i| cache.get(*i).map(|r| (*i, r.clone()))).collect();
        let (tx, rx) = mpsc::channel::<Result<Record>>();
        let stop = AtomicBool::new(false);
        let outcome: Result<()> = std::thread::scope(|scope| {
            let (todo, stop_ref, gate, known) = (&todo, &stop, &gate, &known);
            scope.spawn(move || {
                pool.install(|| {
                    todo.par_iter().for_each_with(tx, |tx, &i| {
                        if !stop_ref.load(Ordering::Relaxed) {
                            let r =
                                score_index(s, i, gate, known.get(&i)).with_context(|| format!("scoring index {i}"));
                            let _ = tx.send(r);
                        }
                    })
                })
            });
            let result = (|| {
                for r in rx {
                    cache.append(r?, &mut writer)?;
                    pb.inc();
                }
                Ok(())
            })();
            stop.store(true, Ordering::Relaxed);
            result
        });
        pb.finish();
        outcome?;
    }
    let secs = t0.elapsed().as_secs_f64();
    let out = indices.iter().filter_map(|i| cache.get(*i).cloned()).collect();
    Ok((out, secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxies::{Options, Selection};

    #[test]
    fn the_memory_gate_reserves_the_largest_proxy_not_yet_scored() {
        let sel = Selection::parse("rbflex,grasp,snip", &Options::default()).unwrap();
        let src = crate::inputs::Source::open(Dataset::Cifar10, None, None, true).unwrap();
        let s = Setting::new(Shared::Static(&crate::spaces::nb201::Nb201), Dataset::Cifar10, 1, sel, &src, 3).unwrap();
        let arch = s.space.arch(7).unwrap();
        // NB201's own estimate is 0; GraSP holds 6000 bytes per input value of its 64 x 3 x 32 x 32 batch
        assert_eq!(s.working_set(&arch, None).unwrap(), 6000 * 64 * 3 * 32 * 32);
        let mut known = Record { index: 7, arch: arch.clone(), init_seed: 0, values: BTreeMap::new() };
        known.values.insert("grasp".into(), 1.0);
        assert_eq!(s.working_set(&arch, Some(&known)).unwrap(), 2300 * 64 * 3 * 32 * 32);
        known.values.insert("snip".into(), 1.0);
        assert_eq!(s.working_set(&arch, Some(&known)).unwrap(), 0);
    }
}
