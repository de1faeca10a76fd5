//! Training-free proxies. A proxy sees a network (built fresh on demand), the
//! inputs it asked for and what the network reports to a
//! [`crate::nets::Sink`]; never the design space, the run or the protocol.
//!
//! Adding a proxy = one file implementing [`Proxy`] plus one line in
//! [`REGISTRY`]. Proxies whose value depends on the other candidates (rank
//! aggregations such as AZ-NAS' `az` and the `ensemble`) are [`Aggregate`]s:
//! their members are scored per network and the aggregate is computed over
//! the run's candidate set.

pub mod az;
pub mod consensus;
pub mod grads;
pub mod hda;
pub mod jacobian;
pub mod kernel;
pub mod meco;
pub mod naswot;
pub mod near;
pub mod rbflex;
pub mod size;
pub mod swap;
#[cfg(test)]
pub(crate) mod test_nets;
pub mod vkdnw;
pub mod zen;
pub mod zico;

use crate::nets::{Init, Net};
use anyhow::{bail, Result};
use serde::Serialize;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// What a proxy needs from a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Needs {
    /// Images (or sentences) per batch; `None`: the run's `--batch`.
    pub batch: Option<usize>,
    /// The images' class labels (proxies with a classification loss).
    pub labels: bool,
    /// A classifier network: class logits, or the map its global pooling
    /// reads (refused on spaces whose networks have no classifier, such as
    /// TransNAS' backbone-with-head).
    pub classifier: bool,
}

/// What a proxy is handed for one architecture.
pub struct Probe<'a> {
    /// Builds the architecture's network, freshly initialised with the run's
    /// init seed for it then re-drawn by `Init`: every call with the same
    /// `Init` returns identical weights.
    pub build: &'a dyn Fn(Init) -> Result<Box<dyn Net>>,
    /// The input batch `[N, ...]` the proxy asked for.
    pub x: &'a Tensor,
    /// The images' labels `[N]` (int64) when the proxy asked for them.
    pub labels: Option<&'a Tensor>,
    /// Classes of the network's classifier (0: no classifier).
    pub classes: i64,
    /// The network's init seed (for the proxy's own random inputs).
    pub seed: i64,
    /// Values computed for this network by one proxy and read by another
    /// (AZ-NAS' four parts come from one pass).
    pub shared: &'a RefCell<BTreeMap<&'static str, Vec<f64>>>,
    /// The proxies still to be scored on this network after this one (a
    /// pass computes what [`Proxy::also_yields`] names only when asked).
    pub pending: &'a [&'static str],
}

impl Probe<'_> {
    /// Whether proxy `name` is still to be scored on this network.
    pub fn is_pending(&self, name: &str) -> bool {
        self.pending.contains(&name)
    }

    /// Records proxy `name`'s value, computed by another proxy's pass on
    /// this probe's batch (see [`Probe::yielded`]).
    pub fn yield_value(&self, name: &'static str, value: f64) {
        self.shared.borrow_mut().insert(name, vec![value, self.x.size()[0] as f64]);
    }

    /// Proxy `name`'s value when another proxy's pass computed it on a batch
    /// of the same size.
    pub fn yielded(&self, name: &str) -> Option<f64> {
        let n = self.x.size()[0] as f64;
        self.shared.borrow().get(name).filter(|v| v.len() == 2 && v[1] == n).map(|v| v[0])
    }
}

