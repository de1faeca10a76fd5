//! Guided search: regularized (aging) evolution with a proxy as fitness,
//! label-free (`search --strategy evolution`).
//!
//! Each trial starts from `population` random networks, then repeats: a
//! step of `children` children per trial, each the mutation
//! ([`crate::spaces::Space::mutate`]) of the best of a tournament of
//! `tournament` members drawn from the population (with `crossover` > 0, on
//! a space that has one, a child is at that rate the mutation of a
//! crossover of two tournaments' winners); the step's children are
//! scored together ([`score_many`]: in parallel, appended to `scores.csv`)
//! and join the population, each pushing its oldest member out. The trial
//! stops when `networks` distinct networks have been scored; its pick is
//! the best by fitness of every network it scored.
//!
//! A child already scored in the trial (or already among the step's
//! children) is a revisit: it costs nothing, does not count toward the
//! budget and is drawn again; after [`MAX_MISSES`] revisits in a row the
//! child is a random network the trial has not seen (the space is nearly
//! exhausted around the population).
//!
//! Trials (and, with several proxies asked, each proxy's own evolution)
//! advance in lockstep, so one [`score_many`] call scores every trial's
//! step at once; a trial's history depends only on its seed
//! (`ChaCha8(seed * 1000 + trial)`) and the scores, which are seeded per
//! network: the same command reproduces it, whatever `--jobs`, and a rerun
//! replays it from the results folder, scoring nothing twice.
//!
//! Rank aggregations (`az`, `ensemble`) have no value of their own: their
//! fitness is the aggregate over every network the trial has scored so
//! far, recomputed after each step.

use crate::benchmarks::GroundTruth;
use crate::progress::Progress;
use crate::run::{score_many, Record, ScoreCache, Setting, Workers};
use crate::search::{best, trial_sample, SearchReport};
use crate::spaces::Space;
use crate::stats::mean_std;
use anyhow::{bail, Context, Result};
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt;

/// Default population: tuned on NATS-SSS (see the README, "Guided search").
pub const POPULATION: usize = 10;
/// Default tournament size.
pub const TOURNAMENT: usize = 5;
/// Default children per step of a trial (independent of `--jobs`, so that
/// the history does not depend on the machine).
pub const CHILDREN: usize = 8;
/// Default crossover rate: none (see the README, "Guided search", for how
/// it was chosen).
pub const CROSSOVER: f64 = 0.0;
/// Revisits in a row after which a child is a random unseen network.
pub const MAX_MISSES: usize = 100;

/// The evolution's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Config {
    /// Population size P.
    pub population: usize,
    /// Tournament size S (members drawn without replacement).
    pub tournament: usize,
    /// Children per step of a trial.
    pub children: usize,
    /// Share of children that are the mutation of a crossover of two
    /// tournaments' winners rather than of one (spaces with a crossover).
    pub crossover: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self { population: POPULATION, tournament: TOURNAMENT, children: CHILDREN, crossover: CROSSOVER }
    }
}

impl Config {
    /// Refuses settings that cannot run.
    pub fn check(&self) -> Result<()> {
        if self.population < 2 {
            bail!("--population must be at least 2, got {}", self.population);
        }
        if self.tournament == 0 || self.tournament > self.population {
            bail!("--tournament must be between 1 and --population ({}), got {}", self.population, self.tournament);
        }
        if self.children == 0 {
            bail!("--children must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.crossover) {
            bail!("--crossover is a rate between 0 and 1, got {}", self.crossover);
        }
        Ok(())
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "population {}, tournament {}, {} children a step", self.population, self.tournament, self.children)?;
        if self.crossover > 0.0 {
            write!(f, ", crossover {}", self.crossover)?;
        }
        Ok(())
    }
}

/// The aging population: positions in a trial's history, oldest first;
/// adding to a full population drops its oldest member.
#[derive(Debug, Clone, Default)]
pub struct Population {
    members: VecDeque<usize>,
    capacity: usize,
}

impl Population {
    /// An empty population of at most `capacity` members.
    pub fn new(capacity: usize) -> Self {
        Self { members: VecDeque::with_capacity(capacity + 1), capacity }
    }

    /// Adds the youngest member; returns the oldest when it was dropped.
    pub fn push(&mut self, member: usize) -> Option<usize> {
        self.members.push_back(member);
        (self.members.len() > self.capacity).then(|| self.members.pop_front()).flatten()
    }

    /// Members, oldest first.
    pub fn members(&self) -> impl Iterator<Item = usize> + '_ {
        self.members.iter().copied()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether it has no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The winner of a tournament of `size` members drawn without
    /// replacement: the highest `fitness` (NaN lowest; ties go to the older).
    pub fn tournament(&self, size: usize, fitness: &[f64], rng: &mut dyn rand::RngCore) -> Option<usize> {
        if self.members.is_empty() {
            return None;
        }
        let drawn = sample(rng, self.members.len(), size.min(self.members.len()));
        let key = |m: usize| crate::proxies::nan_as_lowest(fitness.get(m).copied().unwrap_or(f64::NAN));
        drawn.into_iter().map(|k| self.members[k]).max_by(|a, b| key(*a).total_cmp(&key(*b)).then(b.cmp(a)))
    }
}

/// A network a trial scores, and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposal {
    /// Its official index.
    pub index: usize,
    /// The network it was mutated from (none: a random network).
    pub parent: Option<usize>,
    /// The other parent, when it is the mutation of a crossover.
    pub mate: Option<usize>,
}

