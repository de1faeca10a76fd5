//! NEAR (Husistein, Reiher & Eckhoff, ICLR 2025, "NEAR: A Training-Free
//! Pre-Estimator of Machine Learning Model Performance"; ReiherGroup/NEAR
//! `src/near_score/near_score.py`): PyTorch's default init, real images (no
//! labels), train-mode BatchNorm, one forward pass. Every module with
//! weights (Conv2d, BatchNorm, Linear: the pre-activations) and every
//! activation (ReLU: the post-activations) gives a matrix: a 4-D output
//! `[N, C, H, W]` is transposed to `[N, W, H, C]` and flattened to rows of C
//! values; C contiguous rows starting at a random multiple of W are kept (a
//! square C x C matrix); a 2-D output `[N, F]` keeps its first F rows. Its
//! effective rank is `exp(entropy(s / sum s))` over its singular values s
//! (0 for an all-zero matrix, numpy's `nan_to_num`); the value is the sum
//! over layers.
//!
//! The reference runs batches until every layer has as many rows as
//! columns; here one batch of 128 images, enough for every NB201 map and
//! for classifiers of up to 128 classes (a Linear output with fewer rows
//! than columns uses the rows it has). The random row windows are drawn
//! from torch's generator seeded by the network's seed. A ReLU output
//! reported again (a node read by several edges, each with its own ReLU
//! module there) is a layer of its own. Singular values in float64. One
//! draw (the code's default `repetitions=1`); the paper's NAS-benchmark
//! figures average repeated draws (re-initialised weights, new windows),
//! which would multiply the cost.

use super::swap::DEAD;
use super::{Measure, Needs, Probe, Proxy};
use crate::nets::layers::sites;
use crate::nets::Init;
use crate::nets::{BnStats, Sink};
use anyhow::Result;
use tch::{Device, Kind, Tensor};

/// The NEAR proxy.
#[derive(Debug, Clone, Copy)]
pub struct Near;

/// Effective rank of `m` (`[rows, cols]`): exp of the entropy of its
/// normalised singular values; 0 when they are all 0.
pub fn effective_rank(m: &Tensor) -> f64 {
    let m = m.to_kind(Kind::Double);
    // singular values as the roots of the Gram matrix's eigenvalues
    let gram = if m.size()[0] >= m.size()[1] { m.tr().mm(&m) } else { m.mm(&m.tr()) };
    let s = gram.linalg_eigvalsh("L").clamp_min(0.0).sqrt();
    let total = s.sum(Kind::Double).double_value(&[]);
    if total <= 0.0 || !total.is_finite() {
        return 0.0;
    }
    let p = s / total;
    let h = -(&p * p.clamp_min(f64::MIN_POSITIVE).log()).sum(Kind::Double).double_value(&[]);
    h.exp()
}

/// The reference's matrix of a layer output: rows `(n, w, h)` of C values,
/// C of them from row `start` (see [`window_starts`]). A token map
/// `[N, L, D]` (a transformer's; the reference takes only maps and vectors)
/// gives rows `(n, l)` of its D channels.
pub fn layer_matrix(out: &Tensor, start: i64) -> Tensor {
    let out = out.detach();
    let m = match out.dim() {
        3 => out.flatten(0, 1),
        d if d > 2 => out.transpose(1, 3).flatten(0, 2),
        _ => out.flatten(1, -1),
    };
    let (rows, cols) = (m.size()[0], m.size()[1]);
    let take = cols.min(rows - start);
    m.narrow(0, start, take)
}

/// The reference's window choice: with R rows of C values from a map of
/// width W, a start of `randint(0, R / W - 1) * W` when `R / W - 1 > 0`, else
/// 0; one draw per layer from `u` (uniform in [0, 1)).
pub fn window_start(out: &Tensor, u: f64) -> i64 {
    let size = out.size().last().copied().unwrap_or(1).max(1);
    let rows: i64 = match out.dim() {
        3 => out.size()[0] * out.size()[1],
        d if d > 2 => out.numel() as i64 / out.size()[1],
        _ => out.size()[0],
    };
    let hi = rows / size - 1;
    if hi > 0 {
        ((u * hi as f64) as i64).min(hi - 1) * size
    } else {
        0
    }
}

/// The activations (post-activation outputs) and the pre-pooling map's state.
#[derive(Default)]
struct Activations {
    outs: Vec<Tensor>,
    live: Option<bool>,
}

impl Sink for Activations {
    fn activation(&mut self, out: &Tensor) {
        self.outs.push(out.shallow_clone());
    }
    /// ReLUConvBN's output is its BatchNorm's, taken from the layer record.
    fn block_output(&mut self, _out: &Tensor) {}
    fn pre_pool(&mut self, out: &Tensor) {
        self.live = Some(out.ne(0.0).any().int64_value(&[]) != 0);
    }
}