impl Probe<'_> {
    /// Standard-normal noise of `shape`, the same for every call on this
    /// network (drawn from torch's generator seeded by the network's seed).
    ///
    /// The salts XORed into the high bits here and in some proxies (noise,
    /// labels, NEAR's windows, SWAP's re-draws, AZ-NAS' stages) do not part
    /// their streams from the network's seed: libtorch keeps a seed's low 32
    /// bits (see [`crate::nets::seed::salted`]). Those draws are kept as they
    /// are so that published values stay reproducible; a stream that must
    /// differ from another one uses `salted`.
    pub fn noise(&self, shape: &[i64]) -> Tensor {
        crate::nets::seeded(self.seed ^ 0x5eed_0000_0000, || Tensor::randn(shape, (Kind::Float, Device::Cpu)))
            .to_device(self.x.device())
    }

    /// A second noise tensor of `shape`, independent of [`Probe::noise`],
    /// fixed per network. (Until 2026-12-06 it was seeded `seed ^ 0x2eed << 32`,
    /// which libtorch reads as `seed`: it equalled `noise`.)
    pub fn noise2(&self, shape: &[i64]) -> Tensor {
        crate::nets::seeded(crate::nets::seed::salted(self.seed, 0x2eed), || {
            Tensor::randn(shape, (Kind::Float, Device::Cpu))
        })
        .to_device(self.x.device())
    }

    /// Random labels in `0..classes` for `n` inputs, fixed per network.
    pub fn random_labels(&self, n: i64) -> Tensor {
        crate::nets::seeded(self.seed ^ 0x1abe_0000_0000, || {
            Tensor::randint(self.classes.max(1), [n], (Kind::Int64, Device::Cpu))
        })
        .to_device(self.x.device())
    }

    /// The labels the proxy asked for.
    pub fn labels(&self) -> Result<&Tensor> {
        self.labels.ok_or_else(|| anyhow::anyhow!("this proxy needs labelled images"))
    }
}

/// Gradients of the sum of `outputs` w.r.t. each of `inputs`; `None` for an
/// input the outputs do not depend on. Outputs with no autograd graph (a
/// network whose output ignores its input and parameters, e.g. an all-`none`
/// cell) give `None` for every input: libtorch's engine would crash on them
/// (`tch::Tensor::run_backward` does not check), so they never reach it.
pub fn backward(outputs: &[Tensor], inputs: &[Tensor], create_graph: bool) -> Result<Vec<Option<Tensor>>> {
    let live: Vec<&Tensor> = outputs.iter().filter(|t| t.requires_grad()).collect();
    let wanted: Vec<usize> = (0..inputs.len()).filter(|i| inputs[*i].requires_grad()).collect();
    let mut out: Vec<Option<Tensor>> = inputs.iter().map(|_| None).collect();
    if live.is_empty() || wanted.is_empty() {
        return Ok(out);
    }
    let picked: Vec<&Tensor> = wanted.iter().map(|i| &inputs[*i]).collect();
    let grads = Tensor::f_run_backward(&live, &picked, create_graph, create_graph)?;
    for (i, g) in wanted.into_iter().zip(grads) {
        out[i] = Some(g).filter(Tensor::defined);
    }
    Ok(out)
}

/// A proxy's value for one network, and its named parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    /// Higher is better; `-inf` ranks last (a degenerate network).
    pub value: f64,
    /// Extra values, one per [`Columns::parts`].
    pub parts: Vec<f64>,
    /// Why the value is degenerate, when it is (shown by `score`).
    pub note: Option<String>,
}

impl Measure {
    /// A value with no parts.
    pub fn value(value: f64) -> Self {
        Self { value, parts: Vec::new(), note: None }
    }
}

/// The `scores.csv` columns a proxy writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    /// The value.
    pub value: String,
    /// Its parts.
    pub parts: Vec<String>,
    /// Wall seconds this proxy spent on the network.
    pub seconds: String,
}

impl Columns {
    /// Every column: the value, its parts, the seconds.
    pub fn names(self) -> impl Iterator<Item = String> {
        std::iter::once(self.value).chain(self.parts).chain(std::iter::once(self.seconds))
    }
}

