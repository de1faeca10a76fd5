//! The NAFBee protocol: score the 11 activation variants of one network with
//! gammas from HDA (as the reference does for NAFBee), over several random
//! initialisations, and compare the ranking with NAFBee's accuracies.

use crate::bench::peak_rss_mb;
use crate::benchmarks::{nafbee, GroundTruth};
use crate::dataset::Dataset;
use crate::nets::activation::Activation;
use crate::nets::bert::{Bert, BertConfig};
use crate::nets::seeded;
use crate::nets::Net;
use crate::proxies::hda::{candidates, min_positive};
use crate::proxies::rbflex::{score, Gammas};
use crate::run::init_seed;
use crate::spaces::{build_seeded, Space};
use crate::stats::{correlate, mean_std};
use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;
use tch::Tensor;

/// Which NAFBee network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Model {
    /// VGG-19 on CIFAR-10.
    Vgg19,
    /// BERT-base on SST-2.
    Bert,
}

impl Model {
    /// The matching space (`nafbee-vgg19` / `nafbee-bert`).
    pub fn space(self) -> &'static dyn Space {
        match self {
            Model::Vgg19 => &crate::spaces::nafbee::NAFBEE_VGG19,
            Model::Bert => &crate::spaces::nafbee::NAFBEE_BERT,
        }
    }

    /// Its ground truth.
    pub fn truth(self) -> &'static nafbee::Nafbee {
        match self {
            Model::Vgg19 => &nafbee::VGG19,
            Model::Bert => &nafbee::BERT,
        }
    }

    /// Its dataset.
    pub fn dataset(self) -> Dataset {
        match self {
            Model::Vgg19 => Dataset::Cifar10,
            Model::Bert => Dataset::Sst2,
        }
    }
}

/// One activation's result.
#[derive(Debug, Clone, Serialize)]
pub struct Variant {
    /// Activation name.
    pub activation: String,
    /// Score of each repeat.
    pub scores: Vec<f64>,
    /// Mean score over repeats.
    pub mean: f64,
    /// Population std over repeats.
    pub std: f64,
    /// Rank of the mean score (1 = best).
    pub rank: usize,
    /// NAFBee accuracy (%).
    pub accuracy: f64,
    /// Rank of the accuracy (1 = best; ties share the best rank).
    pub benchmark_rank: usize,
    /// Mean wall seconds to build and score one network (both passes).
    pub seconds: f64,
}

/// A NAFBee run's result.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `vgg19` or `bert`.
    pub model: String,
    /// Repeats (random initialisations and input batches).
    pub repeats: usize,
    /// Gammas used in each repeat (HDA over the 11 variants, unless fixed).
    pub gammas: Vec<Gammas>,
    /// The 11 variants in NAFBee's order.
    pub variants: Vec<Variant>,
    /// Kendall's tau-b of mean score vs accuracy.
    pub kendall: f64,
    /// Spearman's rho of mean score vs accuracy.
    pub spearman: f64,
    /// Whether the top-scored activation is (one of) the benchmark's best.
    pub top_is_best: bool,
    /// Peak resident memory (MB).
    pub peak_rss_mb: f64,
    /// How the networks were initialised.
    pub init: String,
}

/// Run options.
pub struct Options {
    /// The network.
    pub model: Model,
    /// Random initialisations.
    pub repeats: usize,
    /// Run seed; repeat r uses seed + r.
    pub seed: u64,
    /// Makes repeat r's input batch from its seed.
    pub input: Box<dyn Fn(u64) -> Result<Tensor> + Sync>,
    /// Fixed gammas instead of HDA.
    pub gammas: Option<Gammas>,
    /// BERT checkpoint (Hugging Face names) to start from.
    pub checkpoint: Option<PathBuf>,
    /// Worker threads.
    pub jobs: usize,
    /// Where the networks run.
    pub device: tch::Device,
}

fn build(o: &Options, act: usize, seed: i64) -> Result<Box<dyn Net>> {
    let net = build_cpu(o, act, seed)?;
    net.params().to_device(o.device);
    Ok(net)
}

fn build_cpu(o: &Options, act: usize, seed: i64) -> Result<Box<dyn Net>> {
    let space = o.model.space();
    let arch = space.arch(act)?;
    match (&o.checkpoint, o.model) {
        (Some(ckpt), Model::Bert) => seeded(seed, || {
            let net = Bert::new(BertConfig::BASE, Activation::parse(&arch)?);
            net.params().load_safetensors(ckpt)?;
            net.reinit_linear();
            Ok(Box::new(net) as Box<dyn Net>)
        }),
        _ => build_seeded(space, &arch, o.model.dataset(), seed),
    }
}

