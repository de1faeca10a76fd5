//! Scoring many networks: seeded per architecture (so a score never depends
//! on order, jobs or resumption), in parallel across networks with one
//! libtorch thread each, appended to a resumable CSV as they finish.

use crate::memory::MemoryGate;
use crate::proxies::rbflex::{score, Gammas, Score};
use crate::spaces::{build_seeded, Dataset, Space};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;
use tch::Tensor;

/// The seed a network is built with in a run: `seed * 1_000_000 + index`.
pub fn init_seed(run_seed: u64, index: usize) -> i64 {
    (run_seed as i64).wrapping_mul(1_000_000).wrapping_add(index as i64)
}

/// Everything that determines a score besides the architecture.
pub struct Setting {
    /// The design space.
    pub space: &'static dyn Space,
    /// Dataset (classifier size and images).
    pub dataset: Dataset,
    /// Run seed: network inits and image choice.
    pub seed: u64,
    /// Kernel widths.
    pub gammas: Gammas,
    /// The input batch, `[N, C, H, W]` float32, kept as raw values so that
    /// every worker thread can make its own tensor.
    pub x: (Vec<f32>, Vec<i64>),
    /// Where the images came from.
    pub images: String,
}

impl Setting {
    /// Keeps `x` for the workers.
    pub fn input_from(x: &Tensor) -> Result<(Vec<f32>, Vec<i64>)> {
        let x = x.to_kind(tch::Kind::Float).contiguous();
        let v = Vec::<f32>::try_from(x.reshape([-1])).context("input batch is not float data")?;
        Ok((v, x.size()))
    }

    fn tensor(&self) -> Tensor {
        Tensor::from_slice(&self.x.0).reshape(self.x.1.as_slice())
    }

    /// Batch size N.
    pub fn batch(&self) -> i64 {
        self.x.1.first().copied().unwrap_or(0)
    }

    fn header(&self) -> RunHeader {
        RunHeader {
            space: self.space.name().to_string(),
            dataset: self.dataset.key().to_string(),
            seed: self.seed,
            batch: self.batch(),
            gamma_k: self.gammas.gamma_k,
            gamma_q: self.gammas.gamma_q,
            images: self.images.clone(),
            init_seed: "seed * 1000000 + index".into(),
        }
    }
}

/// One scored architecture.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// Official index in the space.
    pub index: usize,
    /// Architecture string.
    pub arch: String,
    /// The seed its network was built with.
    pub init_seed: i64,
    /// The score.
    pub score: f64,
    /// `log|det K|`.
    pub logdet_k: f64,
    /// `log|det Q|`.
    pub logdet_q: f64,
    /// Activation values per image.
    pub la: i64,
    /// Final-layer input values per image.
    pub lq: i64,
    /// Wall seconds to build and score this network.
    pub seconds: f64,
}