/// A training-free proxy scored one network at a time.
pub trait Proxy: Send + Sync {
    /// Name on the command line (`--proxy`).
    fn name(&self) -> &'static str;
    /// What it needs.
    fn needs(&self) -> Needs;
    /// Working memory it holds per value of its input batch (N x C x H x
    /// W), in bytes: what the memory gate reserves for it beside the
    /// space's own estimate. Measured on NB201 at the protocol's batch
    /// (`bench --jobs 1 --proxy NAME`, peak RSS minus the process's base),
    /// rounded up; 0 for proxies whose memory the space's estimate covers.
    fn memory_per_input_value(&self) -> u64 {
        0
    }
    /// Whether it reads its input batch's values; `false`: only the batch's
    /// shape (it makes its own inputs: noise, ones), so a run draws no
    /// image for it and its `--proxy-batch` may exceed the image pool.
    fn reads_inputs(&self) -> bool {
        true
    }
    /// Whether it reads every Conv2d, BatchNorm and Linear call of the
    /// forward pass (`nets::layers::sites`), which only networks whose
    /// space [reports them](crate::spaces::Space::reports_layer_calls) give.
    fn reads_layer_calls(&self) -> bool {
        false
    }
    /// Its settings, recorded in `run.json` (a rerun with other settings is
    /// refused instead of mixing values).
    fn settings(&self) -> serde_json::Value {
        serde_json::json!({})
    }
    /// Its columns in `scores.csv`: by default `<name>` and `<name>_seconds`.
    fn columns(&self) -> Columns {
        Columns { value: self.name().into(), parts: Vec::new(), seconds: format!("{}_seconds", self.name()) }
    }
    /// Proxies whose values this proxy's pass also computes when they are
    /// asked for (their protocols agree: the same init, inputs and
    /// BatchNorm mode); it is scored before them, which then reuse it.
    fn also_yields(&self) -> &'static [&'static str] {
        &[]
    }
    /// Scores one network.
    fn score(&self, p: &Probe) -> Result<Measure>;
}

/// A proxy computed from other proxies' values over the candidate set.
#[derive(Debug)]
pub struct Aggregate {
    /// Name on the command line.
    pub name: &'static str,
    /// The proxies it combines.
    pub members: &'static [&'static str],
    /// What it is (shown in reports).
    pub describe: &'static str,
    /// How the members' values are combined.
    pub rule: Rule,
}

/// How an [`Aggregate`] combines its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The sum over members of `ln(rank / n)`, rank 1 = lowest value, ties
    /// sharing their average rank (AZ-NAS' rule). A candidate with a
    /// non-finite member value gets that member's lowest rank.
    RankSum,
    /// The same sum, each member weighted by its agreement with an anchor
    /// over these candidates ([`consensus`]).
    Consensus,
}

