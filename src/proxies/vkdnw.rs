//! VKDNW (Týbl & Neumann, CVPR 2025, "Training-free Neural Architecture
//! Search through Variance of Knowledge of Deep Network Weights";
//! ondratybl/VKDNW `NB201/ZeroShotProxy/compute_vkdnw_score.py`, run by
//! `NB201/tss_general_.py`): Kaiming-normal (fan-in) init, a batch of 64
//! standard-normal inputs (no labels), BatchNorm in eval mode with a fresh
//! network's running statistics (`model.eval()` before any pass).
//!
//! The parameters sampled are the first element of each of the first 128
//! parameter tensors in `named_parameters()` order (`params_grad_len=128`;
//! the first element is the "params first" version, the same as the final
//! code's `p=1`, its default `p=0` selecting none). For each input n, J_n is
//! the Jacobian of the logits w.r.t. those P weights and L_n the
//! reference's Cholesky-type factor of the smoothed softmax covariance
//! (probabilities `softmax * (1 - a) + a / K`, a = 0.05 as float16); the
//! Fisher matrix is `F = mean_n (L_n J_n)^T (L_n J_n)`. Its eigenvalues'
//! deciles q_1..q_9 (`torch.quantile` at 0.1 .. 0.9), normalised to t =
//! q / (sum q + 1e-10), give `vkdnw` = `-sum t ln(t + 1e-10)` (their
//! `vkdnw_entropy`).
//!
//! `vkdnw_single` is the paper's VKDNW_single ranking: networks ordered by
//! the number of parameter tensors ℵ (`vkdnw_dim`), ties by the entropy,
//! as the value `ℵ + vkdnw / 3` (the entropy of 9 values is below ln 9 <
//! 3). The published NB201 Kendall 0.750 / 0.753 / 0.743 is VKDNW_agg, a
//! rank aggregation of VKDNW_single with other proxies (their
//! `tss_utils.get_scores`); VKDNW_single's is 0.618 / 0.634 / 0.622.
//!
//! Here J_n comes from one backward pass per row of L (K passes), the
//! per-input derivative w.r.t. a single weight taken from the layer's input
//! and its output's gradient (inputs are independent in eval mode); the
//! reference uses `vmap(jacrev)`. Float32 throughout as there (the
//! singular values from `svd`, whose float32 noise floor for the zero
//! eigenvalues of a rank-deficient Fisher enters the lower deciles; float64
//! eigenvalues shift the entropy by up to ~1e-3). A parameter tensor of a layer that
//! is not a Conv2d, BatchNorm or Linear (none on NB201) contributes a zero
//! column.
//!
//! Checked against the authors' code (its `get_fisher` run on xautodl's
//! TinyNetwork with the same weights and noise; their in-place write into a
//! captured tensor patched with a `clone()` for torch 2.13): on 28 NB201
//! networks the values agree within 2.5e-4 (median 1.2e-5), Spearman 1.0;
//! again on 2026-12-07 against `rbflex score --seed S` (40 random networks,
//! seeds 500-539: their TinyNetwork built after `manual_seed(S)`, Kaiming
//! re-drawn, noise from `manual_seed(S)`): the 36 live ones within 1.7e-2
//! (median 3.4e-5, 3 above 1e-3), Spearman 1.0.
//! A network whose pre-pooling map is all zero (output independent of the
//! input) is `-inf` here, rbflex's rule; the reference gives such networks
//! ~ln 9 = 2.195, the largest entropy (its Fisher has equal deciles), or 0
//! (4 of the 40 above).

use super::{Measure, Needs, Probe, Proxy};
use crate::nets::layers::sites::{self, Site};
use crate::nets::Init;
use crate::nets::{BnStats, Sink};
use anyhow::{bail, Result};
use tch::{Kind, Tensor};

/// VKDNW's entropy.
#[derive(Debug, Clone, Copy)]
pub struct Vkdnw;

/// VKDNW_single: ℵ + entropy / 3.
#[derive(Debug, Clone, Copy)]
pub struct VkdnwSingle;

/// Parameter tensors sampled (`params_grad_len`).
pub const TENSORS: usize = 128;

const NAME: &str = "vkdnw";
const SINGLE: &str = "vkdnw_single";
const DIM: &str = "vkdnw_dim";