impl Proposal {
    fn random(index: usize) -> Self {
        Self { index, parent: None, mate: None }
    }
}

/// One network a trial scored.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// Its place in the trial's history, from 0.
    pub order: usize,
    /// Its official index.
    pub index: usize,
    /// The index of the network it was mutated from (none: the initial
    /// population, or a random fill).
    pub parent: Option<usize>,
    /// The index of the other parent, when the network is the mutation of a
    /// crossover of `parent` and this one.
    pub mate: Option<usize>,
    /// Its fitness at the trial's end (for rank aggregations: over every
    /// network the trial scored).
    pub fitness: f64,
}

/// One trial of one proxy's evolution, as it runs.
pub struct Trajectory {
    /// Trial number.
    pub trial: usize,
    /// The proxy (or aggregation) that is the fitness.
    pub proxy: &'static str,
    rng: ChaCha8Rng,
    /// Every network scored, in order.
    pub history: Vec<Proposal>,
    seen: HashSet<usize>,
    population: Population,
    /// Fitness of each history entry, as of the last step.
    pub fitness: Vec<f64>,
    /// Children drawn that the trial had already scored.
    pub revisits: usize,
    /// Children that were random unseen networks (after [`MAX_MISSES`]).
    pub random_fills: usize,
    /// Children that are the mutation of a crossover.
    pub crossovers: usize,
    budget: usize,
}

impl Trajectory {
    /// Trial `trial` of a run seeded `seed`, with a budget of `budget`
    /// distinct networks.
    pub fn new(trial: usize, proxy: &'static str, seed: u64, cfg: &Config, budget: usize) -> Self {
        Self {
            trial,
            proxy,
            rng: ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1000).wrapping_add(trial as u64)),
            history: Vec::new(),
            seen: HashSet::new(),
            population: Population::new(cfg.population),
            fitness: Vec::new(),
            revisits: 0,
            random_fills: 0,
            crossovers: 0,
            budget,
        }
    }

    /// Whether the budget is spent.
    pub fn done(&self) -> bool {
        self.history.len() >= self.budget
    }

    /// The next networks to score: the initial population (random, without
    /// repeats), then a step of children.
    pub fn propose(&mut self, space: &dyn Space, cfg: &Config) -> Result<Vec<Proposal>> {
        let len = space.len();
        if self.history.is_empty() {
            let n = cfg.population.min(self.budget).min(len);
            return Ok(sample(&mut self.rng, len, n).into_iter().map(Proposal::random).collect());
        }
        let k = cfg.children.min(self.budget.saturating_sub(self.history.len()));
        let mut out: Vec<Proposal> = Vec::with_capacity(k);
        let mut taken: HashSet<usize> = HashSet::new();
        let mut misses = 0;
        while out.len() < k {
            if misses >= MAX_MISSES {
                let unseen: Vec<usize> = (0..len).filter(|i| !self.seen.contains(i) && !taken.contains(i)).collect();
                let Some(&i) = unseen.get(self.rng.random_range(0..unseen.len().max(1))) else {
                    break; // the whole space is scored
                };
                taken.insert(i);
                out.push(Proposal::random(i));
                self.random_fills += 1;
                misses = 0;
                continue;
            }
            let child = self.child(space, cfg)?;
            if self.seen.contains(&child.index) || taken.contains(&child.index) {
                self.revisits += 1;
                misses += 1;
                continue;
            }
            misses = 0;
            self.crossovers += usize::from(child.mate.is_some());
            taken.insert(child.index);
            out.push(child);
        }
        Ok(out)
    }

    /// One child: the mutation of a tournament's winner, or (at the
    /// crossover rate, on a space with a crossover) the mutation of a
    /// crossover of two winners. Draws the rate's coin only when it is
    /// positive, so that histories without crossover stay as they were.
    fn child(&mut self, space: &dyn Space, cfg: &Config) -> Result<Proposal> {
        let winner = |rng: &mut ChaCha8Rng| -> Result<usize> {
            let pos = self
                .population
                .tournament(cfg.tournament, &self.fitness, rng)
                .context("evolution: empty population")?;
            Ok(self.history[pos].index)
        };
        let parent = winner(&mut self.rng)?;
        let mut arch = space.arch(parent)?;
        let mut mate = None;
        if cfg.crossover > 0.0 && self.rng.random_bool(cfg.crossover) {
            let other = winner(&mut self.rng)?;
            if other != parent {
                if let Some(crossed) = space.crossover(&arch, &space.arch(other)?, &mut self.rng) {
                    arch = crossed?;
                    mate = Some(other);
                }
            }
        }
        let from = space.index_of(&arch).with_context(|| {
            format!("{}: the crossover of indices {parent} and {mate:?} is not in the space", space.name())
        })?;
        let child_arch = space.mutate(&arch, &mut self.rng).with_context(|| no_mutation(space))??;
        let child = space
            .index_of(&child_arch)
            .with_context(|| format!("{}: a mutation of index {from} is not in the space", space.name()))?;
        if child == from {
            bail!("{}: the mutation of index {from} returned the same network", space.name());
        }
        Ok(Proposal { index: child, parent: Some(parent), mate })
    }

    /// Adds scored networks to the history and the population, then
    /// recomputes every entry's fitness with `fitness` (given the history's
    /// indices in order).
    pub fn accept(&mut self, scored: &[Proposal], fitness: &dyn Fn(&[usize]) -> Vec<f64>) -> Result<()> {
        for p in scored {
            if !self.seen.insert(p.index) {
                bail!("evolution: index {} scored twice in trial {}", p.index, self.trial);
            }
            self.population.push(self.history.len());
            self.history.push(*p);
        }
        let indices: Vec<usize> = self.history.iter().map(|h| h.index).collect();
        self.fitness = fitness(&indices);
        Ok(())
    }

    /// The history with each entry's fitness.
    pub fn evaluations(&self) -> Vec<Evaluation> {
        self.history
            .iter()
            .enumerate()
            .map(|(order, p)| Evaluation {
                order,
                index: p.index,
                parent: p.parent,
                mate: p.mate,
                fitness: self.fitness.get(order).copied().unwrap_or(f64::NAN),
            })
            .collect()
    }
}