impl Proxy for Near {
    fn memory_per_input_value(&self) -> u64 {
        // every layer's output is held until the ranks are taken: peak RSS
        // 1.22 GB at 128 x 3 x 32 x 32 (`bench --jobs 1 --proxy near`)
        3000
    }
    fn name(&self) -> &'static str {
        "near"
    }
    fn needs(&self) -> Needs {
        Needs { batch: Some(128), labels: false, classifier: false }
    }
    fn reads_layer_calls(&self) -> bool {
        true // every Conv2d/BatchNorm/Linear output, not only the activations
    }
    fn score(&self, p: &Probe) -> Result<Measure> {
        let net = (p.build)(Init::Default)?;
        let _guard = tch::no_grad_guard();
        let mut sink = Activations::default();
        let (out, layers) = sites::collect(false, || net.forward(p.x, BnStats::Batch, &mut sink));
        let _ = out?;
        if sink.live == Some(false) {
            return Ok(Measure { value: f64::NEG_INFINITY, parts: Vec::new(), note: Some(DEAD.into()) });
        }
        let outs: Vec<&Tensor> = layers.iter().map(|s| &s.output).chain(sink.outs.iter()).collect();
        let u = crate::nets::seeded(p.seed ^ 0x4ea2_0000_0000, || {
            Tensor::rand([outs.len() as i64], (Kind::Double, Device::Cpu))
        });
        let u = Vec::<f64>::try_from(u)?;
        let mut score = 0.0;
        for (o, u) in outs.iter().zip(u) {
            score += effective_rank(&layer_matrix(o, window_start(o, u)));
        }
        Ok(Measure::value(super::nan_as_lowest(score)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    }

    #[test]
    fn effective_rank_of_diagonal_matrices() {
        // singular values (3, 1): p = (3/4, 1/4), erank = exp(H(p))
        let m = Tensor::from_slice(&[3.0f64, 0., 0., -1.]).view([2, 2]);
        let h: f64 = -(0.75f64 * 0.75f64.ln() + 0.25 * 0.25f64.ln());
        close(effective_rank(&m), h.exp());
        // equal singular values: erank = the rank; zero matrix: 0
        close(effective_rank(&Tensor::eye(3, (Kind::Double, Device::Cpu))), 3.0);
        close(effective_rank(&(Tensor::eye(3, (Kind::Double, Device::Cpu)) * 0.0)), 0.0);
        // rank one
        close(effective_rank(&Tensor::ones([3, 2], (Kind::Double, Device::Cpu))), 1.0);
    }

    #[test]
    fn conv_maps_become_square_windows_of_rows() {
        // [N=2, C=2, H=2, W=2]: rows (n, w, h) of 2 channels; 8 rows of
        // width 2 -> starts 0, 2, 4 (randint(0, 8 / 2 - 1) * 2)
        let x = Tensor::arange(16, (Kind::Float, Device::Cpu)).view([2, 2, 2, 2]);
        assert_eq!(window_start(&x, 0.0), 0);
        assert_eq!(window_start(&x, 0.5), 2);
        assert_eq!(window_start(&x, 0.99), 4);
        let m = layer_matrix(&x, 2);
        // row (n=0, w=1, h=0) = (x[0,0,0,1], x[0,1,0,1]) = (1, 5); then h=1: (3, 7)
        assert_eq!(Vec::<f32>::try_from(m.reshape([-1])).unwrap(), vec![1., 5., 3., 7.]);
        // a classifier output [N=3, F=2] keeps its first 2 rows
        let y = Tensor::from_slice(&[1.0f32, 2., 3., 4., 5., 6.]).view([3, 2]);
        assert_eq!(window_start(&y, 0.9), 0);
        assert_eq!(Vec::<f32>::try_from(layer_matrix(&y, 0).reshape([-1])).unwrap(), vec![1., 2., 3., 4.]);
    }

    #[test]
    fn near_of_one_linear_layer_is_its_output_erank() {
        // the two-class net on e1, e2: logits rows (0, 5), (-3, 2.5); one
        // Linear site, no activation
        use crate::proxies::test_nets::{one_linear, probe};
        let x = Tensor::from_slice(&[1.0f32, 0., 0., 1.]).view([2, 2]);
        let shared = std::cell::RefCell::new(std::collections::BTreeMap::new());
        let p = probe(&one_linear, &x, None, &shared);
        let want = effective_rank(&Tensor::from_slice(&[0.0f64, 5., -3., 2.5]).view([2, 2]));
        assert!((Near.score(&p).unwrap().value - want).abs() < 1e-6);
        assert!(want > 1.0 && want < 2.0);
    }
}