impl Aggregate {
    /// The aggregate's value for every candidate, from its members' values
    /// (`members[m]` = member m's name and its value on each candidate).
    pub fn combine(&self, members: &[(&'static str, Vec<f64>)]) -> Vec<f64> {
        match self.rule {
            Rule::RankSum => rank_sum(&members.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>()),
            Rule::Consensus => consensus::combine(members),
        }
    }

    /// What the aggregate chose over these candidates, where it chooses
    /// (one line for the reports); `None` for a fixed rule.
    pub fn explain(&self, members: &[(&'static str, Vec<f64>)]) -> Option<String> {
        match self.rule {
            Rule::RankSum => None,
            Rule::Consensus => Some(consensus::describe(members)),
        }
    }
}

/// A proxy value with NaN (undefined for this network) as `-inf`, the
/// lowest: how every proxy reports a degenerate network.
pub fn nan_as_lowest(v: f64) -> f64 {
    if v.is_nan() {
        f64::NEG_INFINITY
    } else {
        v
    }
}

/// Sum over rows of `ln(rank / n)` (see [`Aggregate::combine`]).
pub fn rank_sum(members: &[Vec<f64>]) -> Vec<f64> {
    let n = members.first().map_or(0, Vec::len);
    let mut out = vec![0.0; n];
    for m in members {
        // NaN and -inf both rank lowest
        let clean: Vec<f64> = m.iter().copied().map(nan_as_lowest).collect();
        let ranks = crate::stats::average_ranks(&clean);
        for (o, r) in out.iter_mut().zip(ranks) {
            *o += (r / n as f64).ln();
        }
    }
    out
}

/// Builds a proxy from the command line's options.
pub type Maker = fn(&Options) -> Arc<dyn Proxy>;

/// Every proxy scored per network, in the order their columns appear, by its
/// maker (the name is the proxy's own, written once in its file): adding a
/// proxy = its file plus one line here.
pub const REGISTRY: &[Maker] = &[
    |o| Arc::new(rbflex::Rbflex { gammas: o.gammas }),
    |_| Arc::new(naswot::Naswot),
    |_| Arc::new(grads::Synflow),
    |_| Arc::new(grads::Snip),
    |_| Arc::new(grads::Grasp),
    |_| Arc::new(grads::GradNorm),
    |_| Arc::new(grads::Fisher),
    |_| Arc::new(jacobian::JacobCov),
    |_| Arc::new(size::L2Norm),
    |_| Arc::new(grads::Plain),
    |_| Arc::new(jacobian::EpeNas),
    |_| Arc::new(zico::Zico),
    |_| Arc::new(zen::Zen),
    |_| Arc::new(size::ParamCount),
    |_| Arc::new(size::Flops),
    |_| Arc::new(az::AzPart(az::Part::Expressivity)),
    |_| Arc::new(az::AzPart(az::Part::Progressivity)),
    |_| Arc::new(az::AzPart(az::Part::Trainability)),
    |_| Arc::new(az::AzPart(az::Part::Complexity)),
    |_| Arc::new(vkdnw::Vkdnw),
    |_| Arc::new(vkdnw::VkdnwSingle),
    |_| Arc::new(near::Near),
    |_| Arc::new(meco::Meco),
    |_| Arc::new(swap::Swap),
];

/// The registered proxies' names, in column order.
pub fn registered() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|make| make(&Options::default()).name())
}

/// The rank aggregations.
pub const AGGREGATES: &[Aggregate] = &[
    Aggregate {
        name: "az",
        members: &["az_expressivity", "az_progressivity", "az_trainability", "az_complexity"],
        describe: "AZ-NAS: sum of ln(rank/n) of its four proxies over the candidates",
        rule: Rule::RankSum,
    },
    Aggregate {
        name: "ensemble",
        members: ENSEMBLE,
        describe: "rbflex's ensemble: sum of ln(rank/n) of its members over the candidates",
        rule: Rule::RankSum,
    },
    Aggregate {
        name: "consensus",
        members: consensus::MEMBERS,
        describe: "label-free: sum of ln(rank/n) of rbflex and of each member weighted by its agreement with rbflex over the candidates",
        rule: Rule::Consensus,
    },
    Aggregate {
        name: "vkdnw_agg",
        members: VKDNW_AGG,
        describe: "VKDNW_agg (Tybl & Neumann, CVPR 2025): sum of ln(rank/n) of vkdnw_single, AZ-NAS' expressivity, trainability and FLOPs, and jacob_cov",
        rule: Rule::RankSum,
    },
];

/// The ensemble's members (chosen once; see the README).
pub const ENSEMBLE: &[&str] =
    &["rbflex", "az_expressivity", "az_progressivity", "az_trainability", "az_complexity", "synflow"];

/// VKDNW_agg's members: the authors' `vkdnw_comb_rank`
/// (ondratybl/VKDNW `NB201/tss_utils.py`, `get_scores`), taken to be the
/// aggregate their paper reports on NAS-Bench-201 (Kendall 0.750 / 0.753 /
/// 0.743; the repository does not say which of its four it is).
pub const VKDNW_AGG: &[&str] = &["vkdnw_single", "az_expressivity", "az_trainability", "az_complexity", "jacob_cov"];

/// Options that proxies take from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Options {
    /// RBFleX's kernel widths.
    pub gammas: rbflex::Gammas,
    /// Inputs per batch for every proxy that has its own protocol batch
    /// (not RBFleX, which takes `--batch`), instead of that batch.
    pub batch: Option<usize>,
    /// Whether the proxies with a batch of their own run their networks in
    /// channels-last memory layout (`--channels-last`; see [`Selection::channels_last`]).
    pub channels_last: bool,
}

/// Builds the proxy called `name`.
pub fn by_name(name: &str, opts: &Options) -> Result<Arc<dyn Proxy>> {
    match REGISTRY.iter().map(|make| make(opts)).find(|p| p.name() == name) {
        Some(p) => Ok(p),
        None => bail!("unknown proxy '{name}' (known: {})", known().join(", ")),
    }
}

/// Every name `--proxy` takes.
pub fn known() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = registered().collect();
    v.extend(AGGREGATES.iter().map(|a| a.name));
    v.push("all");
    v
}