/// The one-line refusal for a space without a mutation.
pub fn no_mutation(space: &dyn Space) -> String {
    format!("space {} has no mutation: --strategy evolution cannot search it (use --strategy random)", space.name())
}

/// Refuses evolution on a space without a mutation, before anything runs.
pub fn check_space(space: &dyn Space) -> Result<()> {
    let arch = space.arch(0)?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    match space.mutate(&arch, &mut rng) {
        None => bail!("{}", no_mutation(space)),
        Some(r) => r.map(|_| ()),
    }
}

/// Refuses a crossover rate on a space without a crossover, before
/// anything runs (rather than silently only mutating).
pub fn check_crossover(space: &dyn Space, cfg: &Config) -> Result<()> {
    if cfg.crossover > 0.0 && space.len() > 1 {
        let (a, b) = (space.arch(0)?, space.arch(1)?);
        if space.crossover(&a, &b, &mut ChaCha8Rng::seed_from_u64(0)).is_none() {
            bail!(
                "space {} has no crossover (its encoding is not a fixed list of genes): leave --crossover at 0",
                space.name()
            );
        }
    }
    Ok(())
}

/// `name`'s fitness of `indices` (in that order) from their records.
pub fn fitness_of(s: &Setting, cache: &ScoreCache, name: &str, indices: &[usize]) -> Vec<f64> {
    let recs: Vec<Option<&Record>> = indices.iter().map(|i| cache.get(*i)).collect();
    s.selection
        .values(recs.len(), |p, i| recs[i].map_or(f64::NAN, |r| r.value(p)))
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| vec![f64::NAN; indices.len()])
}

/// Mean and spread over trials of the pick's accuracy against networks
/// scored: after each of `networks[k]` networks of a trial's order, the
/// best by fitness so far (for rank aggregations: ranked over that prefix).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Curve {
    /// The dataset whose accuracy is shown.
    pub dataset: String,
    /// Networks scored.
    pub networks: Vec<usize>,
    /// Mean accuracy of the best-so-far pick over trials.
    pub mean: Vec<f64>,
    /// Population std over trials.
    pub std: Vec<f64>,
}

/// The points of a curve up to `n`: about 100, always `n` itself.
pub fn curve_points(n: usize) -> Vec<usize> {
    let step = n.div_ceil(100).max(1);
    let mut v: Vec<usize> = (1..=n).filter(|k| k % step == 0).collect();
    if v.last() != Some(&n) {
        v.push(n);
    }
    v
}

/// The curve of trials whose networks were scored in `orders` (one order
/// per trial), for `name` on the setting's dataset.
pub fn curve(s: &Setting, truth: &dyn GroundTruth, cache: &ScoreCache, name: &str, orders: &[Vec<usize>]) -> Curve {
    let n = orders.iter().map(Vec::len).min().unwrap_or(0);
    let points = curve_points(n);
    let mut per_point: Vec<Vec<f64>> = vec![Vec::new(); points.len()];
    for order in orders {
        for (k, &p) in points.iter().enumerate() {
            let prefix = &order[..p];
            let f = fitness_of(s, cache, name, prefix);
            let cands: Vec<(usize, f64)> = prefix.iter().copied().zip(f).collect();
            if let Some(acc) = best(&cands).and_then(|b| truth.accuracy(cands[b].0, s.dataset)) {
                per_point[k].push(acc);
            }
        }
    }
    let (mean, std) = per_point.iter().map(|v| mean_std(v)).unzip();
    Curve { dataset: s.dataset.key().into(), networks: points, mean, std }
}

/// The proxy's own best network over the whole space: no search with that
/// proxy can pick better (by its fitness), so a trial's accuracy gap to it
/// is the search's own error.
#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    /// Its official index.
    pub index: usize,
    /// Its architecture.
    pub arch: String,
    /// Its fitness over the whole space.
    pub fitness: f64,
    /// Its accuracy per dataset.
    pub accuracy: BTreeMap<String, f64>,
}

/// How a strategy's picks compare with the ceiling.
#[derive(Debug, Clone, Serialize)]
pub struct CeilingGap {
    /// Mean over trials of `ceiling accuracy - pick accuracy`, per dataset.
    pub gap_mean: BTreeMap<String, f64>,
    /// Share of trials whose gap is at most 0.1, per dataset.
    pub within_0_1: BTreeMap<String, f64>,
    /// Share of trials that picked the ceiling network itself.
    pub found: f64,
}

