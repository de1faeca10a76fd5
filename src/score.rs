//! The score protocol: one network, built with `manual_seed(seed)` (and
//! optionally given weights), scored by every asked proxy on inputs drawn
//! from a source or on a given batch used as-is. It needs no ground truth.

use crate::catalog::Shared;
use crate::dataset::Dataset;
use crate::inputs::Source;
use crate::nets::{BnStats, Init, Net};
use crate::proxies::{Columns, Measure, Selection};
use crate::run::{build_init, score_with, Batch, Setting};
use crate::spaces::Space;
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::path::PathBuf;
use tch::Tensor;

/// What the network is fed.
pub enum Inputs {
    /// Each proxy's batch drawn from `source` (RBFleX's of `batch` inputs).
    Drawn {
        /// Images or sentences.
        source: Source,
        /// RBFleX's N (`--batch`).
        batch: usize,
    },
    /// One batch every proxy sees as it is (`--input FILE`).
    Given {
        /// `[N, ...]` inputs.
        x: Tensor,
        /// Where it came from (named in errors).
        name: String,
    },
}

/// One network to score.
pub struct Request {
    /// The space the architecture belongs to (or is built by).
    pub space: Shared<dyn Space>,
    /// Dataset: classifier size and input transforms.
    pub dataset: Dataset,
    /// The architecture.
    pub arch: String,
    /// The network is built right after `manual_seed(seed)`.
    pub seed: u64,
    /// The seed the inputs are drawn with.
    pub image_seed: u64,
    /// The proxies.
    pub selection: Selection,
    /// The inputs.
    pub inputs: Inputs,
    /// A PyTorch state dict (safetensors) loaded into the network.
    pub params: Option<PathBuf>,
    /// Where the network runs.
    pub device: tch::Device,
}

/// One proxy's result.
pub struct ProxyScore {
    /// The proxy.
    pub proxy: &'static str,
    /// Its value, parts and note.
    pub measure: Measure,
    /// The names of its value and parts.
    pub columns: Columns,
}

/// What `score` found.
pub struct ScoreReport {
    /// The architecture.
    pub arch: String,
    /// Its official index, when it is one of the space's networks.
    pub index: Option<usize>,
    /// Trainable parameters.
    pub params: i64,
    /// Every proxy's result, in the order asked.
    pub results: Vec<ProxyScore>,
    /// Things the user should know (printed on stderr by the CLI).
    pub notes: Vec<String>,
}

impl ScoreReport {
    /// The report as JSON: `arch`, `index`, `params`, each proxy's value and
    /// parts by column (non-finite values as strings), `<proxy>_note`, and
    /// `proxy` (the first asked) unless RBFleX alone was asked.
    pub fn to_json(&self) -> serde_json::Value {
        let mut obj = serde_json::Map::new();
        obj.insert("arch".into(), json!(self.arch));
        obj.insert("index".into(), json!(self.index));
        obj.insert("params".into(), json!(self.params));
        for r in &self.results {
            obj.insert(r.columns.value.clone(), num(r.measure.value));
            for (c, x) in r.columns.parts.iter().zip(&r.measure.parts) {
                obj.insert(c.clone(), num(*x));
            }
            if let Some(note) = &r.measure.note {
                obj.insert(format!("{}_note", r.proxy), json!(note));
            }
        }
        if let Some(first) = self.results.first() {
            if self.results.len() > 1 || first.proxy != "rbflex" {
                obj.insert("proxy".into(), json!(first.proxy));
            }
        }
        serde_json::Value::Object(obj)
    }
}

/// A JSON number, or the strings "-inf", "inf", "NaN" that JSON cannot hold
/// as numbers (pandas and Python's float() read them back).
pub fn num(v: f64) -> serde_json::Value {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15 {
        json!(v as i64)
    } else if v.is_finite() {
        json!(v)
    } else {
        json!(v.to_string())
    }
}

/// Scores one network.
pub fn run(r: Request) -> Result<ScoreReport> {
    if r.seed > i64::MAX as u64 {
        bail!("--seed {} is too large: PyTorch's manual_seed takes at most {}", r.seed, i64::MAX);
    }
    let (space, arch) = (&*r.space, r.arch.as_str());
    let mut notes = Vec::new();
    let index = space.index_of(arch).ok();
    if index.is_none() {
        space.build(arch, r.dataset)?; // a malformed arch is an error, not a network outside the space
        notes.push(format!(
            "'{}' is not one of {}'s benchmarked networks: scored, but it has no index and no accuracy",
            crate::shown::shorten(arch),
            space.name()
        ));
    }
    let (given, s) = match r.inputs {
        Inputs::Given { x, name } => {
            let batch = Batch::new(&x, None)?;
            (
                Some((x, name.clone())),
                Setting::with_batch(r.space.clone(), r.dataset, r.image_seed, r.selection, batch, name)?,
            )
        }
        Inputs::Drawn { source, batch } => {
            (None, Setting::new(r.space.clone(), r.dataset, r.image_seed, r.selection, &source, batch)?)
        }
    };
    let s = s.on(r.device);
    let build = |init: Init| -> Result<Box<dyn Net>> {
        let net = build_init(space, arch, r.dataset, r.seed as i64, init)?;
        if let Some(p) = &r.params {
            net.params().load_safetensors(p)?;
        }
        net.params().to_device(r.device);
        Ok(net)
    };
    let net = build(Init::Default)?;
    if let Some((x, name)) = &given {
        // a user's tensor may not fit the network's strides: say so up front
        crate::inputs::check_runs(net.as_ref(), x, BnStats::PerImage, &format!("input file {name}"))?;
    }
    let params = net.params().count();
    s.check_memory(&r.arch, None)?;
    let results = crate::run::pool::guarded(|| score_with(&s, &build, r.seed as i64))?
        .into_iter()
        .map(|(proxy, measure, columns)| ProxyScore { proxy, measure, columns })
        .collect::<Vec<_>>();
    results.first().context("no proxy was scored")?;
    Ok(ScoreReport { arch: r.arch, index, params, results, notes })
}
