//! `search --strategy`: which searches a run makes, and the report and plot
//! of a guided one (evolution alone, or random and evolution side by side
//! on the same seeds and budget).

use crate::benchmarks::GroundTruth;
use crate::evolution::{self, Comparison, Config, EvolutionReport};
use crate::run::{ScoreCache, Setting, Workers};
use anyhow::{bail, Result};
use serde::Serialize;
use std::fmt;
use std::path::Path;

/// The strategies `--strategy` takes.
pub const STRATEGIES: [&str; 2] = ["random", "evolution"];

/// Why `--shard` and evolution do not go together.
pub const NO_SHARD: &str = "--shard splits a search's networks before scoring, but evolution chooses each step's networks from the scores so far: run --strategy evolution unsharded (each step scores every trial's children at once, in parallel); --shard shards --strategy random";

/// Parses `--strategy random|evolution|random,evolution`: (random, evolution).
pub fn strategies(spec: &str) -> Result<(bool, bool)> {
    let (mut random, mut evolution) = (false, false);
    for part in spec.split(',').map(str::trim) {
        match part {
            "random" => random = true,
            "evolution" => evolution = true,
            other => bail!(
                "unknown strategy '{}' (valid: {}, or random,evolution for both side by side)",
                crate::shown::shorten(other),
                STRATEGIES.join(", ")
            ),
        }
    }
    Ok((random, evolution))
}

/// What `search.json` holds for a guided search.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum GuidedReport {
    /// `--strategy evolution`.
    Evolution(Box<EvolutionReport>),
    /// `--strategy random,evolution`.
    Comparison(Box<Comparison>),
}

impl fmt::Display for GuidedReport {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            GuidedReport::Evolution(e) => write!(f, "{e}"),
            GuidedReport::Comparison(c) => write!(f, "{c}"),
        }
    }
}

/// Runs evolution (and random first when `random`) with a budget of
/// `networks` (capped at the space's size) and writes `dir/search.png`
/// (when `truth` has accuracies).
#[allow(clippy::too_many_arguments)]
pub fn run(
    s: &Setting,
    truth: &dyn GroundTruth,
    trials: usize,
    networks: usize,
    random: bool,
    cfg: &Config,
    workers: Workers,
    cache: &mut ScoreCache,
    dir: &Path,
    quiet: bool,
) -> Result<GuidedReport> {
    let budget = networks.min(s.space.len());
    let complete = |cache: &ScoreCache| {
        (0..s.space.len())
            .filter(|i| {
                cache
                    .get(*i)
                    .is_some_and(|r| s.selection.proxies.iter().all(|p| r.values.contains_key(&p.columns().value)))
            })
            .count()
    };
    let before = complete(cache);
    let rand_rep =
        if random { Some(crate::search::run(s, truth, trials, budget, workers, cache, quiet)?) } else { None };
    let evo = evolution::run(s, truth, trials, networks, cfg, workers, cache, quiet)?;
    // no accuracies (a user's space searched without them): nothing to plot
    let plotted = !truth.datasets().is_empty();
    let plot = dir.join("search.png");
    let title = format!("{} {}, {}: {} trials", evo.space, evo.dataset, evo.proxy, evo.trials.len());
    let ceiling = evo.ceiling.as_ref().and_then(|c| c.accuracy.get(&evo.dataset).copied());
    let label = truth.label(s.dataset);
    match rand_rep {
        None => {
            if plotted {
                crate::search_plot::plot(&plot, &[("evolution", &evo.curve)], ceiling, &title, &label)?;
            }
            Ok(GuidedReport::Evolution(Box::new(evo)))
        }
        Some(r) => {
            let (random_curve, random_vs_ceiling) = evolution::random_extras(s, truth, cache, &r, evo.ceiling.as_ref());
            if plotted {
                crate::search_plot::plot(
                    &plot,
                    &[("random", &random_curve), ("evolution", &evo.curve)],
                    ceiling,
                    &title,
                    &label,
                )?;
            }
            Ok(GuidedReport::Comparison(Box::new(Comparison {
                strategies: STRATEGIES.iter().map(|s| s.to_string()).collect(),
                scored_now: complete(cache) - before,
                random: r,
                random_curve,
                random_vs_ceiling,
                evolution: evo,
                plot: if plotted { plot.display().to_string() } else { String::new() },
            })))
        }
    }
}