/// The ceiling of `name`, when every network of the space has the values
/// it needs in the results folder; else why not.
pub fn ceiling(
    s: &Setting,
    truth: &dyn GroundTruth,
    cache: &ScoreCache,
    name: &str,
) -> std::result::Result<Ceiling, String> {
    let needed: Vec<&'static str> = match s.selection.aggregates.iter().find(|a| a.name == name) {
        Some(a) => a.members.to_vec(),
        None => vec![s.selection.proxy(name).map_or("", |p| p.name())],
    };
    let len = s.space.len();
    let complete = (0..len).all(|i| {
        cache.get(i).is_some_and(|r| {
            needed.iter().all(|n| s.selection.proxy(n).is_some_and(|p| r.values.contains_key(&p.columns().value)))
        })
    });
    if !complete {
        return Err(format!(
            "{name} has not been scored over the whole space in this folder (rbflex correlate --all --proxy {name} with the same --out, --seed and --batch gives the ceiling)"
        ));
    }
    let all: Vec<usize> = (0..len).collect();
    let f = fitness_of(s, cache, name, &all);
    let cands: Vec<(usize, f64)> = all.iter().copied().zip(f).collect();
    let b = best(&cands).ok_or_else(|| format!("no network of the space has a {name} value"))?;
    let index = cands[b].0;
    Ok(Ceiling {
        index,
        arch: cache.get(index).map(|r| r.arch.clone()).unwrap_or_default(),
        fitness: cands[b].1,
        accuracy: accuracy(truth, index),
    })
}

/// Every dataset's accuracy of `index`.
pub fn accuracy(truth: &dyn GroundTruth, index: usize) -> BTreeMap<String, f64> {
    truth.datasets().iter().filter_map(|d| truth.accuracy(index, *d).map(|a| (d.key().to_string(), a))).collect()
}

/// How picks (`(index, accuracy)` per trial) compare with `c`.
pub fn ceiling_gap(c: &Ceiling, picks: &[(usize, &BTreeMap<String, f64>)]) -> CeilingGap {
    let mut gap_mean = BTreeMap::new();
    let mut within = BTreeMap::new();
    for (d, top) in &c.accuracy {
        let gaps: Vec<f64> = picks.iter().filter_map(|(_, a)| a.get(d).map(|x| top - x)).collect();
        gap_mean.insert(d.clone(), mean_std(&gaps).0);
        within.insert(d.clone(), gaps.iter().filter(|g| **g <= 0.1 + 1e-9).count() as f64 / gaps.len().max(1) as f64);
    }
    let found = picks.iter().filter(|(i, _)| *i == c.index).count() as f64 / picks.len().max(1) as f64;
    CeilingGap { gap_mean, within_0_1: within, found }
}

/// One trial's pick and history.
#[derive(Debug, Clone, Serialize)]
pub struct EvoTrial {
    /// Trial number from 0.
    pub trial: usize,
    /// The chosen architecture (the best by fitness of every network the
    /// trial scored).
    pub arch: String,
    /// Its official index.
    pub index: usize,
    /// Its fitness.
    pub score: f64,
    /// Its benchmark accuracy per dataset.
    pub accuracy: BTreeMap<String, f64>,
    /// `ceiling accuracy - accuracy` per dataset, when the ceiling is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ceiling_gap: Option<BTreeMap<String, f64>>,
    /// Children drawn that the trial had already scored (free).
    pub revisits: usize,
    /// Children that were random unseen networks.
    pub random_fills: usize,
    /// Children that are the mutation of a crossover.
    pub crossovers: usize,
    /// Every network the trial scored, in order.
    pub evaluations: Vec<Evaluation>,
}

/// One proxy's evolution over the trials.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProxyEvolution {
    /// Every trial's pick and history.
    pub trials: Vec<EvoTrial>,
    /// Mean accuracy of the picks per dataset.
    pub mean: BTreeMap<String, f64>,
    /// Population std of the picks' accuracy per dataset.
    pub std: BTreeMap<String, f64>,
    /// `best_in_space - mean` per dataset.
    pub gap: BTreeMap<String, f64>,
    /// Pick accuracy against networks scored.
    pub curve: Curve,
    /// The proxy's best network over the whole space, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<Ceiling>,
    /// The picks against the ceiling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vs_ceiling: Option<CeilingGap>,
    /// Why there is no ceiling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ceiling_note: Option<String>,
}