/// The reference's `cholesky_covariance` of logits `[N, K]`: `[N, K, K]`
/// lower-triangular L with L L^T = diag(p) - p p^T, p the smoothed
/// probabilities (float32, the smoothing constants rounded as float16).
pub fn cholesky_factor(logits: &Tensor) -> Tensor {
    let (n, k) = (logits.size()[0], logits.size()[1]);
    let dev = logits.device();
    // alpha = float16(0.05); (1 - alpha) is a float16 scalar op, alpha / K too
    let half = |v: f64| Tensor::from(v).to_kind(Kind::Half);
    let alpha = half(0.05);
    let keep = (alpha.ones_like() - &alpha).to_kind(Kind::Float).double_value(&[]);
    let spread = (&alpha / k as f64).to_kind(Kind::Float).double_value(&[]);
    let prob = logits.detach().to_kind(Kind::Float).softmax(1, Kind::Float) * keep + spread;
    let q = prob.ones_like() - prob.cumsum(1, Kind::Float);
    let _ = q.narrow(1, k - 1, 1).fill_(0.0);
    let q_shift = q.roll([1i64].as_slice(), [1i64].as_slice());
    let _ = q_shift.narrow(1, 0, 1).fill_(1.0);
    let d = (&prob * &q / &q_shift).sqrt();
    // -p_i / q_j, -inf (q_j = 0) as 0
    let l = -prob.unsqueeze(2).matmul(&q.reciprocal().unsqueeze(1));
    let l = l.nan_to_num(None, None, Some(0.0));
    let eye = Tensor::eye(k, (Kind::Float, dev)).expand([n, k, k], false);
    let l = &l * (eye.ones_like() - &eye) + &eye;
    let lower = Tensor::ones([k, k], (Kind::Float, dev)).tril(0);
    (l * lower).matmul(&d.diag_embed(0, -2, -1))
}

/// `vkdnw_entropy` of singular values `lambdas` (1-D float32), with the
/// reference's ops: `torch.quantile` at `arange(0.1, 1.0, 0.1)`, t = q /
/// (|q|_1 + 1e-10), `-sum t ln(t + 1e-10)`, all in float32.
pub fn entropy_of(lambdas: &Tensor) -> f64 {
    if lambdas.numel() == 0 {
        return f64::NAN;
    }
    let l = lambdas.to_kind(Kind::Float);
    let at = Tensor::arange_start_step(0.1, 1.0, 0.1, (Kind::Float, l.device()));
    let q = l.quantile(&at, None::<i64>, false, "linear");
    let l1 = q.abs().sum(Kind::Float).double_value(&[]);
    let t = &q / (l1 + 1e-10);
    (-(&t * (&t + 1e-10).log())).sum(Kind::Float).double_value(&[])
}

/// Which scalar of a layer a sampled weight is (its first element).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    Weight,
    Bias,
}

/// `d out[n, 0, ...] / d w` summed against `g` (the gradient at the layer's
/// output), per input: the column of the Jacobian for the first element of
/// the layer's weight or bias, `[N]`.
fn column(site: &Site, slot: Slot, g: &Tensor) -> Tensor {
    let n = g.size()[0];
    let sum_rest = |t: Tensor| t.reshape([n, -1]).sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
    // the output channel (Conv2d, BatchNorm) or feature (Linear) 0
    let g0 = if matches!(site.kind, sites::Kind::Linear) { g.narrow(-1, 0, 1) } else { g.narrow(1, 0, 1) };
    if slot == Slot::Bias {
        return sum_rest(g0);
    }
    let x = site.input.as_ref().expect("inputs recorded").detach();
    match site.kind {
        sites::Kind::Conv(s) => {
            // the input channel 0 at kernel tap (0, 0), strided and padded
            let tap = Tensor::zeros([1, 1, s.k[0], s.k[1]], (x.kind(), x.device()));
            let _ = tap.get(0).get(0).get(0).get(0).fill_(1.0);
            let m = x.narrow(1, 0, 1).conv2d(&tap, None::<&Tensor>, s.stride, s.padding, s.dilation, 1);
            sum_rest(g0 * m)
        }
        sites::Kind::BatchNorm { eps, stats } => {
            let x0 = x.narrow(1, 0, 1);
            let xhat = match stats {
                BnStats::Eval => x0 / (1.0 + eps).sqrt(),
                BnStats::Off => x0.zeros_like(),
                _ => {
                    let dims: Vec<i64> = (0..x0.dim() as i64).filter(|d| *d != 1).collect();
                    let mean = x0.mean_dim(dims.as_slice(), true, Kind::Float);
                    let var = x0.var_dim(dims.as_slice(), false, true);
                    (&x0 - mean) / (var + eps).sqrt()
                }
            };
            sum_rest(g0 * xhat)
        }
        sites::Kind::Linear => {
            // out[..., 0] += w[0, 0] * x[..., 0]
            sum_rest(g0 * x.narrow(-1, 0, 1))
        }
    }
}

