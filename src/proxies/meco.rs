//! MeCo (Jiang et al., NeurIPS 2024, "MeCo: Zero-Shot NAS with One Data and
//! Single Forward Pass via Minimum Eigenvalue of Correlation";
//! HamsterMimi/MeCo `correlation/NAS_Bench_201.py`, `--measure meco`): one
//! real image (batch 1, no label) through the network with PyTorch's default
//! init and train-mode BatchNorm (statistics of that image). Every module's
//! output `[1, C, H, W]` is read as C channels x HW pixels; its Pearson
//! correlation matrix (channels of zero spread: rows and columns 0, as the
//! reference's `corr[isnan(corr)] = 0`) gives its smallest eigenvalue; the
//! value is the sum over modules (non-finite terms dropped). Outputs of one
//! pixel or without a spatial map (pooling, classifier) add 0, as there.
//!
//! The reference hooks every `named_modules()` entry of Zero-Cost-NAS'
//! `nasbench2` model, so a value is counted once per module that returns it.
//! Here the modules are what rbflex's networks report: every Conv2d and
//! BatchNorm output, every ReLU output (once per edge reading it, as each
//! edge has its own ReLU there), a ReLUConvBN's output twice more (its
//! `op` Sequential and itself) and every stage output (stem, cells, ResNet
//! blocks). Not counted (no probe reports them): the pooling and identity
//! edges' outputs, the residual branch's pooling, and the containers that
//! repeat a child's output (`stem`, each stack's last cell, `residual`,
//! `lastact`). `meco_opt` (8 random channels, times C/8) is not ported.
//! Float64 for the correlation and its eigenvalues (float32 `eig` there).

use super::swap::DEAD;
use super::{Measure, Needs, Probe, Proxy};
use crate::nets::layers::sites;
use crate::nets::Init;
use crate::nets::{BnStats, Sink};
use anyhow::Result;
use tch::{Kind, Tensor};

/// The MeCo proxy.
#[derive(Debug, Clone, Copy)]
pub struct Meco;

/// The smallest eigenvalue of the channel correlation of the first image of
/// `out` (`[N, C, ...]`); 0 for outputs of one value per channel.
pub fn min_eig_corr(out: &Tensor) -> f64 {
    if out.dim() < 3 {
        return 0.0;
    }
    let c = out.size()[1];
    let fea = out.get(0).detach().reshape([c, -1]).to_kind(Kind::Double);
    if fea.size()[1] < 2 {
        return 0.0;
    }
    let centred = &fea - fea.mean_dim([1i64].as_slice(), true, Kind::Double);
    let norm = centred.square().sum_dim_intlist([1i64].as_slice(), true, Kind::Double).sqrt();
    // channels of zero spread: NaN rows in the reference, set to 0
    let live = norm.gt(0.0);
    let z = centred / norm.where_self(&live, &norm.ones_like());
    let z = z * live.to_kind(Kind::Double);
    let corr = z.mm(&z.tr());
    corr.linalg_eigvalsh("L").min().double_value(&[])
}

/// Sums [`min_eig_corr`] over the module outputs a forward pass reports.
#[derive(Default)]
pub struct MinEigSum {
    /// The sum.
    pub sum: f64,
    /// Whether the pre-pooling map (when reported) had a non-zero value.
    pub live: Option<bool>,
}

impl MinEigSum {
    /// Adds one module output.
    pub fn add(&mut self, out: &Tensor, times: f64) {
        let v = min_eig_corr(out);
        if v.is_finite() {
            self.sum += v * times;
        }
    }
}

impl Sink for MinEigSum {
    fn activation(&mut self, out: &Tensor) {
        self.add(out, 1.0);
    }
    /// ReLUConvBN's `op` Sequential and the block itself (its BatchNorm's
    /// output comes from the layer record).
    fn block_output(&mut self, out: &Tensor) {
        self.add(out, 2.0);
    }
    fn feature(&mut self, out: &Tensor) {
        self.add(out, 1.0);
    }
    fn pre_pool(&mut self, out: &Tensor) {
        self.live = Some(out.ne(0.0).any().int64_value(&[]) != 0);
    }
}

impl Proxy for Meco {
    fn name(&self) -> &'static str {
        "meco"
    }
    fn needs(&self) -> Needs {
        Needs { batch: Some(1), labels: false, classifier: false }
    }
    fn reads_layer_calls(&self) -> bool {
        true // every Conv2d/BatchNorm output, not only the activations
    }
    fn score(&self, p: &Probe) -> Result<Measure> {
        let net = (p.build)(Init::Default)?;
        let _guard = tch::no_grad_guard();
        let x = p.x.narrow(0, 0, 1);
        let mut sink = MinEigSum::default();
        let (out, layers) = sites::collect(false, || net.forward(&x, BnStats::Batch, &mut sink));
        let _ = out?;
        if sink.live == Some(false) {
            return Ok(Measure { value: f64::NEG_INFINITY, parts: Vec::new(), note: Some(DEAD.into()) });
        }
        for s in &layers {
            if matches!(s.kind, sites::Kind::Conv(_) | sites::Kind::BatchNorm { .. }) {
                sink.add(&s.output, 1.0);
            }
        }
        Ok(Measure::value(super::nan_as_lowest(sink.sum)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_eigenvalue_of_two_channels_is_one_minus_their_correlation() {
        // channels (1, 2, 3, 4) and (1, 3, 2, 4): correlation r = 0.8, the
        // eigenvalues of [[1, r], [r, 1]] are 1 +- r
        let a = Tensor::from_slice(&[1.0f32, 2., 3., 4., 1., 3., 2., 4.]).view([1, 2, 2, 2]);
        assert!((min_eig_corr(&a) - 0.2).abs() < 1e-12, "{}", min_eig_corr(&a));
        // a constant channel: its row and column are 0, eigenvalues {1, 0}
        let b = Tensor::from_slice(&[1.0f32, 2., 3., 4., 5., 5., 5., 5.]).view([1, 2, 2, 2]);
        assert_eq!(min_eig_corr(&b), 0.0);
        // only the first image counts; one pixel per channel adds 0
        let c = Tensor::cat(&[a.shallow_clone(), b], 0);
        assert!((min_eig_corr(&c) - 0.2).abs() < 1e-12);
        assert_eq!(min_eig_corr(&Tensor::ones([1, 3, 1, 1], (Kind::Float, tch::Device::Cpu))), 0.0);
        assert_eq!(min_eig_corr(&Tensor::ones([1, 3], (Kind::Float, tch::Device::Cpu))), 0.0);
    }

    #[test]
    fn a_block_output_counts_twice_a_relu_or_stage_output_once() {
        let a = Tensor::from_slice(&[1.0f32, 2., 3., 4., 1., 3., 2., 4.]).view([1, 2, 2, 2]);
        let mut s = MinEigSum::default();
        s.activation(&a);
        s.block_output(&a);
        s.feature(&a);
        assert!((s.sum - 0.8).abs() < 1e-12);
    }
}