/// An evolution search's result (`search.json` of `--strategy evolution`):
/// the top-level fields are the first proxy asked for's, `proxies` has
/// every one's (each its own evolution).
#[derive(Debug, Clone, Serialize)]
pub struct EvolutionReport {
    /// `evolution`.
    pub strategy: String,
    /// The proxy the top-level picks are of.
    pub proxy: String,
    /// Space searched.
    pub space: String,
    /// Dataset the networks were scored on.
    pub dataset: String,
    /// Run seed.
    pub seed: u64,
    /// Budget: distinct networks scored per trial.
    pub networks: usize,
    /// Population, tournament and children per step.
    pub evolution: Config,
    /// What the fitness is.
    pub fitness: String,
    /// Every trial's pick and history.
    pub trials: Vec<EvoTrial>,
    /// Mean accuracy of the picks per dataset.
    pub mean: BTreeMap<String, f64>,
    /// Population std of the picks' accuracy per dataset.
    pub std: BTreeMap<String, f64>,
    /// The best accuracy in the whole space per dataset.
    pub best_in_space: BTreeMap<String, f64>,
    /// `best_in_space - mean` per dataset.
    pub gap: BTreeMap<String, f64>,
    /// The proxy's best network over the whole space, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<Ceiling>,
    /// The picks against the ceiling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vs_ceiling: Option<CeilingGap>,
    /// Why there is no ceiling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ceiling_note: Option<String>,
    /// Pick accuracy against networks scored (mean and std over trials).
    pub curve: Curve,
    /// Wall seconds spent scoring in this run (cached scores are free).
    pub search_seconds: f64,
    /// Wall seconds of the whole search in this run (scoring and evolving).
    pub wall_seconds: f64,
    /// Mean over trials of the seconds one worker spends scoring a trial's
    /// networks (as recorded when they were scored).
    pub trial_worker_seconds: f64,
    /// Distinct networks scored across trials and proxies.
    pub networks_scored: usize,
    /// Of them, scored in this run (the others came from the folder).
    pub scored_now: usize,
    /// What the accuracies are.
    pub ground_truth: String,
    /// Notes (a capped budget, ...).
    pub notes: Vec<String>,
    /// Every proxy's evolution, in the order asked for.
    pub proxies: BTreeMap<String, ProxyEvolution>,
}

/// What the fitness of `name` is, in words.
pub fn describe_fitness(s: &Setting, name: &str) -> String {
    if s.selection.aggregates.iter().any(|a| a.name == name) {
        format!(
            "{name}: rank aggregate (AZ-NAS rule) over every network scored so far in the trial, recomputed after each step; an evaluation's fitness is the one at the trial's end"
        )
    } else {
        format!("{name}: the proxy's score")
    }
}

/// Runs the evolution: `trials` trials of `networks` distinct networks each
/// (at most the space's size), for every asked proxy.
#[allow(clippy::too_many_arguments)]
pub fn run(
    s: &Setting,
    truth: &dyn GroundTruth,
    trials: usize,
    networks: usize,
    cfg: &Config,
    workers: Workers,
    cache: &mut ScoreCache,
    quiet: bool,
) -> Result<EvolutionReport> {
    cfg.check()?;
    let t0 = std::time::Instant::now();
    let space: &dyn Space = &*s.space;
    check_space(space)?;
    check_crossover(space, cfg)?;
    let len = space.len();
    let mut notes = Vec::new();
    let budget = networks.min(len);
    if budget < networks {
        notes.push(format!(
            "--networks {networks} is more than the {len} networks of {}: capped at {len}",
            space.name()
        ));
    }
    crate::search::check_counts(len, trials, budget)?;
    let names: Vec<&'static str> = s.selection.asked.clone();
    let mut trajs: Vec<Trajectory> = names
        .iter()
        .flat_map(|n| (0..trials).map(move |t| (t, *n)))
        .map(|(t, n)| Trajectory::new(t, n, s.seed, cfg, budget))
        .collect();
    let mut pb = Progress::new((trajs.len() * budget) as u64, "evolving", quiet);
    let mut search_seconds = 0.0;
    let mut scored_now: HashSet<usize> = HashSet::new();
    loop {
        let mut proposals: Vec<Vec<Proposal>> = Vec::with_capacity(trajs.len());
        for tr in trajs.iter_mut() {
            proposals.push(if tr.done() { Vec::new() } else { tr.propose(space, cfg)? });
        }
        let all: Vec<usize> = proposals.iter().flatten().map(|p| p.index).collect();
        if all.is_empty() {
            break;
        }
        let fresh: Vec<usize> = all
            .iter()
            .copied()
            .filter(|i| {
                !cache
                    .get(*i)
                    .is_some_and(|r| s.selection.proxies.iter().all(|p| r.values.contains_key(&p.columns().value)))
            })
            .collect();
        let (_, secs) = score_many(s, &all, workers, cache, true)?;
        search_seconds += secs;
        scored_now.extend(fresh);
        let c: &ScoreCache = cache;
        for (tr, prop) in trajs.iter_mut().zip(&proposals) {
            if prop.is_empty() {
                continue;
            }
            let name = tr.proxy;
            tr.accept(prop, &|idx: &[usize]| fitness_of(s, c, name, idx))?;
            for _ in 0..prop.len() {
                pb.inc();
            }
        }
        if crate::progress::cancelled() {
            bail!("{}", crate::progress::CANCELLED_MESSAGE);
        }
    }
    pb.finish();

    let mut best_in_space = BTreeMap::new();
    for d in truth.datasets() {
        let top = (0..len).filter_map(|i| truth.accuracy(i, *d)).fold(f64::NEG_INFINITY, f64::max);
        best_in_space.insert(d.key().to_string(), top);
    }
    let mut proxies: BTreeMap<String, ProxyEvolution> = BTreeMap::new();
    let mut distinct: HashSet<usize> = HashSet::new();
    let mut worker_secs: Vec<f64> = Vec::new();
    for name in &names {
        let ceil = ceiling(s, truth, cache, name);
        let mine: Vec<&Trajectory> = trajs.iter().filter(|t| t.proxy == *name).collect();
        let mut pe = ProxyEvolution::default();
        for tr in &mine {
            let cands: Vec<(usize, f64)> = tr.history.iter().map(|h| h.index).zip(tr.fitness.iter().copied()).collect();
            let Some(b) = best(&cands) else { bail!("trial {}: no network could be scored by {name}", tr.trial) };
            let index = cands[b].0;
            distinct.extend(cands.iter().map(|c| c.0));
            if *name == names[0] {
                worker_secs.push(cands.iter().filter_map(|c| cache.get(c.0)).map(|r| r.seconds(&s.selection)).sum());
            }
            let acc = accuracy(truth, index);
            let ceiling_gap = ceil
                .as_ref()
                .ok()
                .map(|c| acc.iter().filter_map(|(d, a)| c.accuracy.get(d).map(|top| (d.clone(), top - a))).collect());
            pe.trials.push(EvoTrial {
                trial: tr.trial,
                arch: space.arch(index)?,
                index,
                score: cands[b].1,
                accuracy: acc,
                ceiling_gap,
                revisits: tr.revisits,
                random_fills: tr.random_fills,
                crossovers: tr.crossovers,
                evaluations: tr.evaluations(),
            });
        }
        for d in truth.datasets() {
            let accs: Vec<f64> = pe.trials.iter().filter_map(|p| p.accuracy.get(d.key()).copied()).collect();
            let (m, sd) = mean_std(&accs);
            pe.mean.insert(d.key().to_string(), m);
            pe.std.insert(d.key().to_string(), sd);
            pe.gap.insert(d.key().to_string(), best_in_space[d.key()] - m);
        }
        let orders: Vec<Vec<usize>> = mine.iter().map(|t| t.history.iter().map(|h| h.index).collect()).collect();
        pe.curve = curve(s, truth, cache, name, &orders);
        match ceil {
            Ok(c) => {
                let picks: Vec<(usize, &BTreeMap<String, f64>)> =
                    pe.trials.iter().map(|t| (t.index, &t.accuracy)).collect();
                pe.vs_ceiling = Some(ceiling_gap(&c, &picks));
                pe.ceiling = Some(c);
            }
            Err(why) => pe.ceiling_note = Some(why),
        }
        proxies.insert(name.to_string(), pe);
    }
    let first = names.first().copied().context("no proxy asked for")?;
    let main = proxies.get(first).cloned().with_context(|| format!("no search for {first}"))?;
    Ok(EvolutionReport {
        strategy: "evolution".into(),
        proxy: first.into(),
        space: space.name().into(),
        dataset: s.dataset.key().into(),
        seed: s.seed,
        networks: budget,
        evolution: *cfg,
        fitness: describe_fitness(s, first),
        trials: main.trials,
        mean: main.mean,
        std: main.std,
        best_in_space,
        gap: main.gap,
        ceiling: main.ceiling,
        vs_ceiling: main.vs_ceiling,
        ceiling_note: main.ceiling_note,
        curve: main.curve,
        search_seconds,
        wall_seconds: t0.elapsed().as_secs_f64(),
        trial_worker_seconds: mean_std(&worker_secs).0,
        networks_scored: distinct.len(),
        scored_now: scored_now.len(),
        ground_truth: truth.describe().into(),
        notes,
        proxies,
    })
}

