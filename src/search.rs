//! The paper's search protocol: each trial samples N architectures without
//! replacement, scores them and keeps its own best; the report gives the
//! chosen networks' benchmark accuracies (mean and std over trials).
//!
//! Unlike the reference, which carries its best score over from earlier
//! trials (biasing the mean upward), every trial here picks its own best.

use crate::benchmarks::GroundTruth;
use crate::run::{score_many, Record, ScoreCache, Setting, Workers};
use crate::stats::mean_std;
use anyhow::{bail, Context, Result};
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::BTreeMap;

/// One trial's pick.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    /// Trial number from 0.
    pub trial: usize,
    /// The chosen architecture.
    pub arch: String,
    /// Its official index.
    pub index: usize,
    /// Its score.
    pub score: f64,
    /// Its benchmark accuracy per dataset.
    pub accuracy: BTreeMap<String, f64>,
}

/// One proxy's search: its pick per trial and their accuracies.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProxySearch {
    /// Every trial's pick.
    pub trials: Vec<Trial>,
    /// Mean accuracy of the picks per dataset.
    pub mean: BTreeMap<String, f64>,
    /// Population std of the picks' accuracy per dataset.
    pub std: BTreeMap<String, f64>,
    /// `best_in_space - mean` per dataset.
    pub gap: BTreeMap<String, f64>,
}

/// A search's result. The top-level picks are the first proxy asked for's;
/// `proxies` has every one's (the same networks, picked by each proxy).
#[derive(Debug, Clone, Serialize)]
pub struct SearchReport {
    /// The proxy the top-level picks are of.
    pub proxy: String,
    /// Space searched.
    pub space: String,
    /// Dataset the networks were scored on.
    pub dataset: String,
    /// Run seed.
    pub seed: u64,
    /// Networks sampled per trial.
    pub networks: usize,
    /// Every trial's pick.
    pub trials: Vec<Trial>,
    /// Mean accuracy of the picks per dataset.
    pub mean: BTreeMap<String, f64>,
    /// Population std of the picks' accuracy per dataset.
    pub std: BTreeMap<String, f64>,
    /// The best accuracy in the whole space per dataset.
    pub best_in_space: BTreeMap<String, f64>,
    /// `best_in_space - mean` per dataset.
    pub gap: BTreeMap<String, f64>,
    /// Wall seconds spent scoring in this run (no ground-truth look-ups;
    /// scores already in the results folder cost nothing).
    pub search_seconds: f64,
    /// Mean over trials of the seconds one worker spends building and
    /// scoring that trial's networks (as recorded when they were scored, so
    /// it stays meaningful when the scores came from the results folder).
    pub trial_worker_seconds: f64,
    /// Distinct networks scored across trials.
    pub networks_scored: usize,
    /// What the accuracies are.
    pub ground_truth: String,
    /// Every proxy's search, in the order asked for. Rank aggregations
    /// (`az`, `ensemble`) are ranked within each trial's sample.
    pub proxies: BTreeMap<String, ProxySearch>,
}

/// The architectures trial `t` samples: `networks` distinct indices drawn with
/// ChaCha8 seeded by `seed * 1000 + t`.
pub fn trial_sample(space_len: usize, networks: usize, seed: u64, t: usize) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1000).wrapping_add(t as u64));
    sample(&mut rng, space_len, networks).into_vec()
}

/// Every network a search scores: the union of its trials' samples, sorted
/// (what a sharded search splits, see [`crate::shard`]).
pub fn candidates(len: usize, trials: usize, networks: usize, seed: u64) -> Result<Vec<usize>> {
    check_counts(len, trials, networks)?;
    let mut all: Vec<usize> = (0..trials).flat_map(|t| trial_sample(len, networks, seed, t)).collect();
    all.sort_unstable();
    all.dedup();
    Ok(all)
}

/// The best of `(index, value)` candidates (highest value; ties go to the
/// lower index). NaN is never picked, and `-inf` only when nothing else is
/// left.
pub fn best(cands: &[(usize, f64)]) -> Option<usize> {
    cands
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.1.is_nan())
        .max_by(|(_, a), (_, b)| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(i, _)| i)
}

