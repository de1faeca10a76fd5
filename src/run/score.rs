//! Scoring one network of a run: built from its init seed, each proxy on
//! its own input batch, undefined values kept as the lowest.

use super::seeds::init_seed;
use super::setting::Setting;
use crate::dataset::Dataset;
use crate::memory::MemoryGate;
use crate::nets::{seeded, Init};
use crate::proxies::{Columns, Measure, Probe, Proxy, Selection};
use crate::spaces::Space;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

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
        net.reinit(init)?;
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
    pub(crate) fn has_all(&self, sel: &Selection) -> bool {
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
    let channels_last = |init: Init| -> Result<Box<dyn crate::nets::Net>> {
        Ok(Box::new(crate::nets::layout::ChannelsLast(build(init)?)))
    };
    // a pass that also yields other asked proxies runs before them
    todo.sort_by_key(|p| !p.also_yields().iter().any(|n| names.contains(n)));
    for (k, p) in todo.iter().enumerate() {
        let cols = p.columns();
        let (x, labels) = s.batch_for(p.as_ref())?.tensors();
        let (x, labels) = (x.to_device(s.device), labels.map(|l| l.to_device(s.device)));
        let t0 = Instant::now();
        let pending: Vec<&'static str> = todo[k + 1..].iter().map(|p| p.name()).collect();
        let build: &dyn Fn(Init) -> Result<Box<dyn crate::nets::Net>> =
            if s.selection.channels_last_for(p.as_ref()) { &channels_last } else { build };
        let probe = Probe {
            build,
            x: &x,
            labels: labels.as_ref(),
            classes: s.classes(),
            seed,
            shared: &shared,
            pending: &pending,
        };
        let m = guarded(|| p.score(&probe)).with_context(|| format!("proxy {}", p.name()))?;
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
    if reserve >= crate::memory::TRIM_FROM_BYTES && gate.waited_on() {
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

/// `score()`, with a panic inside it (a libtorch call on a shape the proxy
/// did not foresee, as a user's model can give) turned into an error: the
/// network's run fails with a message and the process goes on.
fn guarded(score: impl FnOnce() -> Result<Measure>) -> Result<Measure> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(score)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("a panic");
        // libtorch's messages run to a C++ backtrace: the first line says it
        Err(anyhow::anyhow!("internal error: {}", what.lines().next().unwrap_or(what)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_a_proxy_is_an_error_with_its_first_line() {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let e = guarded(|| panic!("Torch(\"Dimension out of range\nframe #0: ...\")")).err().map(|e| e.to_string());
        std::panic::set_hook(prev);
        assert_eq!(e.as_deref(), Some("internal error: Torch(\"Dimension out of range"));
        assert_eq!(guarded(|| Ok(Measure::value(2.0))).map(|m| m.value).ok(), Some(2.0));
    }
}