/// Builds and scores one architecture of the run, once its estimated working
/// memory fits in `gate` (the wait is not counted in its seconds).
pub fn score_index(s: &Setting, index: usize, gate: &MemoryGate) -> Result<Record> {
    let arch = s.space.arch(index)?;
    let _permit = gate.acquire(s.space.working_set(&arch, &s.x.1)?);
    let t0 = Instant::now();
    let seed = init_seed(s.seed, index);
    let net = build_seeded(s.space, &arch, s.dataset, seed)?;
    let sc: Score = score(net.as_ref(), &s.tensor(), s.gammas);
    Ok(Record {
        index,
        arch,
        init_seed: seed,
        score: sc.score,
        logdet_k: sc.logdet_k,
        logdet_q: sc.logdet_q,
        la: sc.la,
        lq: sc.lq,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// What a results folder was computed with (`run.json`); a rerun with other
/// settings is refused instead of mixing scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RunHeader {
    space: String,
    dataset: String,
    seed: u64,
    batch: i64,
    gamma_k: f64,
    gamma_q: f64,
    images: String,
    init_seed: String,
}

/// Scores already computed in a results folder (`scores.csv`), appended to
/// as new ones finish so that an interrupted run resumes where it stopped.
pub struct ScoreCache {
    path: Option<PathBuf>,
    done: HashMap<usize, Record>,
}

impl ScoreCache {
    /// A cache that keeps nothing on disk.
    pub fn in_memory() -> Self {
        Self { path: None, done: HashMap::new() }
    }

    /// Opens (or starts) the cache in `dir` for this setting.
    pub fn open(dir: &Path, s: &Setting) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create results folder {}", dir.display()))?;
        let header = s.header();
        let run = dir.join("run.json");
        if run.exists() {
            let text = std::fs::read_to_string(&run).with_context(|| format!("cannot read {}", run.display()))?;
            let old: RunHeader = serde_json::from_str(&text)
                .with_context(|| format!("{} is corrupt; delete it or use another --out", run.display()))?;
            if old != header {
                let (a, b) = (serde_json::to_value(&old)?, serde_json::to_value(&header)?);
                let diff: Vec<String> = b
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, v)| a.get(k.as_str()) != Some(v))
                    .map(|(k, v)| {
                        format!("{k} was {} (now {v})", a.get(k.as_str()).unwrap_or(&serde_json::Value::Null))
                    })
                    .collect();
                bail!(
                    "{} holds scores computed with other settings: {}; use another --out or delete the folder",
                    dir.display(),
                    diff.join(", ")
                );
            }
        } else {
            std::fs::write(&run, serde_json::to_string_pretty(&header)?)
                .with_context(|| format!("cannot write {}", run.display()))?;
        }
        let path = dir.join("scores.csv");
        let mut done = HashMap::new();
        if path.exists() {
            done = read_scores(&path)?;
        }
        Ok(Self { path: Some(path), done })
    }

    /// Scores already known.
    pub fn get(&self, index: usize) -> Option<&Record> {
        self.done.get(&index)
    }

    fn append(&mut self, r: Record, file: &mut Option<csv::Writer<File>>) -> Result<()> {
        if let (Some(w), Some(p)) = (file.as_mut(), &self.path) {
            w.serialize(&r).with_context(|| format!("cannot append to {}", p.display()))?;
            w.flush().with_context(|| format!("cannot append to {}", p.display()))?;
        }
        self.done.insert(r.index, r);
        Ok(())
    }

    fn writer(&self) -> Result<Option<csv::Writer<File>>> {
        let Some(p) = &self.path else { return Ok(None) };
        let fresh = !p.exists() || std::fs::metadata(p).map(|m| m.len() == 0).unwrap_or(true);
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .with_context(|| format!("cannot open {}", p.display()))?;
        Ok(Some(csv::WriterBuilder::new().has_headers(fresh).from_writer(f)))
    }
}

/// Reads `scores.csv`; a torn last line (an interrupted write) is dropped and
/// rewritten later, any other bad line is an error naming it.
fn read_scores(path: &Path) -> Result<HashMap<usize, Record>> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let lines: Vec<String> = BufReader::new(f)
        .lines()
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut done = HashMap::new();
    let mut good = String::new();
    let n = lines.len();
    for (i, line) in lines.iter().enumerate() {
        if i == 0 {
            good.push_str(line);
            good.push('\n');
            continue;
        }
        let mut rdr = csv::ReaderBuilder::new().has_headers(false).from_reader(line.as_bytes());
        let rec: Option<Result<Record, _>> = rdr.deserialize().next();
        match rec {
            Some(Ok(r)) => {
                good.push_str(line);
                good.push('\n');
                done.insert(r.index, r);
            }
            _ if i + 1 == n => {
                eprintln!("warning: {}: dropping a torn last line {}; it will be recomputed", path.display(), i + 1);
                std::fs::write(path, &good).with_context(|| format!("cannot rewrite {}", path.display()))?;
            }
            Some(Err(e)) => bail!("{} line {}: {e}", path.display(), i + 1),
            None => bail!("{} line {}: empty record", path.display(), i + 1),
        }
    }
    Ok(done)
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

/// Scores `indices` (skipping those in the cache) on `workers`, appending
/// each result as it finishes. Returns the records of all `indices` and the
/// wall seconds spent scoring.
pub fn score_many(
    s: &Setting,
    indices: &[usize],
    workers: Workers,
    cache: &mut ScoreCache,
    quiet: bool,
) -> Result<(Vec<Record>, f64)> {
    let mut todo: Vec<usize> = indices.iter().copied().filter(|i| cache.get(*i).is_none()).collect();
    todo.sort_unstable();
    todo.dedup();
    let t0 = Instant::now();
    if !todo.is_empty() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(workers.jobs.max(1)).build()?;
        let gate = MemoryGate::new(workers.memory_budget_mb.saturating_mul(1 << 20));
        let pb = progress(todo.len() as u64, "scoring", quiet);
        let mut writer = cache.writer()?;
        let (tx, rx) = mpsc::channel::<Result<Record>>();
        let stop = AtomicBool::new(false);
        let outcome: Result<()> = std::thread::scope(|scope| {
            let (todo, stop_ref, gate) = (&todo, &stop, &gate);
            scope.spawn(move || {
                pool.install(|| {
                    todo.par_iter().for_each_with(tx, |tx, &i| {
                        if !stop_ref.load(Ordering::Relaxed) {
                            let _ = tx.send(score_index(s, i, gate).with_context(|| format!("scoring index {i}")));
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
