//! Scoring many networks: seeded per architecture (so a score never depends
//! on order, jobs or resumption), in parallel across networks with one
//! libtorch thread each, appended to a resumable CSV as they finish.

use crate::memory::MemoryGate;
use crate::proxies::{Columns, Init, Measure, Probe, Proxy, Selection};
use crate::spaces::{seeded, Dataset, Space};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;
use tch::Tensor;

/// The seed a network is built with in a run: `seed * 1_000_000 + index`.
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
    pub space: &'static dyn Space,
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
    /// The shard of a sharded run this process scores, as `run.json`
    /// records it (see [`crate::shard`]); `None` for a whole run.
    pub shard: Option<serde_json::Value>,
}

impl Setting {
    /// A run of `selection` on `space`; every proxy's input batch is drawn
    /// from `source` with `seed` now. A proxy that needs what the space or
    /// the inputs cannot give is refused here, before anything is scored.
    pub fn new(
        space: &'static dyn Space,
        dataset: Dataset,
        seed: u64,
        selection: Selection,
        source: &crate::inputs::Source,
        batch: usize,
    ) -> Result<Self> {
        let mut batches = BTreeMap::new();
        for p in std::iter::once(None).chain(selection.proxies.iter().map(|p| Some(p.as_ref()))) {
            let n = p.map_or(batch, |p| selection.batch_of(p, batch));
            if let Some(p) = p {
                check_support(p, space, dataset, source)?;
            }
            if let std::collections::btree_map::Entry::Vacant(slot) = batches.entry(n) {
                let (x, labels) = source.batch(n, seed)?;
                slot.insert(Batch::new(&x, labels.as_ref())?);
            }
        }
        Ok(Self { space, dataset, seed, selection, batch, batches, images: source.describe(batch, seed), shard: None })
    }

    /// A setting around one given batch (`score --input`): every proxy sees
    /// it, whatever its protocol's batch.
    pub fn with_batch(
        space: &'static dyn Space,
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
        Self { space, dataset, seed, selection, batch: n, batches, images, shard: None }
    }

