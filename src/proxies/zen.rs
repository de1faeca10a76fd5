//! Zen-score (Lin et al., ICCV 2021; idstcv/ZenNAS `compute_zen_score.py`,
//! as AZ-NAS' NB201 code runs it): Gaussian init (Conv/Linear weights
//! normal(0, 1), biases 0), two batches of 64 standard-normal inputs x and
//! x + 0.01 e, train-mode BatchNorm; score = log(mean over inputs of the L1
//! distance between the two pre-pooling maps) + the sum over BatchNorms of
//! log sqrt(mean running variance), the running variance being what two
//! train-mode passes leave from its initial 1 (0.81 + 0.09 v1 + 0.1 v2).

use super::{Measure, Needs, Probe, Proxy};
use crate::nets::Init;
use crate::nets::{layers::bn_stats, BnStats, Sink};
use anyhow::{bail, Result};
use tch::{Kind, Tensor};

/// The Zen-score proxy.
#[derive(Debug, Clone, Copy)]
pub struct Zen;

struct PrePool(Option<Tensor>);

impl Sink for PrePool {
    fn pre_pool(&mut self, out: &Tensor) {
        self.0 = Some(out.shallow_clone());
    }
}

/// The score from the two pre-pooling maps and each BatchNorm's two batch
/// variances.
pub fn zen_score(a: &Tensor, b: &Tensor, v1: &[Tensor], v2: &[Tensor]) -> f64 {
    let n = a.size()[0];
    let diff = (a.to_kind(Kind::Double) - b.to_kind(Kind::Double)).abs().reshape([n, -1]).sum_dim_intlist(
        [1i64].as_slice(),
        false,
        Kind::Double,
    );
    let mut s = diff.mean(Kind::Double).double_value(&[]).ln();
    for (x, y) in v1.iter().zip(v2) {
        let rv: Tensor = x * 0.09 + y * 0.1 + 0.81;
        s += rv.mean(Kind::Double).double_value(&[]).sqrt().ln();
    }
    s
}

impl Proxy for Zen {
    fn memory_per_input_value(&self) -> u64 {
        700
    }
    fn name(&self) -> &'static str {
        "zen"
    }
    /// Folders scored before the perturbation was drawn independently of
    /// the input (it equalled it until 2026-12-06) lack `perturbation` and are
    /// refused instead of mixed.
    fn settings(&self) -> serde_json::Value {
        serde_json::json!({ "perturbation": "independent" })
    }
    fn needs(&self) -> Needs {
        Needs { batch: Some(64), labels: false, classifier: true }
    }
    fn reads_inputs(&self) -> bool {
        false // only the batch's shape
    }
    fn score(&self, p: &Probe) -> Result<Measure> {
        let net = (p.build)(Init::Gaussian)?;
        let _guard = tch::no_grad_guard();
        let shape = p.x.size();
        let (x, e) = (p.noise(&shape), p.noise2(&shape));
        let (mut s1, mut s2) = (PrePool(None), PrePool(None));
        let (out1, v1) = bn_stats::collect(|| net.forward(&x, BnStats::Batch, &mut s1));
        let (out2, v2) = bn_stats::collect(|| net.forward(&(&x + e * 0.01), BnStats::Batch, &mut s2));
        let _ = out1?;
        let _ = out2?;
        let (Some(a), Some(b)) = (s1.0, s2.0) else {
            bail!("this network has no global pooling before a classifier (zen reads the map it pools)")
        };
        let v = zen_score(&a, &b, &v1, &v2);
        Ok(Measure::value(super::nan_as_lowest(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zen_by_hand() {
        // two inputs; L1 distances 2 and 4 -> log 3; one BN with batch
        // variances 1 and 1 -> running 1 -> log 1 = 0
        let a = Tensor::from_slice(&[1.0f32, 1., 0., 0.]).view([2, 2]);
        let b = Tensor::from_slice(&[0.0f32, 0., 2., 2.]).view([2, 2]);
        let one = [Tensor::from_slice(&[1.0f64])];
        assert!((zen_score(&a, &b, &one, &one) - 3f64.ln()).abs() < 1e-12);
        // variances 0: running 0.81 -> + log 0.9
        let zero = [Tensor::from_slice(&[0.0f64])];
        assert!((zen_score(&a, &b, &zero, &zero) - 3f64.ln() - 0.9f64.ln()).abs() < 1e-12);
    }
}
