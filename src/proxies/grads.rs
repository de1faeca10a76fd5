//! Gradient-based zero-cost proxies over Conv2d and Linear weights (biases
//! and BatchNorm parameters never contribute), ported from
//! SamsungLabs/zero-cost-nas (`foresight/pruners/measures`) and run with the
//! protocol of AZ-NAS' NB201 code where it has them (synflow, snip, grasp,
//! grad_norm: Kaiming-normal fan-in init, batch 64), zero-cost-nas' where it
//! does not (fisher, plain: PyTorch's default init, 64 labelled images).
//! BatchNorm runs in train mode on the batch.

use super::{nan_as_lowest, Measure, Needs, Probe, Proxy};
use crate::nets::layers::layer_outputs;
use crate::nets::Init;
use crate::nets::{BnStats, Net, NoProbe};
use anyhow::Result;
use tch::{Kind, Tensor};

/// Sum over tensors of a per-element function's sum, in float64.
fn total(ts: &[Tensor], f: impl Fn(&Tensor) -> Tensor) -> f64 {
    ts.iter().map(|t| f(t).to_kind(Kind::Double).sum(Kind::Double).double_value(&[])).sum()
}

/// Mean cross-entropy of `net` on labelled `x` (graph recorded).
fn ce_loss(net: &dyn Net, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    Ok(net.forward(x, BnStats::Batch, &mut NoProbe)?.cross_entropy_for_logits(y))
}

/// Gradients of `loss` w.r.t. `ws` (zeros where a weight took no part).
pub(crate) fn grads(loss: &Tensor, ws: &[Tensor], create_graph: bool) -> Result<Vec<Tensor>> {
    Ok(super::backward(std::slice::from_ref(loss), ws, create_graph)?
        .into_iter()
        .zip(ws)
        .map(|(g, w)| g.unwrap_or_else(|| w.zeros_like()))
        .collect())
}

/// Sum over weights of `w * g` (of `|w * g|` when `abs`), in float64.
fn product_sum(ws: &[Tensor], gs: &[Tensor], abs: bool) -> f64 {
    ws.iter()
        .zip(gs)
        .map(|(w, g)| {
            let p = w.detach() * g;
            let p = if abs { p.abs() } else { p };
            p.sum(Kind::Double).double_value(&[])
        })
        .sum()
}

/// The protocol of the proxies with a classification loss on 64 labelled images.
const LABELLED: Needs = Needs { batch: Some(64), labels: true, classifier: true };

/// A network initialised by `init`, its Conv/Linear weights, and their
/// cross-entropy gradients on the labelled batch.
fn ce_weight_grads(p: &Probe, init: Init) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
    let net = (p.build)(init)?;
    net.params().set_requires_grad(true);
    let ws = net.params().layer_weights();
    let g = grads(&ce_loss(net.as_ref(), p.x, p.labels()?)?, &ws, false)?;
    Ok((ws, g))
}

/// synflow (Tanaka et al. 2020): BatchNorm removed, every parameter made
/// positive, float64, one all-ones input; score = sum |w * d(sum of
/// outputs)/dw| (AZ-NAS' version: Kaiming-normal init first).
#[derive(Debug, Clone, Copy)]
pub struct Synflow;

impl Proxy for Synflow {
    fn memory_per_input_value(&self) -> u64 {
        10000
    }
    fn name(&self) -> &'static str {
        "synflow"
    }
    fn needs(&self) -> Needs {
        Needs { batch: Some(2), labels: false, classifier: false }
    }
    fn reads_inputs(&self) -> bool {
        false // only the batch's shape
    }
    fn score(&self, p: &Probe) -> Result<Measure> {
        let net = (p.build)(Init::KaimingNormalFanIn)?;
        let params = net.params();
        params.abs_();
        params.convert(Kind::Double);
        params.set_requires_grad(true);
        let mut shape = p.x.size();
        shape[0] = 1;
        let x = Tensor::ones(shape.as_slice(), (Kind::Double, p.x.device()));
        let out = net.forward(&x, BnStats::Off, &mut NoProbe)?.sum(Kind::Double);
        let ws = params.layer_weights();
        let g = grads(&out, &ws, false)?;
        Ok(Measure::value(nan_as_lowest(product_sum(&ws, &g, true))))
    }
}

const SNIP: &str = "snip";

/// SNIP (Lee et al. 2019): sum |w * dL/dw| for the cross-entropy of 64
/// labelled images.
#[derive(Debug, Clone, Copy)]
pub struct Snip;

