//! SWAP (Peng et al., ICLR 2024, "SWAP-NAS: Sample-Wise Activation Patterns
//! for Ultra-fast NAS"; pym1024/SWAP `src/metrics/swap.py`,
//! `correlation.py`): a batch of 16 real images (no labels) through the
//! network with Gaussian weights (Conv/Linear N(0, 1), biases 0, BatchNorm 1
//! and 0) and train-mode BatchNorm. Every ReLU output on a 4-D map is
//! flattened per image and concatenated into `[N, neurons]`; its sign
//! (0 or 1) gives each neuron an N-bit pattern over the images; the value is
//! the number of distinct patterns, averaged over 32 draws of the weights
//! (the reference's `--repeats 32`, re-initialising before each).
//!
//! Not ported: the regularised SWAP (`regular=True`: the count times
//! `exp(-(params/1e3 - mu)^2 / sigma)`), whose `mu` and `sigma` per space are
//! not in the public code. A ReLU output reported again (a node read by
//! several edges) adds only neurons with patterns already counted, so
//! repeats are skipped.

use super::{Measure, Needs, Probe, Proxy};
use crate::nets::Init;
use crate::nets::{BnStats, Sink};
use anyhow::Result;
use tch::{Kind, Tensor};

/// The SWAP proxy.
#[derive(Debug, Clone, Copy)]
pub struct Swap;

/// Weight draws averaged (the reference's `--repeats`).
pub const REPEATS: i64 = 32;

/// The sample-wise patterns of the ReLU outputs of one pass.
#[derive(Default)]
pub struct Patterns {
    /// Per ReLU output, each neuron's pattern as `[words, neurons]` int64
    /// (bit n of word n / 64 for image n).
    keys: Vec<Tensor>,
    /// Whether the pre-pooling map (when reported) had a non-zero value.
    pub live: Option<bool>,
}

impl Patterns {
    /// Distinct patterns seen.
    pub fn count(&self) -> usize {
        if self.keys.is_empty() {
            return 0;
        }
        let all = Tensor::cat(&self.keys, 1);
        if all.size()[0] == 1 {
            let (u, _) = all.get(0).internal_unique(false, false);
            u.size()[0] as usize
        } else {
            let (u, _, _) = all.unique_dim(1, false, false, false);
            u.size()[1] as usize
        }
    }
}

impl Sink for Patterns {
    fn activation(&mut self, out: &Tensor) {
        if out.dim() != 4 {
            return;
        }
        let n = out.size()[0];
        let on = out.view([n, -1]).gt(0.0).to_kind(Kind::Int64);
        let words = (n + 63) / 64;
        let mut rows = Vec::new();
        for w in 0..words {
            let k = (n - w * 64).min(64);
            let shifts = Tensor::arange(k, (Kind::Int64, out.device())).unsqueeze(1);
            let bits = on.narrow(0, w * 64, k).bitwise_left_shift(&shifts);
            // distinct bits: the sum is their OR (bit 63 wraps to the sign)
            rows.push(bits.sum_dim_intlist([0i64].as_slice(), false, Kind::Int64));
        }
        self.keys.push(Tensor::stack(&rows, 0));
    }
    fn activation_again(&mut self, _out: &Tensor) {}
    fn block_output(&mut self, _out: &Tensor) {}
    fn pre_pool(&mut self, out: &Tensor) {
        self.live = Some(out.ne(0.0).any().int64_value(&[]) != 0);
    }
}

/// The note of a network whose map before global pooling is all zero.
pub const DEAD: &str = "the map before global pooling is all zero: the network's output ignores its input";

impl Proxy for Swap {
    fn memory_per_input_value(&self) -> u64 {
        // peak RSS 191 MB at 16 x 3 x 32 x 32 (`bench --jobs 1 --proxy swap`)
        1500
    }
    fn name(&self) -> &'static str {
        "swap"
    }
    fn needs(&self) -> Needs {
        Needs { batch: Some(16), labels: false, classifier: false }
    }
    fn settings(&self) -> serde_json::Value {
        serde_json::json!({ "repeats": REPEATS })
    }
    fn score(&self, p: &Probe) -> Result<Measure> {
        let net = (p.build)(Init::Gaussian)?;
        let _guard = tch::no_grad_guard();
        let mut total = 0.0;
        for r in 0..REPEATS {
            if r > 0 {
                crate::nets::seeded(p.seed ^ (0x5a00_0000_0000 + r), || net.reinit(Init::Gaussian))?;
            }
            let mut sink = Patterns::default();
            let _ = net.forward(p.x, BnStats::Batch, &mut sink)?;
            if sink.live == Some(false) {
                return Ok(Measure { value: f64::NEG_INFINITY, parts: Vec::new(), note: Some(DEAD.into()) });
            }
            total += sink.count() as f64;
        }
        Ok(Measure::value(total / REPEATS as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_count_distinct_neuron_codes() {
        // 3 images, one ReLU map [3, 1, 2, 2]: neurons (columns) codes over
        // the images: (1,1,0), (0,0,0), (1,1,0), (0,1,1) -> 3 distinct
        let a = Tensor::from_slice(&[2.0f32, 0., 1., 0., 5., 0., 3., 1., 0., 0., 0., 4.]).view([3, 1, 2, 2]);
        let mut s = Patterns::default();
        s.activation(&a);
        assert_eq!(s.count(), 3);
        // a second map adds a new code (1,0,1) and a known one (0,0,0)
        s.activation(&Tensor::from_slice(&[1.0f32, 0., 0., 0., 1., 0.]).view([3, 1, 1, 2]));
        assert_eq!(s.count(), 4);
        // 2-D outputs (not a ReLU on a 4-D map) are not counted
        s.activation(&Tensor::from_slice(&[1.0f32, 1., 1.]).view([3, 1]));
        assert_eq!(s.count(), 4);
    }

    #[test]
    fn patterns_of_more_than_64_images_use_several_words() {
        // 70 images, 3 neurons: image 65 alone tells neurons 0 and 1 apart
        let mut v = vec![0.0f32; 70 * 3];
        v[65 * 3] = 1.0;
        v[2] = 1.0;
        let mut s = Patterns::default();
        s.activation(&Tensor::from_slice(&v).view([70, 3, 1, 1]));
        assert_eq!(s.count(), 3);
    }
}
