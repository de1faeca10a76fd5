//! A results folder: `run.json` (the settings its scores were computed
//! with; a rerun with other settings is refused instead of mixing scores)
//! and the resumable `scores.csv`, held under the folder's lock.

use super::lock::RunLock;
use super::score::Record;
use super::scores_file::{read_scores, row, scores_text, KEYS};
use super::seeds::init_seed;
use super::setting::{device_kind, proxy_settings, Setting};
use crate::files::write_atomic;
use crate::proxies::Selection;
use crate::shown::shorten;
use crate::spaces::Space;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The files of a results folder that runs and merges read and rewrite.
pub const RESULT_FILES: [&str; 2] = ["run.json", "scores.csv"];

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
            .map(|(k, v)| {
                let was = a.get(k.as_str()).unwrap_or(&serde_json::Value::Null).to_string();
                format!("{} was {} (now {})", shorten(k), shorten(&was), shorten(&v.to_string()))
            })
            .collect();
        for (k, v) in a.as_object().into_iter().flatten().filter(|(k, _)| b.get(k.as_str()).is_none()) {
            diff.push(format!("{} was {} (now none)", shorten(k), shorten(&v.to_string())));
        }
        if let (Some(pa), Some(pb)) = (pa, pb) {
            for (name, now) in pb.as_object().into_iter().flatten() {
                if let Some(was) = pa.get(name).filter(|was| *was != now) {
                    diff.push(format!(
                        "proxy {} was {} (now {})",
                        shorten(name),
                        shorten(&was.to_string()),
                        shorten(&now.to_string())
                    ));
                }
            }
        }
        Ok(diff)
    }
}

/// What `run.json` records of setting `s`.
fn header_of(s: &Setting) -> RunHeader {
    RunHeader {
        space: s.space.name().to_string(),
        dataset: s.dataset.key().to_string(),
        seed: s.seed,
        batch: s.batch as i64,
        images: s.images.clone(),
        inputs: s.inputs_digest.clone(),
        device: device_kind(s.device).into(),
        init_seed: "seed * 1000000 + index".into(),
        proxies: s
            .selection
            .proxies
            .iter()
            .map(|p| (p.name().to_string(), proxy_settings(p.as_ref(), &s.selection)))
            .collect(),
        shard: s.shard.clone(),
    }
}

/// `run.json`'s text for the whole run that a shard's `run.json` is part of
/// (the same settings, no shard): what an unsharded run writes.
pub fn unsharded_header(text: &str) -> Result<String> {
    let mut h = RunHeader::parse(text)?;
    h.shard = None;
    Ok(serde_json::to_string_pretty(&h)?)
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
        crate::files::refuse_links(dir, &RESULT_FILES)?;
        let mut header = header_of(s);
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
        if let Some(old) = &old {
            // every value must have its proxy's settings recorded: a value
            // whose settings are unknown could be reused under other ones
            let recorded = recorded_columns(old);
            if let Some(c) = columns.iter().find(|c| !recorded.contains(*c)) {
                bail!(
                    "{} records no settings for the proxy of column '{}' that {} holds: run.json is corrupt or was edited; delete the folder or use another --out",
                    run.display(),
                    shorten(c),
                    path.display()
                );
            }
        }
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

    pub(crate) fn append(&mut self, r: Record, file: &mut Option<csv::Writer<File>>) -> Result<()> {
        if let (Some(w), Some(p)) = (file.as_mut(), &self.path) {
            w.write_record(row(&self.columns, &r)).with_context(|| format!("cannot append to {}", p.display()))?;
            w.flush().with_context(|| format!("cannot append to {}", p.display()))?;
        }
        self.done.insert(r.index, r);
        Ok(())
    }

    /// Opens the file for appending with the selection's columns, widening
    /// its header first when the selection brings new ones.
    pub(crate) fn writer(&mut self, sel: &Selection) -> Result<Option<csv::Writer<File>>> {
        let Some(p) = self.path.clone() else { return Ok(None) };
        let mut wanted = self.columns.clone();
        for c in sel.proxies.iter().flat_map(|p| p.columns().names()) {
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
        let f = crate::files::open_in_folder(&p, true)?;
        let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(f);
        if fresh {
            w.write_record(KEYS.iter().map(|s| s.to_string()).chain(self.columns.iter().cloned()))
                .with_context(|| format!("cannot write {}", p.display()))?;
        }
        Ok(Some(w))
    }
}

/// Whether a cached row is one `s` would have written: its index in the
/// space, its arch the space's for that index, its init seed the run's.
fn check_row(s: &Setting, r: &Record) -> Result<()> {
    check_arch(&*s.space, r)?;
    check_init_seed(s.seed, r)
}

/// Whether a row's index is in `space` and its arch the space's for it.
pub(crate) fn check_arch(space: &dyn Space, r: &Record) -> Result<()> {
    if r.index >= space.len() {
        bail!("index {} is out of {} (0..{})", r.index, space.name(), space.len());
    }
    let arch = space.arch(r.index)?;
    if r.arch != arch {
        bail!("index {} has arch '{}' but {}'s is '{}'", r.index, shorten(&r.arch), space.name(), shorten(&arch));
    }
    Ok(())
}

/// Whether a row's init seed is the one a run of `run_seed` builds it with.
pub(crate) fn check_init_seed(run_seed: u64, r: &Record) -> Result<()> {
    let seed = init_seed(run_seed, r.index);
    if r.init_seed != seed {
        bail!("index {} has init_seed {} but this run builds it with {seed} (seed {run_seed})", r.index, r.init_seed);
    }
    Ok(())
}

/// The `scores.csv` columns of every proxy `run.json` records settings for.
fn recorded_columns(h: &RunHeader) -> Vec<String> {
    let opts = crate::proxies::Options::default();
    h.proxies
        .keys()
        .filter_map(|name| crate::proxies::by_name(name, &opts).ok())
        .flat_map(|p| p.columns().names())
        .collect()
}