impl Proxy for Snip {
    fn memory_per_input_value(&self) -> u64 {
        2300
    }
    fn name(&self) -> &'static str {
        SNIP
    }
    fn needs(&self) -> Needs {
        LABELLED
    }
    fn score(&self, p: &Probe) -> Result<Measure> {
        if let Some(v) = p.yielded(SNIP) {
            return Ok(Measure::value(v));
        }
        let (ws, g) = ce_weight_grads(p, Init::KaimingNormalFanIn)?;
        Ok(Measure::value(nan_as_lowest(product_sum(&ws, &g, true))))
    }
}

/// GraSP (Wang et al. 2020): sum of -w * (H g), g the cross-entropy
/// gradient of the Conv/Linear weights and H the Hessian.
#[derive(Debug, Clone, Copy)]
pub struct Grasp;

impl Proxy for Grasp {
    fn memory_per_input_value(&self) -> u64 {
        6000
    }
    fn name(&self) -> &'static str {
        "grasp"
    }
    fn needs(&self) -> Needs {
        LABELLED
    }
    fn also_yields(&self) -> &'static [&'static str] {
        &[SNIP]
    }
    fn score(&self, p: &Probe) -> Result<Measure> {
        let net = (p.build)(Init::KaimingNormalFanIn)?;
        net.params().set_requires_grad(true);
        let ws = net.params().layer_weights();
        // The reference runs the forward pass twice: once for the gradient g,
        // again for the same gradient with its graph (same network, batch and
        // BatchNorm statistics, so the same bits). One pass serves both here,
        // a third less work; values unchanged (checked on 16 networks).
        let gf = grads(&ce_loss(net.as_ref(), p.x, p.labels()?)?, &ws, true)?;
        let g: Vec<Tensor> = gf.iter().map(Tensor::detach).collect();
        if p.is_pending(SNIP) {
            // SNIP's protocol is this gradient's (init, batch, labels, BatchNorm)
            p.yield_value(SNIP, nan_as_lowest(product_sum(&ws, &g, true)));
        }
        let z = g.iter().zip(&gf).map(|(a, b)| (a * b).sum(Kind::Float)).fold(Tensor::from(0f32), |acc, t| acc + t);
        let hg = grads(&z, &ws, false)?;
        Ok(Measure::value(nan_as_lowest(-product_sum(&ws, &hg, false))))
    }
}

/// grad_norm as AZ-NAS runs it: standard-normal inputs with random labels;
/// the norm of the cross-entropy gradient of every parameter.
#[derive(Debug, Clone, Copy)]
pub struct GradNorm;

impl Proxy for GradNorm {
    fn memory_per_input_value(&self) -> u64 {
        2800
    }
    fn name(&self) -> &'static str {
        "grad_norm"
    }
    fn needs(&self) -> Needs {
        Needs { batch: Some(64), labels: false, classifier: true }
    }
    fn reads_inputs(&self) -> bool {
        false // only the batch's shape
    }
    fn score(&self, p: &Probe) -> Result<Measure> {
        let net = (p.build)(Init::KaimingNormalFanIn)?;
        net.params().set_requires_grad(true);
        let x = p.noise(&p.x.size());
        let y = p.random_labels(x.size()[0]);
        let all: Vec<Tensor> = net.params().iter().map(|(_, t, _)| t.shallow_clone()).collect();
        let g = grads(&ce_loss(net.as_ref(), &x, &y)?, &all, false)?;
        Ok(Measure::value(nan_as_lowest(total(&g, |g| g.square()).sqrt())))
    }
}

const PLAIN: &str = "plain";

/// zero-cost-nas' `plain`: sum of w * dL/dw (signed).
#[derive(Debug, Clone, Copy)]
pub struct Plain;

impl Proxy for Plain {
    fn memory_per_input_value(&self) -> u64 {
        2300
    }
    fn name(&self) -> &'static str {
        PLAIN
    }
    fn needs(&self) -> Needs {
        LABELLED
    }
    fn score(&self, p: &Probe) -> Result<Measure> {
        if let Some(v) = p.yielded(PLAIN) {
            return Ok(Measure::value(v));
        }
        let (ws, g) = ce_weight_grads(p, Init::Default)?;
        Ok(Measure::value(nan_as_lowest(product_sum(&ws, &g, false))))
    }
}