/// The pre-pooling map's state.
#[derive(Default)]
struct PrePool(Option<bool>);

impl Sink for PrePool {
    fn pre_pool(&mut self, out: &Tensor) {
        self.0 = Some(out.ne(0.0).any().int64_value(&[]) != 0);
    }
}

/// The Fisher matrix's singular values (its eigenvalues) and ℵ for one network (`None` when the
/// pre-pooling map is all zero).
fn fisher_eigenvalues(p: &Probe) -> Result<(Option<Tensor>, usize)> {
    let net = (p.build)(Init::KaimingNormalFanIn)?;
    let params: Vec<Tensor> = net.params().iter().map(|(_, t, _)| t.shallow_clone()).collect();
    let aleph = params.len();
    net.params().set_requires_grad(true);
    let x = p.noise(&p.x.size());
    let mut sink = PrePool::default();
    let (logits, layers) = sites::collect(true, || net.forward(&x, BnStats::Eval, &mut sink));
    let logits = logits?;
    if sink.0 == Some(false) {
        return Ok((None, aleph));
    }
    // where each sampled weight lives
    let slots: Vec<Option<(usize, Slot)>> = params
        .iter()
        .take(TENSORS)
        .map(|t| {
            let ptr = t.data_ptr();
            layers.iter().enumerate().find_map(|(i, s)| {
                if s.weight.data_ptr() == ptr {
                    Some((i, Slot::Weight))
                } else if s.bias.as_ref().is_some_and(|b| b.data_ptr() == ptr) {
                    Some((i, Slot::Bias))
                } else {
                    None
                }
            })
        })
        .collect();
    if slots.iter().all(Option::is_none) {
        // a zero Fisher matrix would score 0, as if measured; a space whose
        // networks report no layer calls is refused before this (Setting), so
        // this is a network whose space says they do
        bail!(
            "none of the network's first {TENSORS} parameter tensors belongs to a Conv2d, BatchNorm or Linear call \
             it reported, so its Fisher matrix cannot be formed"
        );
    }
    let mut used: Vec<usize> = slots.iter().flatten().map(|(i, _)| *i).collect();
    used.sort_unstable();
    used.dedup();
    let outs: Vec<Tensor> = used.iter().map(|i| layers[*i].output.shallow_clone()).collect();
    let (n, k) = (logits.size()[0], logits.size()[1]);
    let l = cholesky_factor(&logits);
    let cols = slots.len() as i64;
    let a = Tensor::zeros([n, k, cols], (Kind::Float, logits.device()));
    if logits.requires_grad() && !outs.is_empty() {
        for r in 0..k {
            let target = (&logits * l.select(1, r)).sum(Kind::Float);
            let out_refs: Vec<&Tensor> = outs.iter().collect();
            let grads = Tensor::f_run_backward(&[&target], &out_refs, true, false)?;
            for (j, slot) in slots.iter().enumerate() {
                let Some((site, which)) = slot else { continue };
                let pos = used.binary_search(site).unwrap_or_default();
                let g = &grads[pos];
                if !g.defined() {
                    continue;
                }
                let c = column(&layers[*site], *which, g);
                a.select(1, r).select(1, j as i64).copy_(&c);
            }
        }
    }
    let fisher = a.transpose(1, 2).matmul(&a).mean_dim([0i64].as_slice(), false, Kind::Float);
    // `torch.svd(fisher).S` in float32, as the reference: the zero
    // eigenvalues of a rank-deficient Fisher come out at float32's noise
    // floor, which their lower deciles (and so the entropy) carry
    let (_, s, _) = fisher.f_svd(true, true)?;
    Ok((Some(s), aleph))
}

fn dead(aleph: usize) -> Measure {
    Measure { value: f64::NEG_INFINITY, parts: vec![aleph as f64], note: Some(super::swap::DEAD.into()) }
}