/// Builds every variant of repeat `seed` on `pool` (variant `a` from
/// `init_seed(seed, a)`) and applies `f` to it; returns each result with the
/// seconds building and `f` took.
fn each_variant<T: Send>(
    o: &Options,
    pool: &rayon::ThreadPool,
    seed: u64,
    f: impl Fn(&dyn Net) -> Result<T> + Sync,
) -> Result<Vec<(T, f64)>> {
    pool.install(|| {
        (0..Activation::ALL.len())
            .into_par_iter()
            .map(|a| {
                let t0 = Instant::now();
                let net = build(o, a, init_seed(seed, a))?;
                Ok((f(net.as_ref())?, t0.elapsed().as_secs_f64()))
            })
            .collect()
    })
}

/// Competition ranks (1 = largest; ties share the best rank).
fn ranks_desc(v: &[f64]) -> Vec<usize> {
    v.iter().map(|x| 1 + v.iter().filter(|y| y.total_cmp(x) == std::cmp::Ordering::Greater).count()).collect()
}

/// Runs the protocol.
pub fn run(o: &Options) -> Result<Report> {
    let n = Activation::ALL.len();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(o.jobs.max(1)).build()?;
    let mut scores = vec![Vec::new(); n];
    let mut secs = vec![0.0; n];
    let mut gammas = Vec::new();
    for r in 0..o.repeats {
        let seed = o.seed + r as u64;
        let x = (o.input)(seed)?;
        let (xs, shape) = (Vec::<f32>::try_from(x.reshape([-1]))?, x.size());
        let make_x = || Tensor::from_slice(&xs).reshape(shape.as_slice()).to_device(o.device);
        // Pass 1: HDA over the 11 variants (skipped with fixed gammas).
        let g = match o.gammas {
            Some(g) => g,
            None => {
                let mut ks = Vec::new();
                let mut qs = Vec::new();
                for (a, (c, t)) in
                    each_variant(o, &pool, seed, |net| candidates(net, &make_x()))?.into_iter().enumerate()
                {
                    ks.extend(c.cand_k);
                    qs.extend(c.cand_q);
                    secs[a] += t;
                }
                Gammas {
                    gamma_k: min_positive(&ks).context("HDA found no positive gamma_k candidate")?,
                    gamma_q: min_positive(&qs).context("HDA found no positive gamma_q candidate")?,
                }
            }
        };
        gammas.push(g);
        // Pass 2: score each variant (the same networks, rebuilt from their seeds).
        let results = each_variant(o, &pool, seed, |net| Ok(score(net, &make_x(), g)?.score))?;
        for (a, (s, t)) in results.into_iter().enumerate() {
            scores[a].push(s);
            secs[a] += t;
        }
    }
    let truth = o.model.truth();
    let acc: Vec<f64> = (0..n)
        .map(|a| truth.accuracy(a, o.model.dataset()).context("NAFBee table incomplete"))
        .collect::<Result<_>>()?;
    let means: Vec<f64> = scores.iter().map(|s| mean_std(s).0).collect();
    let (rank, brank) = (ranks_desc(&means), ranks_desc(&acc));
    let variants = (0..n)
        .map(|a| {
            let (mean, std) = mean_std(&scores[a]);
            Variant {
                activation: Activation::ALL[a].name().into(),
                scores: scores[a].clone(),
                mean,
                std,
                rank: rank[a],
                accuracy: acc[a],
                benchmark_rank: brank[a],
                seconds: secs[a] / o.repeats as f64,
            }
        })
        .collect::<Vec<_>>();
    let c = correlate(&means, &acc);
    let top_is_best = variants.iter().filter(|v| v.rank == 1).all(|v| v.benchmark_rank == 1);
    let init = match (o.model, &o.checkpoint) {
        (Model::Vgg19, _) => "PyTorch default initialisation".to_string(),
        (Model::Bert, Some(p)) => format!("checkpoint {} with every Linear weight re-drawn xavier-uniform (as the reference)", p.display()),
        (Model::Bert, None) => "no pretrained checkpoint given: embeddings normal(0, 0.02), LayerNorm 1/0, Linear weights xavier-uniform, biases 0 (the reference starts from a pretrained SST-2 BERT; pass --checkpoint to do the same)".to_string(),
    };
    Ok(Report {
        model: format!("{:?}", o.model).to_lowercase(),
        repeats: o.repeats,
        gammas,
        variants,
        kendall: c.kendall,
        spearman: c.spearman,
        top_is_best,
        peak_rss_mb: peak_rss_mb(),
        init,
    })
}

/// Writes the per-variant table as CSV (`nafbee.csv`).
pub fn write_csv(path: &std::path::Path, rep: &Report) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["activation", "mean_score", "std_score", "rank", "accuracy", "benchmark_rank", "seconds"])?;
    for v in &rep.variants {
        w.write_record([
            v.activation.clone(),
            v.mean.to_string(),
            v.std.to_string(),
            v.rank.to_string(),
            v.accuracy.to_string(),
            v.benchmark_rank.to_string(),
            format!("{:.3}", v.seconds),
        ])?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("cannot write {}: {}", path.display(), e.error()))?;
    crate::files::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn competition_ranks() {
        assert_eq!(ranks_desc(&[3.0, 9.0, 3.0, 1.0]), vec![2, 1, 2, 4]);
    }
}
