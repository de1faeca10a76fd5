//! The HDA protocol (the paper's hyperparameter detection): draw networks as
//! search trial 0 draws them, build each with the run's init seed, and take
//! the smallest positive kernel-width candidate of all (the candidates'
//! maths is in [`crate::proxies::hda`]).

use crate::dataset::Dataset;
use crate::nets::{BnStats, Init};
use crate::proxies::hda::{candidates, min_positive, Candidates};
use crate::spaces::Space;
use anyhow::{bail, Context, Result};
use tch::Tensor;

/// What HDA detected over a sample of networks.
#[derive(Debug, Clone)]
pub struct Detected {
    /// The smallest positive activation-side candidate.
    pub gamma_k: f64,
    /// The smallest positive final-layer candidate.
    pub gamma_q: f64,
    /// Each network's (index, arch, candidates).
    pub networks: Vec<(usize, String, Candidates)>,
}

/// The HDA protocol: `networks` architectures of `space` drawn as search
/// trial 0 draws them, each built with the run's init seed, and the smallest
/// positive candidate of all.
pub fn detect(
    space: &dyn Space,
    dataset: Dataset,
    seed: u64,
    networks: usize,
    x: &Tensor,
    device: tch::Device,
) -> Result<Detected> {
    if networks == 0 || networks > space.len() {
        bail!("--networks must be between 1 and {}, got {networks}", space.len());
    }
    let mut nets = Vec::new();
    let x = x.to_device(device); // once for every network
    for i in crate::search::trial_sample(space.len(), networks, seed, 0) {
        let arch = space.arch(i)?;
        let seed = crate::run::init_seed(seed, i);
        let net = crate::run::build_init_on(space, &arch, dataset, seed, Init::Default, device)?;
        if nets.is_empty() {
            crate::inputs::check_runs(net.as_ref(), &x, BnStats::Batch, "the input batch")?;
        }
        let cand = candidates(net.as_ref(), &x)?;
        nets.push((i, arch, cand));
    }
    let gamma_k = min_positive(nets.iter().flat_map(|n| &n.2.cand_k))
        .context("no positive gamma_k candidate: every pair of rows has equal means")?;
    let gamma_q = min_positive(nets.iter().flat_map(|n| &n.2.cand_q))
        .context("no positive gamma_q candidate: every pair of rows has equal means")?;
    Ok(Detected { gamma_k, gamma_q, networks: nets })
}