    /// The batch proxy `p` is fed.
    fn batch_for(&self, p: &dyn Proxy) -> Result<&Batch> {
        let n = self.selection.batch_of(p, self.batch);
        self.batches.get(&n).with_context(|| format!("no input batch of {n} for proxy {}", p.name()))
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
    seeded(seed, || {
        let net = space.build(arch, dataset)?;
        init.apply(net.params());
        Ok(net)
    })
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
    for p in &s.selection.proxies {
        let cols = p.columns();
        if skip(&cols) {
            continue;
        }
        let (x, labels) = s.batch_for(p.as_ref())?.tensors();
        let t0 = Instant::now();
        let probe =
            Probe { build, x: &x, labels: labels.as_ref(), classes: s.dataset.num_classes(), seed, shared: &shared };
        let m = p.score(&probe).with_context(|| format!("proxy {}", p.name()))?;
        out.push((p.name(), m, cols, t0.elapsed().as_secs_f64()));
    }
    Ok(out)
}

/// Scores one architecture of the run with every proxy of the selection
/// not yet in `known`, once its estimated working memory fits in `gate`
/// (the wait is not counted in its seconds).
pub fn score_index(s: &Setting, index: usize, gate: &MemoryGate, known: Option<&Record>) -> Result<Record> {
    let arch = s.space.arch(index)?;
    let _permit = gate.acquire(s.space.working_set(&arch, s.input_shape())?);
    let seed = init_seed(s.seed, index);
    let build = |init: Init| build_init(s.space, &arch, s.dataset, seed, init);
    let mut values = known.map(|r| r.values.clone()).unwrap_or_default();
    let known_cols = values.clone();
    for (_, m, cols, secs) in score_some(s, &build, seed, &|c| known_cols.contains_key(&c.value))? {
        values.insert(cols.seconds, secs);
        values.insert(cols.value, m.value);
        for (c, v) in cols.parts.into_iter().zip(m.parts) {
            values.insert(c, v);
        }
    }
    Ok(Record { index, arch, init_seed: seed, values })
}

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
    init_seed: String,
    /// Settings of every proxy whose values the folder holds.
    proxies: BTreeMap<String, serde_json::Value>,
    /// The shard this folder holds, when it holds one ([`crate::shard`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shard: Option<serde_json::Value>,
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
                init_seed: old.init_seed,
                proxies: BTreeMap::from([("rbflex".to_string(), rbflex)]),
                shard: None,
            })
        })
    }

    /// The differences that forbid sharing a folder, as `field was A (now B)`.
    fn conflicts(&self, new: &RunHeader) -> Result<Vec<String>> {
        let (mut a, mut b) = (serde_json::to_value(self)?, serde_json::to_value(new)?);
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

/// `run.json`'s text for the whole run that a shard's `run.json` is part of
/// (the same settings, no shard): what an unsharded run writes.
pub fn unsharded_header(text: &str) -> Result<String> {
    let mut h = RunHeader::parse(text)?;
    h.shard = None;
    Ok(serde_json::to_string_pretty(&h)?)
}

/// Writes `text` to `path` through a temporary file renamed into place, so
/// that a crash never leaves a half-written file.
pub fn write_atomic(path: &Path, text: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(text).and_then(|_| f.sync_all()).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
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
    done: HashMap<usize, Record>,
}

pub(crate) const KEYS: [&str; 3] = ["index", "arch", "init_seed"];

impl ScoreCache {
    /// A cache that keeps nothing on disk.
    pub fn in_memory() -> Self {
        Self { path: None, columns: Vec::new(), done: HashMap::new() }
    }

    /// Opens (or starts) the cache in `dir` for this setting.
    pub fn open(dir: &Path, s: &Setting) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create results folder {}", dir.display()))?;
        let mut header = s.header();
        let run = dir.join("run.json");
        if run.exists() {
            let text = std::fs::read_to_string(&run).with_context(|| format!("cannot read {}", run.display()))?;
            let old = RunHeader::parse(&text)
                .with_context(|| format!("{} is corrupt; delete it or use another --out", run.display()))?;
            let diff = old.conflicts(&header)?;
            if !diff.is_empty() {
                bail!(
                    "{} holds scores computed with other settings: {}; use another --out or delete the folder",
                    dir.display(),
                    diff.join(", ")
                );
            }
            let mut merged = old.proxies.clone();
            merged.extend(header.proxies);
            header.proxies = merged;
            if header != old {
                write_atomic(&run, serde_json::to_string_pretty(&header)?.as_bytes())?;
            }
        } else {
            write_atomic(&run, serde_json::to_string_pretty(&header)?.as_bytes())?;
        }
        let path = dir.join("scores.csv");
        let (columns, done) = if path.exists() { read_scores(&path)? } else { (Vec::new(), HashMap::new()) };
        Ok(Self { path: Some(path), columns, done })
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
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(KEYS.iter().map(|s| s.to_string()).chain(wanted.iter().cloned()))?;
            let mut rows: Vec<&Record> = self.done.values().collect();
            rows.sort_by_key(|r| r.index);
            for r in rows {
                w.write_record(row(&wanted, r))?;
            }
            write_atomic(&p, &w.into_inner().context("cannot buffer scores.csv")?)?;
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

/// Reads `scores.csv`: its value columns and the merged rows. A torn last
/// line (an interrupted write) is dropped and rewritten later, any other bad
/// line is an error naming it.
fn read_scores(path: &Path) -> Result<(Vec<String>, HashMap<usize, Record>)> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let lines: Vec<String> = BufReader::new(f)
        .lines()
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot read {}", path.display()))?;
    let Some(first) = lines.first() else { return Ok((Vec::new(), HashMap::new())) };
    let header: Vec<String> = first.split(',').map(String::from).collect();
    if header.len() < 4 || header[..3] != KEYS {
        bail!("{}: header is not 'index,arch,init_seed,...': not an rbflex scores file", path.display());
    }
    let columns = header[3..].to_vec();
    let mut done: HashMap<usize, Record> = HashMap::new();
    let mut good = format!("{first}\n");
    let n = lines.len();
    for (i, line) in lines.iter().enumerate().skip(1) {
        match parse_row(line, &columns) {
            Ok(r) => {
                good.push_str(line);
                good.push('\n');
                match done.get_mut(&r.index) {
                    None => {
                        done.insert(r.index, r);
                    }
                    Some(old) => {
                        merge(old, r).map_err(|e| anyhow::anyhow!("{} line {}: {e}", path.display(), i + 1))?
                    }
                }
            }
            Err(_) if i + 1 == n => {
                eprintln!("warning: {}: dropping a torn last line {}; it will be recomputed", path.display(), i + 1);
                write_atomic(path, good.as_bytes())?;
            }
            Err(e) => bail!("{} line {}: {e}", path.display(), i + 1),
        }
    }
    Ok((columns, done))
}

pub(crate) fn parse_row(line: &str, columns: &[String]) -> Result<Record> {
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
            values.insert(c.clone(), v);
        }
    }
    Ok(Record { index, arch: rec[1].to_string(), init_seed, values })
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

/// A progress bar with an ETA on stderr (hidden when `quiet`).
pub fn progress(len: u64, what: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} nets, {per_sec}, ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
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
        let pb = progress(todo.len() as u64, "scoring", quiet);
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
                    pb.inc(1);
                }
                Ok(())
            })();
            stop.store(true, Ordering::Relaxed);
            result
        });
        pb.finish_and_clear();
        outcome?;
    }
    let secs = t0.elapsed().as_secs_f64();
    let out = indices.iter().filter_map(|i| cache.get(*i).cloned()).collect();
    Ok((out, secs))
}
