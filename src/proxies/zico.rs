//! ZiCo (Li et al., ICLR 2023; SLDGroup/ZiCo `compute_zico.py`): PyTorch's
//! default init, two labelled batches (here the two halves of 128 images),
//! the cross-entropy gradient of every Conv2d/Linear weight on each; per
//! layer log(sum over weights of mean|g| / std(g)) over the two batches
//! (weights with zero spread skipped), summed over layers.

use super::{Measure, Needs, Probe, Proxy};
use crate::nets::Init;
use crate::nets::{BnStats, NoProbe};
use anyhow::Result;
use tch::{Kind, Tensor};

/// The ZiCo proxy.
#[derive(Debug, Clone, Copy)]
pub struct Zico;

/// ZiCo from each layer's gradients on the batches (`per_batch[b][layer]`).
pub fn zico_score(per_batch: &[Vec<Tensor>]) -> f64 {
    let layers = per_batch.first().map_or(0, Vec::len);
    let mut score = 0.0;
    for l in 0..layers {
        let g =
            Tensor::stack(&per_batch.iter().map(|b| b[l].to_kind(Kind::Double).reshape([-1])).collect::<Vec<_>>(), 0);
        let std = g.std_correction(Some([0i64].as_slice()), tch::Scalar::int(0), false);
        let mabs = g.abs().mean_dim([0i64].as_slice(), false, Kind::Double);
        let nz = std.ne(0.0);
        let tmp = (mabs.masked_select(&nz) / std.masked_select(&nz)).sum(Kind::Double).double_value(&[]);
        if tmp != 0.0 {
            score += tmp.ln();
        }
    }
    score
}

impl Proxy for Zico {
    fn memory_per_input_value(&self) -> u64 {
        // `bench --jobs 1 --networks 20 --proxy zico`: peak RSS 555 MB
        // against 124 MB for `--proxy params`, over 128 x 3 x 32 x 32 input
        // values: 1,096 bytes each (the 2,300 before held two networks of
        // two workers apart under the default budget)
        1200
    }
    fn name(&self) -> &'static str {
        "zico"
    }
    fn needs(&self) -> Needs {
        Needs { batch: Some(128), labels: true, classifier: true }
    }
    fn score(&self, p: &Probe) -> Result<Measure> {
        let net = (p.build)(Init::Default)?;
        net.params().set_requires_grad(true);
        let ws = net.params().layer_weights();
        let y = p.labels()?;
        let half = p.x.size()[0] / 2;
        let mut per_batch = Vec::new();
        for b in 0..2 {
            let (x, y) = (p.x.narrow(0, b * half, half), y.narrow(0, b * half, half));
            let loss = net.forward(&x, BnStats::Batch, &mut NoProbe)?.cross_entropy_for_logits(&y);
            per_batch.push(super::grads::grads(&loss, &ws, false)?);
        }
        let v = zico_score(&per_batch);
        Ok(Measure::value(super::nan_as_lowest(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zico_of_two_batches_by_hand() {
        // one layer, weights (a, b): batch gradients (1, 2) and (3, 2):
        // a: mean|g| 2, std 1; b: std 0 (skipped) -> ln(2)
        let b1 = vec![Tensor::from_slice(&[1.0f64, 2.0])];
        let b2 = vec![Tensor::from_slice(&[3.0f64, 2.0])];
        assert!((zico_score(&[b1, b2]) - 2f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn zico_of_one_linear_layer_over_two_labelled_halves() {
        use crate::proxies::test_nets::{close, one_linear, softmax};
        // halves (e1: class 0, e2: class 1) and (e1: 1, e2: 0); logits z_0 =
        // (0, 5), z_1 = (-3, 2.5); in a half, dCE/dW[k][j] = (softmax(z_j)[k]
        // - [y_j = k]) / 2. Per weight: mean |g| over the halves / their
        // (population) std, summed over the 4 weights; ln of the sum
        let x = Tensor::from_slice(&[1.0f32, 0., 0., 1., 1., 0., 0., 1.]).view([4, 2]);
        let y = Tensor::from_slice(&[0i64, 1, 1, 0]);
        let s = [softmax([0.0, 5.0]), softmax([-3.0, 2.5])];
        let grad = |labels: [usize; 2], k: usize, j: usize| (s[j][k] - f64::from(u8::from(labels[j] == k))) / 2.0;
        let mut sum = 0.0;
        for (k, j) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            let (a, b) = (grad([0, 1], k, j), grad([1, 0], k, j));
            let std = (a - b).abs() / 2.0;
            if std > 0.0 {
                sum += (a.abs() + b.abs()) / 2.0 / std;
            }
        }
        let shared = std::cell::RefCell::new(std::collections::BTreeMap::new());
        let p = crate::proxies::test_nets::probe(&one_linear, &x, Some(&y), &shared);
        close(Zico.score(&p).unwrap().value, sum.ln());
    }
}