/// The proxies a run asks for: those scored per network, and the rank
/// aggregations computed from them over the candidate set.
#[derive(Clone)]
pub struct Selection {
    /// Proxies scored per network, each once, in registry order.
    pub proxies: Vec<Arc<dyn Proxy>>,
    /// Aggregations reported beside them.
    pub aggregates: Vec<&'static Aggregate>,
    /// What was asked for, in order (proxy and aggregate names).
    pub asked: Vec<&'static str>,
    /// The protocol batch override (`--proxy-batch`).
    pub batch: Option<usize>,
    /// Whether the proxies with a batch of their own (all but RBFleX) run
    /// their networks on channels-last inputs (`--channels-last`):
    /// libtorch's CPU convolutions run faster on them (snip, grad_norm, az,
    /// zico: 1.3-1.5x per network; GraSP not), but its convolutions sum in another order than on NCHW, so
    /// values differ from the reference's in float32 rounding (ranks hardly:
    /// see the README). Off by default, for bit-parity.
    pub channels_last: bool,
    /// Names that only `all` brought (not named, nor a named aggregation's
    /// member): a run skips those it cannot serve, with a note, where a
    /// named one is an error.
    pub implied: Vec<&'static str>,
}

impl Selection {
    /// Parses `--proxy NAME[,NAME...]|all`: `all` = every proxy and
    /// aggregation; an aggregation brings its members.
    pub fn parse(spec: &str, opts: &Options) -> Result<Self> {
        let mut asked: Vec<&'static str> = Vec::new();
        let mut named: Vec<&'static str> = Vec::new();
        for name in spec.split(',').map(str::trim) {
            if name == "all" {
                asked.extend(registered());
                asked.extend(AGGREGATES.iter().map(|a| a.name));
            } else if let Some(n) = registered().find(|r| *r == name) {
                asked.push(n);
                named.push(n);
            } else if let Some(a) = AGGREGATES.iter().find(|a| a.name == name) {
                asked.push(a.name);
                named.push(a.name);
                named.extend(a.members.iter().copied());
            } else {
                bail!("unknown proxy '{name}' (known: {})", known().join(", "));
            }
        }
        let mut dedup = Vec::new();
        for a in asked {
            if !dedup.contains(&a) {
                dedup.push(a);
            }
        }
        let aggregates: Vec<&'static Aggregate> = AGGREGATES.iter().filter(|a| dedup.contains(&a.name)).collect();
        let mut needed: Vec<&str> = dedup.clone();
        needed.extend(aggregates.iter().flat_map(|a| a.members.iter().copied()));
        let proxies =
            registered().filter(|r| needed.contains(r)).map(|r| by_name(r, opts)).collect::<Result<Vec<_>>>()?;
        let implied = needed.iter().copied().filter(|n| !named.contains(n)).collect();
        if opts.channels_last && !proxies.iter().any(|p| p.needs().batch.is_some()) {
            bail!("channels-last is for proxies with a batch of their own; {spec} keeps the reference's layout");
        }
        Ok(Self { proxies, aggregates, asked: dedup, batch: opts.batch, channels_last: opts.channels_last, implied })
    }

    /// The selection without the proxies `names` and the aggregations
    /// over any of them.
    pub fn without(mut self, names: &[&str]) -> Self {
        self.aggregates.retain(|a| !a.members.iter().any(|m| names.contains(m)));
        let kept: Vec<&'static str> = self.aggregates.iter().map(|a| a.name).collect();
        self.proxies.retain(|p| !names.contains(&p.name()));
        self.asked.retain(|n| !names.contains(n) && (registered().any(|r| r == *n) || kept.contains(n)));
        self
    }