/// Fisher (Theis et al. 2018) as zero-cost-nas' `fisher.py` computes it:
/// for the output a of every Conv2d and Linear layer, with cross-entropy
/// gradient g, each channel's 0.5 * mean over images of (sum over pixels of
/// a * g)^2, times the layer weight's values per channel (zero-cost-nas
/// spreads the channel's value over the weight's shape before summing);
/// summed over channels and layers.
#[derive(Debug, Clone, Copy)]
pub struct Fisher;

impl Proxy for Fisher {
    fn memory_per_input_value(&self) -> u64 {
        3800
    }
    fn name(&self) -> &'static str {
        "fisher"
    }
    /// Folders scored before this port (ReLU outputs, no fan-in weights)
    /// lack `outputs` and are refused instead of mixed.
    fn settings(&self) -> serde_json::Value {
        serde_json::json!({ "outputs": "conv-linear" })
    }
    fn needs(&self) -> Needs {
        LABELLED
    }
    fn also_yields(&self) -> &'static [&'static str] {
        &[PLAIN]
    }
    fn score(&self, p: &Probe) -> Result<Measure> {
        let net = (p.build)(Init::Default)?;
        net.params().set_requires_grad(true);
        let (logits, outs) = layer_outputs::collect(|| net.forward(p.x, BnStats::Batch, &mut NoProbe));
        let logits = logits?;
        let loss = logits.cross_entropy_for_logits(p.labels()?);
        let mut wanted: Vec<Tensor> = outs.iter().map(|(a, _)| a.shallow_clone()).collect();
        // plain's protocol is this pass's (init, batch, labels, BatchNorm): the
        // same backward also gives its weight gradients, the same bits
        let ws = if p.is_pending(PLAIN) { net.params().layer_weights() } else { Vec::new() };
        wanted.extend(ws.iter().map(Tensor::shallow_clone));
        let g = grads(&loss, &wanted, false)?;
        let (g_acts, g_ws) = g.split_at(outs.len());
        if !ws.is_empty() {
            p.yield_value(PLAIN, nan_as_lowest(product_sum(&ws, g_ws, false)));
        }
        let mut v = 0.0;
        for ((a, per_channel), g) in outs.iter().zip(g_acts) {
            v += fisher_of_layer(&a.detach(), g) * *per_channel as f64;
        }
        Ok(Measure::value(nan_as_lowest(v)))
    }
}