impl Proxy for Vkdnw {
    fn memory_per_input_value(&self) -> u64 {
        // peak RSS 1.0 GB at 64 x 3 x 32 x 32 (`bench --jobs 1 --proxy vkdnw`)
        5000
    }
    fn name(&self) -> &'static str {
        NAME
    }
    fn needs(&self) -> Needs {
        Needs { batch: Some(64), labels: false, classifier: true }
    }
    fn reads_inputs(&self) -> bool {
        false // only the batch's shape: its own noise
    }
    fn reads_layer_calls(&self) -> bool {
        true // the weights' derivatives come from each layer's input and output
    }
    fn settings(&self) -> serde_json::Value {
        serde_json::json!({ "tensors": TENSORS })
    }
    fn columns(&self) -> super::Columns {
        super::Columns { value: NAME.into(), parts: vec![DIM.into()], seconds: format!("{NAME}_seconds") }
    }
    fn also_yields(&self) -> &'static [&'static str] {
        &[SINGLE]
    }
    fn score(&self, p: &Probe) -> Result<Measure> {
        let (ev, aleph) = fisher_eigenvalues(p)?;
        let Some(ev) = ev else {
            if p.is_pending(SINGLE) {
                p.yield_value(SINGLE, f64::NEG_INFINITY);
            }
            return Ok(dead(aleph));
        };
        let h = super::nan_as_lowest(entropy_of(&ev));
        if p.is_pending(SINGLE) {
            p.yield_value(SINGLE, aleph as f64 + h / 3.0);
        }
        Ok(Measure { value: h, parts: vec![aleph as f64], note: None })
    }
}