    /// The inputs per batch proxy `p` is fed in a run whose `--batch` is `run_batch`.
    pub fn batch_of(&self, p: &dyn Proxy, run_batch: usize) -> usize {
        match p.needs().batch {
            None => run_batch,
            Some(n) => self.batch.unwrap_or(n),
        }
    }

    /// Whether proxy `p` runs its networks on channels-last inputs: asked
    /// for, and `p` has a batch of its own (RBFleX never does).
    pub fn channels_last_for(&self, p: &dyn Proxy) -> bool {
        self.channels_last && p.needs().batch.is_some()
    }

    /// The proxy scored per network called `name`.
    pub fn proxy(&self, name: &str) -> Option<&Arc<dyn Proxy>> {
        self.proxies.iter().find(|p| p.name() == name)
    }

    /// The value of every asked-for proxy and aggregation on each candidate,
    /// from the per-network values `value(proxy, i)`; aggregations are
    /// ranked over these candidates only.
    pub fn values(&self, n: usize, value: impl Fn(&dyn Proxy, usize) -> f64) -> Vec<(&'static str, Vec<f64>)> {
        let per = self.per_network(n, value);
        self.asked
            .iter()
            .filter_map(|name| {
                if let Some((_, v)) = per.iter().find(|(p, _)| p == name) {
                    return Some((*name, v.clone()));
                }
                let agg = self.aggregates.iter().find(|a| a.name == *name)?;
                Some((*name, agg.combine(&members_of(agg, &per))))
            })
            .collect()
    }

    /// One line per asked-for aggregation that chooses its members per run
    /// (`consensus`), saying what it chose over these candidates.
    pub fn explain(&self, n: usize, value: impl Fn(&dyn Proxy, usize) -> f64) -> Vec<String> {
        let per = self.per_network(n, value);
        self.aggregates.iter().filter_map(|a| a.explain(&members_of(a, &per))).collect()
    }

    fn per_network(&self, n: usize, value: impl Fn(&dyn Proxy, usize) -> f64) -> Vec<(&'static str, Vec<f64>)> {
        self.proxies.iter().map(|p| (p.name(), (0..n).map(|i| value(p.as_ref(), i)).collect())).collect()
    }
}