/// Most networks drawn in one search, over all trials (each draw holds a
/// record while the trials are judged).
pub const MAX_DRAWS: usize = 1_000_000;

/// Refuses a search of `trials` x `networks` that a space of `len` networks
/// cannot hold or that would draw more than [`MAX_DRAWS`].
pub fn check_counts(len: usize, trials: usize, networks: usize) -> Result<()> {
    if networks == 0 || networks > len {
        bail!("--networks must be between 1 and the space's size {len}, got {networks}");
    }
    if trials == 0 {
        bail!("--trials must be at least 1");
    }
    if trials.saturating_mul(networks) > MAX_DRAWS {
        bail!("--trials x --networks is {trials} x {networks}; at most {MAX_DRAWS} draws are supported in one search");
    }
    Ok(())
}

/// Runs the protocol.
pub fn run(
    s: &Setting,
    truth: &dyn GroundTruth,
    trials: usize,
    networks: usize,
    workers: Workers,
    cache: &mut ScoreCache,
    quiet: bool,
) -> Result<SearchReport> {
    let len = s.space.len();
    check_counts(len, trials, networks)?;
    let samples: Vec<Vec<usize>> = (0..trials).map(|t| trial_sample(len, networks, s.seed, t)).collect();
    let all: Vec<usize> = samples.iter().flatten().copied().collect();
    truth.require(&all, s.dataset)?;
    let (records, secs) = score_many(s, &all, workers, cache, quiet)?;
    let by_index: BTreeMap<usize, &Record> = records.iter().map(|r| (r.index, r)).collect();
    let trial_secs: Vec<f64> = samples
        .iter()
        .map(|sample| sample.iter().filter_map(|i| by_index.get(i)).map(|r| r.seconds(&s.selection)).sum())
        .collect();
    let accuracy = |index: usize| -> BTreeMap<String, f64> {
        truth.datasets().iter().filter_map(|d| truth.accuracy(index, *d).map(|a| (d.key().to_string(), a))).collect()
    };
    let mut proxies: BTreeMap<String, ProxySearch> = BTreeMap::new();
    for (t, sample) in samples.iter().enumerate() {
        let recs: Vec<&Record> = sample.iter().filter_map(|i| by_index.get(i).copied()).collect();
        let values = s.selection.values(recs.len(), |p, i| recs[i].value(p));
        for (name, v) in values {
            let cands: Vec<(usize, f64)> = recs.iter().map(|r| r.index).zip(v).collect();
            let Some(b) = best(&cands) else { bail!("trial {t}: no network could be scored by {name}") };
            let r = recs[b];
            let pick = Trial {
                trial: t,
                arch: r.arch.clone(),
                index: r.index,
                score: cands[b].1,
                accuracy: accuracy(r.index),
            };
            proxies.entry(name.to_string()).or_default().trials.push(pick);
        }
    }
    let mut best_in_space = BTreeMap::new();
    for d in truth.datasets() {
        let top = (0..len).filter_map(|i| truth.accuracy(i, *d)).fold(f64::NEG_INFINITY, f64::max);
        best_in_space.insert(d.key().to_string(), top);
    }
    for ps in proxies.values_mut() {
        for d in truth.datasets() {
            let accs: Vec<f64> = ps.trials.iter().filter_map(|p| p.accuracy.get(d.key()).copied()).collect();
            let (m, sd) = mean_std(&accs);
            ps.mean.insert(d.key().to_string(), m);
            ps.std.insert(d.key().to_string(), sd);
            ps.gap.insert(d.key().to_string(), best_in_space[d.key()] - m);
        }
    }
    let first = s.selection.asked.first().copied().context("no proxy asked for")?;
    let main = proxies.get(first).cloned().with_context(|| format!("no search for {first}"))?;
    Ok(SearchReport {
        proxy: first.to_string(),
        space: s.space.name().into(),
        dataset: s.dataset.key().into(),
        seed: s.seed,
        networks,
        trials: main.trials,
        mean: main.mean,
        std: main.std,
        best_in_space,
        gap: main.gap,
        search_seconds: secs,
        trial_worker_seconds: mean_std(&trial_secs).0,
        networks_scored: by_index.len(),
        ground_truth: truth.describe().into(),
        proxies,
    })
}
