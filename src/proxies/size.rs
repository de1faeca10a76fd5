//! Size proxies: `params` (trainable values), `flops` (multiply-adds of one
//! input) and `l2_norm` (NASLib: the sum of every Conv2d/Linear weight's
//! Frobenius norm at PyTorch's default init; no data).

use super::{Measure, Needs, Probe, Proxy};
use crate::nets::Init;
use crate::nets::{layers::flops, BnStats, NoProbe};
use anyhow::Result;

/// Trainable values (every parameter, as NATS-Bench's `params`).
#[derive(Debug, Clone, Copy)]
pub struct ParamCount;

impl Proxy for ParamCount {
    fn name(&self) -> &'static str {
        "params"
    }
    fn needs(&self) -> Needs {
        Needs { batch: Some(2), labels: false, classifier: false }
    }
    fn reads_inputs(&self) -> bool {
        false // only the batch's shape
    }
    fn score(&self, p: &Probe) -> Result<Measure> {
        Ok(Measure::value((p.build)(Init::Default)?.params().count() as f64))
    }
}

/// Multiply-adds of Conv2d and Linear layers for one input (as NATS-Bench
/// and pycls count FLOPs), from a forward pass of the batch's first input
/// with BatchNorm off (the count depends on neither).
#[derive(Debug, Clone, Copy)]
pub struct Flops;

impl Proxy for Flops {
    fn name(&self) -> &'static str {
        "flops"
    }
    fn needs(&self) -> Needs {
        Needs { batch: Some(2), labels: false, classifier: false }
    }
    fn reads_inputs(&self) -> bool {
        false // only the batch's shape
    }
    fn score(&self, p: &Probe) -> Result<Measure> {
        let net = (p.build)(Init::Default)?;
        let _guard = tch::no_grad_guard();
        let (out, n) = flops::count(|| net.forward(&p.x.narrow(0, 0, 1), BnStats::Off, &mut NoProbe));
        let _ = out?;
        Ok(Measure::value(n))
    }
}

/// NASLib's `l2_norm`: the sum over Conv2d/Linear layers of each weight's
/// Frobenius norm (PyTorch's default init; no forward pass).
#[derive(Debug, Clone, Copy)]
pub struct L2Norm;

impl Proxy for L2Norm {
    fn name(&self) -> &'static str {
        "l2_norm"
    }
    fn needs(&self) -> Needs {
        Needs { batch: Some(2), labels: false, classifier: false }
    }
    fn reads_inputs(&self) -> bool {
        false // only the batch's shape
    }
    fn score(&self, p: &Probe) -> Result<Measure> {
        let net = (p.build)(Init::Default)?;
        let v =
            net.params().layer_weights().iter().map(|w| w.to_kind(tch::Kind::Double).norm().double_value(&[])).sum();
        Ok(Measure::value(v))
    }
}
