//! NASWOT (Mellor et al., ICML 2021; BayesWatch/nas-without-training) as
//! AZ-NAS' NB201 code runs it: Kaiming-normal (fan-in) init, a batch of 64
//! standard-normal inputs, train-mode BatchNorm. Every ReLU output gives each
//! input a binary code c (value > 0); K += c c^T + (1 - c)(1 - c)^T over all
//! ReLUs; score = log|det K|.

use super::{Measure, Needs, Probe, Proxy};
use crate::nets::Init;
use crate::nets::{BnStats, Sink};
use anyhow::Result;
use tch::{Kind, Tensor};

/// NASWOT's name on the command line.
pub const NAME: &str = "naswot";

/// NASWOT's value from a kernel summed over a forward pass (`-inf` for NaN).
pub fn value_of(k: &CodeKernel) -> f64 {
    super::nan_as_lowest(k.logdet())
}

/// The NASWOT proxy.
#[derive(Debug, Clone, Copy)]
pub struct Naswot;

/// Sums the Hamming-similarity kernel of every ReLU's binary codes.
pub struct CodeKernel {
    /// `[N, N]` float64.
    pub k: Tensor,
}

impl CodeKernel {
    /// An empty kernel for `n` inputs.
    pub fn new(n: i64) -> Self {
        Self { k: Tensor::zeros([n, n], (Kind::Double, tch::Device::Cpu)) }
    }

    /// log|det K| (sign ignored, as `np.linalg.slogdet(K)[1]`).
    pub fn logdet(&self) -> f64 {
        let (_, logabs) = Tensor::linalg_slogdet(&self.k);
        logabs.double_value(&[])
    }
}

impl Sink for CodeKernel {
    /// Adds `c c^T + (1 - c)(1 - c)^T = L - s_i - s_j + 2 (c c^T)_ij` (s the
    /// rows' counts of ones, L their length): one float32 product, exact for
    /// fewer than 2^24 units, summed in float64.
    fn activation(&mut self, out: &Tensor) {
        let n = out.size()[0];
        let c = out.reshape([n, -1]).gt(0.0).to_kind(Kind::Float);
        let len = c.size()[1] as f64;
        let both = c.mm(&c.tr()).to_kind(Kind::Double);
        let s = c.sum_dim_intlist([1i64].as_slice(), false, Kind::Double);
        self.k += (both * 2.0 - s.unsqueeze(0) - s.unsqueeze(1) + len).to_device(self.k.device());
    }
    /// ReLUConvBN's output is a BatchNorm output, not a ReLU's.
    fn block_output(&mut self, _out: &Tensor) {}
}

impl Proxy for Naswot {
    fn memory_per_input_value(&self) -> u64 {
        600
    }
    fn name(&self) -> &'static str {
        NAME
    }
    fn needs(&self) -> Needs {
        Needs { batch: Some(64), labels: false, classifier: false }
    }
    fn reads_inputs(&self) -> bool {
        false // only the batch's shape
    }
    fn score(&self, p: &Probe) -> Result<Measure> {
        if let Some(v) = p.yielded(NAME) {
            return Ok(Measure::value(v));
        }
        let net = (p.build)(Init::KaimingNormalFanIn)?;
        let _guard = tch::no_grad_guard();
        let x = p.noise(&p.x.size());
        let mut sink = CodeKernel::new(x.size()[0]);
        let _ = net.forward(&x, BnStats::Batch, &mut sink)?;
        Ok(Measure::value(value_of(&sink)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_counts_agreeing_codes() {
        // codes of three inputs over 4 units: 1100, 1010, 1100
        let a = Tensor::from_slice(&[1.0f32, 1., -1., -1., 1., -1., 1., -1., 2., 3., 0., -5.]).view([3, 4]);
        let mut k = CodeKernel::new(3);
        k.activation(&a);
        let got = Vec::<f64>::try_from(k.k.view([-1])).unwrap();
        // agreements: (0,1) = 2, (0,2) = 4, (1,2) = 2; diagonal = 4
        assert_eq!(got, vec![4., 2., 4., 2., 4., 2., 4., 2., 4.]);
        // det [[4,2,4],[2,4,2],[4,2,4]] = 0 (rows 0 and 2 equal): -inf
        assert_eq!(k.logdet(), f64::NEG_INFINITY);
        let mut k2 = CodeKernel::new(2);
        k2.activation(&Tensor::from_slice(&[1.0f32, -1., 1., 1.]).view([2, 2]));
        // [[2,1],[1,2]]: det 3
        assert!((k2.logdet() - 3f64.ln()).abs() < 1e-12);
    }
}