/// An aggregation's members' values, in its order (those the run scored).
fn members_of(agg: &Aggregate, per: &[(&'static str, Vec<f64>)]) -> Vec<(&'static str, Vec<f64>)> {
    agg.members.iter().filter_map(|m| per.iter().find(|(p, _)| p == m).cloned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_networks_two_noise_draws_differ_and_repeat() {
        // zen runs x and x + 0.01 e: with e equal to x (as before 2026-12-06)
        // its perturbation was a rescaling that BatchNorm takes out
        let build = |_: crate::nets::Init| -> Result<Box<dyn crate::nets::Net>> { anyhow::bail!("not built") };
        let x = Tensor::zeros([2, 3, 4, 4], (Kind::Float, Device::Cpu));
        let shared = std::cell::RefCell::new(std::collections::BTreeMap::new());
        let p = test_nets::probe(&build, &x, None, &shared);
        let shape = [2i64, 3, 4, 4];
        let (a, e) = (p.noise(&shape), p.noise2(&shape));
        assert!(a.equal(&p.noise(&shape)) && e.equal(&p.noise2(&shape)));
        let r = (&e / &a).std(true).double_value(&[]);
        assert!(r > 0.1, "noise2 is noise times a constant (spread of the ratio {r})");
    }

    #[test]
    fn rank_sum_is_azs_log_rank_rule() {
        // two members over three candidates; ranks (1..3) / 3
        let m = vec![vec![1.0, 2.0, 3.0], vec![30.0, 10.0, 20.0]];
        let v = rank_sum(&m);
        let l = |r: f64| (r / 3.0).ln();
        assert_eq!(v, vec![l(1.0) + l(3.0), l(2.0) + l(1.0), l(3.0) + l(2.0)]);
        // ties share their average rank; NaN and -inf rank lowest
        let t = rank_sum(&[vec![5.0, 5.0, f64::NAN, f64::NEG_INFINITY]]);
        assert_eq!(t[0], (3.5f64 / 4.0).ln());
        assert_eq!(t[2], (1.5f64 / 4.0).ln());
        assert_eq!(t[2], t[3]);
    }

    #[test]
    fn backward_through_no_graph_gives_no_gradient() {
        let x = Tensor::from_slice(&[1.0f32, 2.0]).set_requires_grad(true);
        // an output that ignores x and has no graph (libtorch would crash)
        let dead = Tensor::zeros([2], (Kind::Float, Device::Cpu)).sum(Kind::Float);
        assert!(backward(&[dead], std::slice::from_ref(&x), false).unwrap()[0].is_none());
        // d(sum 3x)/dx = 3; an input the output does not use has none
        let unused = Tensor::from_slice(&[5.0f32]).set_requires_grad(true);
        let g = backward(&[(&x * 3.0).sum(Kind::Float)], &[x.shallow_clone(), unused], false).unwrap();
        assert_eq!(Vec::<f32>::try_from(g[0].as_ref().unwrap()).unwrap(), vec![3.0, 3.0]);
        assert!(g[1].is_none());
    }

    #[test]
    fn all_implies_what_was_not_named_and_without_drops_aggregates_over_it() {
        let opts = Options { gammas: rbflex::Gammas::default(), batch: None, channels_last: false };
        let sel = Selection::parse("all,ensemble,naswot", &opts).unwrap();
        // the ensemble's members and naswot were named; snip only came from all
        assert!(sel.implied.contains(&"snip") && sel.implied.contains(&"zen"));
        assert!(!sel.implied.iter().any(|n| ENSEMBLE.contains(n) || *n == "naswot" || *n == "ensemble"));
        let sel = Selection::parse("all", &opts).unwrap().without(&["synflow"]);
        assert!(sel.proxy("synflow").is_none() && sel.proxy("snip").is_some());
        let aggs: Vec<&str> = sel.aggregates.iter().map(|a| a.name).collect();
        assert_eq!(aggs, vec!["az", "vkdnw_agg"], "the ensemble and consensus have synflow as a member");
        assert!(!sel.asked.contains(&"ensemble") && !sel.asked.contains(&"synflow") && sel.asked.contains(&"az"));
    }

    #[test]
    fn every_aggregate_is_over_registered_proxies() {
        let known: Vec<&str> = registered().collect();
        for a in AGGREGATES {
            for m in a.members {
                assert!(known.contains(m), "{}: member {m} is not a registered proxy", a.name);
            }
        }
        let opts = Options { gammas: rbflex::Gammas::default(), batch: None, channels_last: false };
        let sel = Selection::parse("vkdnw_agg", &opts).unwrap();
        let mut got: Vec<&str> = sel.proxies.iter().map(|p| p.name()).collect();
        let mut want = VKDNW_AGG.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(sel.aggregates.iter().map(|a| a.name).collect::<Vec<_>>(), vec!["vkdnw_agg"]);
    }

    #[test]
    fn unknown_proxy_lists_the_known_ones() {
        let opts = Options { gammas: rbflex::Gammas::default(), batch: None, channels_last: false };
        let e = Selection::parse("rbflex,nope", &opts).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.starts_with("unknown proxy 'nope' (known: rbflex"), "{e}");
    }

    #[test]
    fn channels_last_needs_a_proxy_with_its_own_batch() {
        let opts = Options { gammas: rbflex::Gammas::default(), batch: None, channels_last: true };
        let e = Selection::parse("rbflex", &opts).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(e, "channels-last is for proxies with a batch of their own; rbflex keeps the reference's layout");
        let sel = Selection::parse("rbflex,snip", &opts).unwrap();
        let layout: Vec<bool> = sel.proxies.iter().map(|p| sel.channels_last_for(p.as_ref())).collect();
        assert_eq!(layout, vec![false, true], "RBFleX keeps the reference's layout");
    }
}