/// `search --strategy random,evolution`: both on the same seeds and
/// budget, side by side (`search.json`).
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// `["random", "evolution"]`.
    pub strategies: Vec<String>,
    /// Distinct networks scored in this run by either strategy (the others
    /// came from the folder).
    pub scored_now: usize,
    /// The random search (today's protocol and report).
    pub random: SearchReport,
    /// Its pick accuracy against networks sampled (first proxy).
    pub random_curve: Curve,
    /// Its picks against the ceiling (first proxy), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub random_vs_ceiling: Option<CeilingGap>,
    /// The evolution.
    pub evolution: EvolutionReport,
    /// The plot of both curves.
    pub plot: String,
}

/// The random search's curve and ceiling comparison (first proxy).
pub fn random_extras(
    s: &Setting,
    truth: &dyn GroundTruth,
    cache: &ScoreCache,
    rep: &SearchReport,
    ceiling: Option<&Ceiling>,
) -> (Curve, Option<CeilingGap>) {
    let len = s.space.len();
    let orders: Vec<Vec<usize>> = (0..rep.trials.len()).map(|t| trial_sample(len, rep.networks, s.seed, t)).collect();
    let c = curve(s, truth, cache, &rep.proxy, &orders);
    let gap = ceiling.map(|ce| {
        let picks: Vec<(usize, &BTreeMap<String, f64>)> = rep.trials.iter().map(|t| (t.index, &t.accuracy)).collect();
        ceiling_gap(ce, &picks)
    });
    (c, gap)
}

/// A fitness in at most 12 characters.
fn short(v: f64) -> String {
    if v.is_finite() && v != 0.0 && !(1e-3..1e6).contains(&v.abs()) {
        format!("{v:.4e}")
    } else {
        format!("{v:.4}")
    }
}

fn pm(m: &BTreeMap<String, f64>, sd: &BTreeMap<String, f64>, k: &str) -> String {
    format!("{:.2} +- {:.2}", m.get(k).copied().unwrap_or(f64::NAN), sd.get(k).copied().unwrap_or(f64::NAN))
}

