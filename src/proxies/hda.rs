//! HDA's maths (the protocol is [`crate::hda`]): gamma = the smallest positive
//! `(m_i - m_j)^2 / (2 (s_i^2 + s_j^2))` over networks and pairs of raw rows,
//! with m and s^2 each row's mean and population variance.

use super::kernel::rows_f64;
use crate::nets::{BnStats, Net, Sink};
use serde::Serialize;
use tch::{Kind, Tensor};

/// Streamed per-row mean and variance (Chan et al.'s pairwise update, f64).
#[derive(Debug, Clone)]
pub struct RowMoments {
    count: f64,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

impl RowMoments {
    /// Empty moments for `n` rows.
    pub fn new(n: usize) -> Self {
        Self { count: 0.0, mean: vec![0.0; n], m2: vec![0.0; n] }
    }

    /// Adds a block of columns (`[N, L]` once flattened).
    pub fn add(&mut self, out: &Tensor) {
        let m = rows_f64(out);
        let l = m.size()[1] as f64;
        if l == 0.0 {
            return;
        }
        let mean_t = m.mean_dim([1i64].as_slice(), true, Kind::Double);
        let centred = &m - &mean_t;
        let m2_t = (&centred * &centred).sum_dim_intlist([1i64].as_slice(), false, Kind::Double);
        let means = Vec::<f64>::try_from(mean_t.reshape([-1])).unwrap_or_default();
        let m2s = Vec::<f64>::try_from(m2_t).unwrap_or_default();
        let total = self.count + l;
        for (i, (mb, m2b)) in means.into_iter().zip(m2s).enumerate() {
            let delta = mb - self.mean[i];
            self.mean[i] += delta * l / total;
            self.m2[i] += m2b + delta * delta * self.count * l / total;
        }
        self.count = total;
    }

    /// Candidates for the pairs (0,1), (0,2), ..., (1,2), ...; `None` where
    /// both variances are zero (the reference skips those).
    pub fn candidates(&self) -> Vec<Option<f64>> {
        let n = self.mean.len();
        let var: Vec<f64> = self.m2.iter().map(|m2| m2 / self.count).collect();
        let mut out = Vec::new();
        for i in 0..n {
            for j in i + 1..n {
                let d = self.mean[i] - self.mean[j];
                let s = var[i] + var[j];
                out.push((s != 0.0).then(|| d * d / (s * 2.0)));
            }
        }
        out
    }
}

/// A [`Sink`] collecting both sides' row moments.
#[derive(Debug)]
pub struct HdaSink {
    /// Activation side.
    pub k: RowMoments,
    /// Final-layer side.
    pub q: RowMoments,
}

impl Sink for HdaSink {
    fn activation(&mut self, out: &Tensor) {
        self.k.add(out);
    }
    fn last_input(&mut self, out: &Tensor) {
        self.q.add(out);
    }
}

/// One network's HDA candidates.
#[derive(Debug, Clone, Serialize)]
pub struct Candidates {
    /// Pair candidates of the activation side (`null` where undefined).
    pub cand_k: Vec<Option<f64>>,
    /// Pair candidates of the final-layer side.
    pub cand_q: Vec<Option<f64>>,
}

/// HDA candidates of one network, forwarding the N images as one batch (train-
/// mode BN over the batch) as the reference's HDA.py does.
pub fn candidates(net: &dyn Net, x: &Tensor) -> anyhow::Result<Candidates> {
    let n = x.size()[0] as usize;
    let _guard = tch::no_grad_guard();
    let mut sink = HdaSink { k: RowMoments::new(n), q: RowMoments::new(n) };
    let _ = net.forward(x, BnStats::Batch, &mut sink)?;
    Ok(Candidates { cand_k: sink.k.candidates(), cand_q: sink.q.candidates() })
}

/// The smallest positive candidate, if any (subnormal ones, which no
/// kernel can use, left out).
pub fn min_positive<'a>(cands: impl IntoIterator<Item = &'a Option<f64>>) -> Option<f64> {
    cands
        .into_iter()
        .flatten()
        .copied()
        .filter(|c| *c > 0.0 && c.is_normal())
        .fold(None, |acc: Option<f64>, c| Some(acc.map_or(c, |a| a.min(c))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_match_hand_computation() {
        // rows: [1,3] (mean 2, var 1), [2,2] (mean 2, var 0), [5,7] (mean 6, var 1)
        let mut m = RowMoments::new(3);
        // streamed in two blocks of one column each
        m.add(&Tensor::from_slice(&[1.0f32, 2.0, 5.0]).reshape([3, 1]));
        m.add(&Tensor::from_slice(&[3.0f32, 2.0, 7.0]).reshape([3, 1]));
        let c = m.candidates();
        // (0,1): 0/(2*1) = 0; (0,2): 16/(2*2) = 4; (1,2): 16/(2*1) = 8
        assert_eq!(c, vec![Some(0.0), Some(4.0), Some(8.0)]);
        assert_eq!(min_positive(&c), Some(4.0));
        let mut flat = RowMoments::new(2);
        flat.add(&Tensor::from_slice(&[1.0f32, 1.0]).reshape([2, 1]));
        assert_eq!(flat.candidates(), vec![None]);
        assert_eq!(min_positive(&flat.candidates()), None);
    }
}