/// Sum over channels of 0.5 * mean over images of (sum over the other axes
/// of a * g)^2, for a layer output `a` `[N, C, ...]` and its gradient `g`.
pub fn fisher_of_layer(a: &Tensor, g: &Tensor) -> f64 {
    let prod = a * g;
    let dims: Vec<i64> = (2..prod.dim() as i64).collect();
    let gnk = if dims.is_empty() { prod } else { prod.sum_dim_intlist(dims.as_slice(), false, Kind::Float) };
    (gnk.to_kind(Kind::Double).square().mean_dim([0i64].as_slice(), false, Kind::Double) * 0.5)
        .sum(Kind::Double)
        .double_value(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxies::test_nets::{close, labelled_batch, one_linear, probe, softmax, two_linear, B, W};
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    #[test]
    fn synflow_of_two_linear_layers_is_closed_form() {
        // ones in, every parameter made positive: out = |W2| (|W1| 1 + |b1|) + |b2|.
        // The W1 terms sum to |W2|.|W1|1 = 0.25 * 3 + 4 * 3.5 = 14.75, the W2
        // terms to |W2|.(|W1|1 + |b1|) = 14.75 + 0.25 * 1 + 4 * 2 = 23
        let shared = RefCell::new(BTreeMap::new());
        let x = Tensor::zeros([3, 2], (Kind::Float, tch::Device::Cpu));
        let build = |_: Init| -> Result<Box<dyn Net>> { Ok(Box::new(two_linear())) };
        let p = Probe { classes: 1, ..probe(&build, &x, None, &shared) };
        assert_eq!(Synflow.score(&p).unwrap().value, 37.75);
    }

    #[test]
    fn fisher_of_one_linear_layer_is_closed_form() {
        // per channel k: 0.5 * mean_n (z_nk g_nk)^2, summed, times the
        // weight's 2 values per channel
        let (x, y, z, g) = labelled_batch();
        let shared = RefCell::new(BTreeMap::new());
        let p = probe(&one_linear, &x, Some(&y), &shared);
        let want: f64 =
            (0..2).map(|k| 0.5 * ((z[0][k] * g[0][k]).powi(2) + (z[1][k] * g[1][k]).powi(2)) / 2.0).sum::<f64>() * 2.0;
        close(Fisher.score(&p).unwrap().value, want);
    }

    #[test]
    fn snip_plain_and_grasp_of_one_linear_layer_are_closed_form() {
        let (x, y, z, g) = labelled_batch();
        let shared = RefCell::new(BTreeMap::new());
        let p = probe(&one_linear, &x, Some(&y), &shared);
        let grad = |k: usize, j: usize| g[j][k];
        let cells = [(0, 0), (0, 1), (1, 0), (1, 1)];
        let snip: f64 = cells.iter().map(|&(k, j)| (W[k][j] * grad(k, j)).abs()).sum();
        let plain: f64 = cells.iter().map(|&(k, j)| W[k][j] * grad(k, j)).sum();
        close(Snip.score(&p).unwrap().value, snip);
        close(Plain.score(&p).unwrap().value, plain);
        // GraSP: -sum W . (H g) over the weight (not the bias). The Hessian
        // of the mean CE in W is (1/2) sum_n A_n[k][l] x_nj x_nm with A_n =
        // diag(s_n) - s_n s_n^T, so (H g)[k][j] = (1/2) sum_l A_j[k][l] g(l, j)
        let s = [softmax(z[0]), softmax(z[1])];
        let a = |n: usize, k: usize, l: usize| if k == l { s[n][k] } else { 0.0 } - s[n][k] * s[n][l];
        let hg = |k: usize, j: usize| 0.5 * (0..2).map(|l| a(j, k, l) * grad(l, j)).sum::<f64>();
        let grasp: f64 = -cells.iter().map(|&(k, j)| W[k][j] * hg(k, j)).sum::<f64>();
        close(Grasp.score(&p).unwrap().value, grasp);
        // GraSP's first gradient, handed to a pending SNIP, is SNIP's value
        let p = Probe { pending: &[SNIP], ..p };
        Grasp.score(&p).unwrap();
        close(p.yielded(SNIP).unwrap(), snip);
    }

    #[test]
    fn grad_norm_of_one_linear_layer_is_closed_form() {
        // noise inputs x_n (recorded as the net saw them), one class so
        // every random label is 0: d_n = (softmax(W x_n + b) - e_0) / N;
        // dW = sum_n d_n x_n^T, db = sum_n d_n; the value is |(dW, db)|
        use crate::proxies::test_nets::{Recorder, Seen};
        let seen = Seen::default();
        let build =
            |i: Init| -> Result<Box<dyn Net>> { Ok(Box::new(Recorder { inner: one_linear(i)?, seen: seen.clone() })) };
        let shared = RefCell::new(BTreeMap::new());
        let x0 = Tensor::zeros([3, 2], (Kind::Float, tch::Device::Cpu));
        let p = Probe { classes: 1, seed: 7, ..probe(&build, &x0, None, &shared) };
        let got = GradNorm.score(&p).unwrap().value;
        let xs = Vec::<f32>::try_from(seen.lock().unwrap()[0].reshape([-1])).unwrap();
        let (mut dw, mut db) = ([[0.0; 2]; 2], [0.0; 2]);
        for n in 0..3 {
            let xn = [f64::from(xs[2 * n]), f64::from(xs[2 * n + 1])];
            let s = softmax([0, 1].map(|k| W[k][0] * xn[0] + W[k][1] * xn[1] + B[k]));
            for k in 0..2 {
                let d = (s[k] - f64::from(u8::from(k == 0))) / 3.0;
                db[k] += d;
                dw[k][0] += d * xn[0];
                dw[k][1] += d * xn[1];
            }
        }
        let want = (dw.iter().flatten().chain(&db).map(|v| v * v).sum::<f64>()).sqrt();
        close(got, want);
    }

    #[test]
    fn l2_norm_sums_each_layer_weights_frobenius_norm() {
        // ||W1||_F = sqrt(1 + 4 + 9 + 0.25), ||W2||_F = sqrt(0.0625 + 16); biases never count
        let shared = RefCell::new(BTreeMap::new());
        let x = Tensor::zeros([2, 2], (Kind::Float, tch::Device::Cpu));
        let build = |_: Init| -> Result<Box<dyn Net>> { Ok(Box::new(two_linear())) };
        let p = Probe { classes: 1, ..probe(&build, &x, None, &shared) };
        close(crate::proxies::size::L2Norm.score(&p).unwrap().value, 14.25f64.sqrt() + 16.0625f64.sqrt());
    }
}