impl Proxy for VkdnwSingle {
    fn memory_per_input_value(&self) -> u64 {
        Vkdnw.memory_per_input_value()
    }
    fn name(&self) -> &'static str {
        SINGLE
    }
    fn needs(&self) -> Needs {
        Vkdnw.needs()
    }
    fn reads_inputs(&self) -> bool {
        false // only the batch's shape: its own noise
    }
    fn reads_layer_calls(&self) -> bool {
        Vkdnw.reads_layer_calls()
    }
    fn settings(&self) -> serde_json::Value {
        Vkdnw.settings()
    }
    fn score(&self, p: &Probe) -> Result<Measure> {
        if let Some(v) = p.yielded(SINGLE) {
            return Ok(Measure::value(v));
        }
        let (ev, aleph) = fisher_eigenvalues(p)?;
        match ev {
            None => Ok(Measure { parts: Vec::new(), ..dead(aleph) }),
            Some(ev) => Ok(Measure::value(aleph as f64 + super::nan_as_lowest(entropy_of(&ev)) / 3.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxies::test_nets::{one_linear, probe, softmax, Recorder, Seen};
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    #[test]
    fn cholesky_factor_reproduces_the_smoothed_covariance() {
        let z = Tensor::from_slice(&[0.3f32, -1.0, 2.0, 0.0, 0.5, 0.5]).view([2, 3]);
        let l = cholesky_factor(&z);
        for n in 0..2 {
            let ln = l.get(n);
            let cov = ln.mm(&ln.tr());
            // smoothed probabilities as the reference computes them
            let s = softmax_k(&z.get(n));
            let want = Tensor::from_slice(&s).diag(0) - Tensor::from_slice(&s).outer(&Tensor::from_slice(&s));
            // the float16 smoothing makes p sum to 1.0002: the factor is
            // exact up to that (the reference's own back-test allows 1e-3)
            let err = (cov.to_kind(Kind::Double) - want).abs().max().double_value(&[]);
            assert!(err < 1e-3, "{err}");
            // lower triangular, last column 0
            assert_eq!(ln.get(0).get(1).double_value(&[]), 0.0);
            assert_eq!(ln.select(1, 2).abs().sum(Kind::Float).double_value(&[]), 0.0);
        }
    }

    /// The reference's smoothed probabilities of one row of 3 logits.
    fn softmax_k(z: &Tensor) -> Vec<f64> {
        let v = Vec::<f32>::try_from(z).unwrap();
        let e: Vec<f64> = v.iter().map(|x| f64::from(*x).exp()).collect();
        let s: f64 = e.iter().sum();
        // float16: 1 - 0.05 -> 0.9501953125, 0.05 / 3 -> 0.016670227
        let keep = 0.950_195_312_5;
        let spread = f64::from(half_of(0.050_003_051_757_812_5 / 3.0));
        e.iter().map(|x| x / s * keep + spread).collect()
    }

    fn half_of(v: f64) -> f32 {
        Tensor::from(v).to_kind(Kind::Half).to_kind(Kind::Float).double_value(&[]) as f32
    }

    #[test]
    fn entropy_of_deciles_by_hand() {
        // 11 values 0..10: decile i is i (up to float32 positions); t_i = i / 45
        let v = Tensor::arange(11, (Kind::Float, tch::Device::Cpu));
        let want: f64 = (1..10)
            .map(|i| {
                let t = f64::from(i) / 45.0;
                -t * (t + 1e-10).ln()
            })
            .sum();
        assert!((entropy_of(&v) - want).abs() < 1e-5, "{}", entropy_of(&v));
        // equal eigenvalues: ln 9; none: NaN
        let eq = Tensor::full([5], 2.0, (Kind::Float, tch::Device::Cpu));
        assert!((entropy_of(&eq) - 9f64.ln()).abs() < 1e-5);
        assert!(entropy_of(&Tensor::zeros([0], (Kind::Float, tch::Device::Cpu))).is_nan());
    }

    #[test]
    fn fisher_of_one_linear_layer_is_closed_form() {
        // OneLinear (K = 2) on recorded noise x_n; parameters W (first
        // element W[0][0]) and b (first element b[0]); d z_n / d W00 = (x_n0,
        // 0), d z_n / d b0 = (1, 0). With L_n = [[sqrt(p0 p1), 0], [-sqrt(p0
        // p1)... ]] the factor, A_n = L_n J_n and F = mean A_n^T A_n
        let seen = Seen::default();
        let build = |i: Init| -> Result<Box<dyn crate::nets::Net>> {
            Ok(Box::new(Recorder { inner: one_linear(i)?, seen: seen.clone() }))
        };
        let shared = RefCell::new(BTreeMap::new());
        let x0 = Tensor::zeros([3, 2], (Kind::Float, tch::Device::Cpu));
        let p = probe(&build, &x0, None, &shared);
        let got = Vkdnw.score(&p).unwrap();
        assert_eq!(got.parts, vec![2.0]);
        let xs = Vec::<f32>::try_from(seen.lock().unwrap()[0].reshape([-1])).unwrap();
        let w = crate::proxies::test_nets::W;
        let b = crate::proxies::test_nets::B;
        let mut f = [[0.0f64; 2]; 2];
        for n in 0..3 {
            let xn = [f64::from(xs[2 * n]), f64::from(xs[2 * n + 1])];
            let z = [0, 1].map(|k| w[k][0] * xn[0] + w[k][1] * xn[1] + b[k]);
            let s = softmax(z);
            let keep = 0.950_195_312_5;
            let spread = f64::from(half_of(0.050_003_051_757_812_5 / 2.0));
            let pr = [s[0] * keep + spread, s[1] * keep + spread];
            // q = (1 - p0, 0); d = (sqrt(p0 q0 / 1), 0); L = [[d0, 0], [-p1/q0 d0, 0]]
            let q0 = 1.0 - pr[0];
            let d0 = (pr[0] * q0).sqrt();
            let l = [[d0, 0.0], [-pr[1] / q0 * d0, 0.0]];
            // J columns: W00 -> (x_n0, 0), b0 -> (1, 0); A = L J
            let j = [[xn[0], 1.0], [0.0, 0.0]];
            let mut a = [[0.0; 2]; 2];
            for r in 0..2 {
                for c in 0..2 {
                    a[r][c] = l[r][0] * j[0][c] + l[r][1] * j[1][c];
                }
            }
            for r in 0..2 {
                for c in 0..2 {
                    f[r][c] += (a[0][r] * a[0][c] + a[1][r] * a[1][c]) / 3.0;
                }
            }
        }
        // eigenvalues of the symmetric 2x2 F
        let (tr, det) = (f[0][0] + f[1][1], f[0][0] * f[1][1] - f[0][1] * f[1][0]);
        let disc = (tr * tr / 4.0 - det).max(0.0).sqrt();
        let ev = Tensor::from_slice(&[tr / 2.0 + disc, tr / 2.0 - disc]);
        let want = entropy_of(&ev);
        assert!((got.value - want).abs() < 1e-4, "{} vs {want}", got.value);
        // VKDNW_single is yielded as 2 + entropy / 3
        let p = crate::proxies::Probe { pending: &[SINGLE], ..p };
        let v = Vkdnw.score(&p).unwrap().value;
        assert!((p.yielded(SINGLE).unwrap() - (2.0 + v / 3.0)).abs() < 1e-12);
    }
}