impl fmt::Display for EvolutionReport {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        writeln!(
            f,
            "{} on {} (seed {}): evolution, {} trials x {} networks ({}), {} distinct scored, {} in this run",
            self.space,
            self.dataset,
            self.seed,
            self.trials.len(),
            self.networks,
            self.evolution,
            self.networks_scored,
            self.scored_now
        )?;
        let keys: Vec<&String> = self.mean.keys().collect();
        writeln!(
            f,
            "{:>5} {:>6} {:>12}  {}  {:>8}  arch",
            "trial",
            "index",
            "fitness",
            keys.iter().map(|k| format!("{k:>15}")).collect::<String>(),
            "revisits"
        )?;
        for t in &self.trials {
            let accs: String =
                keys.iter().map(|k| format!("{:>15.2}", t.accuracy.get(*k).copied().unwrap_or(f64::NAN))).collect();
            writeln!(f, "{:>5} {:>6} {:>12}  {accs}  {:>8}  {}", t.trial, t.index, short(t.score), t.revisits, t.arch)?;
        }
        for k in &keys {
            writeln!(
                f,
                "{k:>15}: {} (space best {:.2}, gap {:.2})",
                pm(&self.mean, &self.std, k),
                self.best_in_space[*k],
                self.gap[*k]
            )?;
        }
        match (&self.ceiling, &self.vs_ceiling) {
            (Some(c), Some(g)) => {
                for k in &keys {
                    writeln!(
                        f,
                        "{k:>15}: ceiling {:.2} ({} own best over the space, index {}); mean gap {:.2}, {:.0}% of trials within 0.1",
                        c.accuracy.get(*k).copied().unwrap_or(f64::NAN),
                        self.proxy,
                        c.index,
                        g.gap_mean.get(*k).copied().unwrap_or(f64::NAN),
                        100.0 * g.within_0_1.get(*k).copied().unwrap_or(f64::NAN)
                    )?;
                }
                writeln!(f, "picked the ceiling network itself in {:.0}% of trials", 100.0 * g.found)?;
            }
            _ => {
                if let Some(n) = &self.ceiling_note {
                    writeln!(f, "note: no ceiling: {n}")?;
                }
            }
        }
        writeln!(f, "fitness: {}", self.fitness)?;
        writeln!(
            f,
            "search time {:.1} s wall in this run ({:.1} s scoring; cached scores are free); one trial = {:.1} s of one worker",
            self.wall_seconds, self.search_seconds, self.trial_worker_seconds
        )
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let (r, e) = (&self.random, &self.evolution);
        writeln!(
            f,
            "{} on {} (seed {}), proxy {}: {} trials x {} networks, random vs evolution ({})",
            e.space,
            e.dataset,
            e.seed,
            e.proxy,
            e.trials.len(),
            e.networks,
            e.evolution
        )?;
        writeln!(f, "{:>15} {:>16} {:>16} {:>11}", "accuracy of", "random", "evolution", "space best")?;
        for k in e.mean.keys() {
            writeln!(
                f,
                "{k:>15} {:>16} {:>16} {:>11.2}",
                pm(&r.mean, &r.std, k),
                pm(&e.mean, &e.std, k),
                e.best_in_space[k]
            )?;
        }
        if let (Some(c), Some(rg), Some(eg)) = (&e.ceiling, &self.random_vs_ceiling, &e.vs_ceiling) {
            for k in c.accuracy.keys() {
                writeln!(
                    f,
                    "{k:>15}: ceiling {:.2}; within 0.1 of it: random {:.0}%, evolution {:.0}% of trials",
                    c.accuracy[k],
                    100.0 * rg.within_0_1.get(k).copied().unwrap_or(f64::NAN),
                    100.0 * eg.within_0_1.get(k).copied().unwrap_or(f64::NAN)
                )?;
            }
        } else if let Some(n) = &e.ceiling_note {
            writeln!(f, "note: no ceiling: {n}")?;
        }
        writeln!(f, "fitness: {}", e.fitness)?;
        writeln!(
            f,
            "{} networks scored in this run (the others came from the folder); distinct networks: random {}, evolution {}; plot {}",
            self.scored_now, r.networks_scored, e.networks_scored, self.plot
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spaces::nb201::Nb201;

    #[test]
    fn the_aging_population_drops_its_oldest() {
        let mut p = Population::new(3);
        assert_eq!((p.push(10), p.push(11), p.push(12)), (None, None, None));
        assert_eq!(p.push(13), Some(10));
        assert_eq!(p.push(14), Some(11));
        assert_eq!(p.members().collect::<Vec<_>>(), vec![12, 13, 14]);
        // the fittest is not spared: age alone decides who leaves
        let fitness = vec![0.0; 12].into_iter().chain([9.0, 1.0, 1.0]).collect::<Vec<f64>>();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        assert_eq!(p.tournament(3, &fitness, &mut rng), Some(12));
        assert_eq!(p.push(15), Some(12));
        assert_eq!(p.len(), 3);
        // NaN ranks lowest; ties go to the older member
        let fitness = vec![f64::NAN; 13].into_iter().chain([2.0, 2.0, f64::NAN]).collect::<Vec<f64>>();
        assert_eq!(p.tournament(3, &fitness, &mut rng), Some(13));
    }

    /// A trial driven by a made-up fitness (the index itself), no scoring.
    fn history(seed: u64, cfg: &Config, budget: usize) -> Trajectory {
        let mut t = Trajectory::new(0, "test", seed, cfg, budget);
        while !t.done() {
            let p = t.propose(&Nb201, cfg).unwrap();
            t.accept(&p, &|idx: &[usize]| idx.iter().map(|i| *i as f64).collect()).unwrap();
        }
        t
    }

    #[test]
    fn a_trial_spends_its_budget_on_distinct_children_of_its_population_and_reproduces() {
        let cfg = Config { population: 10, tournament: 3, children: 4, crossover: 0.0 };
        let t = history(7, &cfg, 57);
        assert_eq!(t.history.len(), 57);
        let mut seen = HashSet::new();
        assert!(t.history.iter().all(|h| seen.insert(h.index)), "a network was scored twice");
        assert!(t.history[..10].iter().all(|h| h.parent.is_none()));
        for (k, h) in t.history.iter().enumerate().skip(10) {
            let parent = h.parent.expect("a child has a parent");
            assert_eq!(h.mate, None, "no crossover at rate 0");
            // the parent was scored before, and the child is one mutation from it
            assert!(t.history[..k].iter().any(|e| e.index == parent));
            let (a, b) = (Nb201.arch(h.index).unwrap(), Nb201.arch(parent).unwrap());
            let diff = a.split('|').zip(b.split('|')).filter(|(x, y)| x != y).count();
            assert_eq!(diff, 1, "{a} vs {b}");
        }
        // the fitness climbs: the best of the last children beats the initial population's
        let init_best = t.history[..10].iter().map(|h| h.index).max().unwrap();
        assert!(t.history.iter().map(|h| h.index).max().unwrap() >= init_best);
        let again = history(7, &cfg, 57);
        assert_eq!(again.history, t.history);
        assert_ne!(history(8, &cfg, 57).history, t.history);
    }

    #[test]
    fn crossover_children_mix_two_scored_parents_then_mutate_once() {
        let cfg = Config { population: 10, tournament: 3, children: 4, crossover: 0.5 };
        let t = history(7, &cfg, 80);
        assert_eq!(t.history.len(), 80);
        let ops = |i: usize| -> Vec<String> {
            Nb201.arch(i).unwrap().split('|').filter(|s| !s.is_empty() && *s != "+").map(str::to_string).collect()
        };
        let mut crossed = 0;
        for (k, h) in t.history.iter().enumerate().skip(10) {
            let before: Vec<usize> = t.history[..k].iter().map(|e| e.index).collect();
            assert!(before.contains(&h.parent.unwrap()));
            let Some(mate) = h.mate else { continue };
            crossed += 1;
            assert!(before.contains(&mate) && mate != h.parent.unwrap());
            // every edge but (at most) the mutated one comes from a parent
            let (c, a, b) = (ops(h.index), ops(h.parent.unwrap()), ops(mate));
            let foreign = (0..6).filter(|e| c[*e] != a[*e] && c[*e] != b[*e]).count();
            assert!(foreign <= 1, "{c:?} from {a:?} x {b:?}");
        }
        assert_eq!(crossed, t.crossovers);
        assert!((10..=60).contains(&crossed), "{crossed} of 70 children crossed at rate 0.5");
        assert_eq!(history(7, &cfg, 80).history, t.history);
        // rate 0 draws no coin: the history is the one without crossover
        let plain = Config { crossover: 0.0, ..cfg };
        assert_ne!(history(7, &plain, 80).history, t.history);
        assert!(Config { crossover: 1.5, ..cfg }.check().unwrap_err().to_string().contains("--crossover is a rate"));
    }

    struct NoMutation;
    impl Space for NoMutation {
        fn name(&self) -> &str {
            "fixed"
        }
        fn len(&self) -> usize {
            2
        }
        fn arch(&self, index: usize) -> Result<String> {
            Ok(index.to_string())
        }
        fn index_of(&self, arch: &str) -> Result<usize> {
            Ok(arch.parse()?)
        }
        fn build(&self, _arch: &str, _d: crate::dataset::Dataset) -> Result<Box<dyn crate::nets::Net>> {
            bail!("not built")
        }
        fn datasets(&self) -> &'static [crate::dataset::Dataset] {
            &[]
        }
    }

    #[test]
    fn a_crossover_rate_on_a_space_without_one_is_refused() {
        let cfg = Config { crossover: 0.3, ..Config::default() };
        let e = check_crossover(&crate::spaces::transnas::TransNas { micro: false }, &cfg).unwrap_err().to_string();
        assert_eq!(
            e,
            "space transnas-macro has no crossover (its encoding is not a fixed list of genes): leave --crossover at 0"
        );
        assert!(check_crossover(&crate::spaces::transnas::TransNas { micro: false }, &Config::default()).is_ok());
        assert!(check_crossover(&Nb201, &cfg).is_ok());
    }

    #[test]
    fn a_space_without_a_mutation_is_refused_in_one_line() {
        let e = check_space(&NoMutation).unwrap_err().to_string();
        assert_eq!(e, "space fixed has no mutation: --strategy evolution cannot search it (use --strategy random)");
        assert!(check_space(&Nb201).is_ok());
    }

    #[test]
    fn settings_are_checked_and_curve_points_end_at_the_budget() {
        assert!(Config::default().check().is_ok());
        let e = Config { population: 4, tournament: 5, children: 1, crossover: 0.0 }.check().unwrap_err().to_string();
        assert!(e.contains("--tournament must be between 1 and --population (4)"), "{e}");
        assert_eq!(curve_points(5), vec![1, 2, 3, 4, 5]);
        let p = curve_points(1000);
        assert_eq!((p.len(), p[0], *p.last().unwrap()), (100, 10, 1000));
        assert_eq!(*curve_points(333).last().unwrap(), 333);
    }
}
