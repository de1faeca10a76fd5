//! AZ-NAS (Lee & Ham, CVPR 2024; cvlab-yonsei/AZ-NAS,
//! `NB201/ZeroShotProxy/compute_az_nas_score.py`): four proxies from one
//! forward pass of 64 standard-normal inputs through the network with
//! Kaiming-normal (fan-in) weights and train-mode BatchNorm, over the
//! feature maps between stages (the stem's output, then every cell's):
//!
//! * expressivity: the sum over maps of the entropy of the normalised
//!   eigenvalues of the channel covariance (pixels of all inputs as samples);
//! * progressivity: the smallest increase of that entropy from one map to the next;
//! * trainability: the mean over consecutive maps of `2 - s - 1/(s + 1e-6)`,
//!   s the largest singular value of the channel-by-channel product of a
//!   random +-1 output gradient and its back-propagated input gradient
//!   (pixel-unshuffled across a stride), `-inf` for an identity stage;
//! * complexity: the network's FLOPs (multiply-adds per input).
//!
//! `az` (an [`super::Aggregate`]) sums `ln(rank / n)` of the four over the
//! candidates. Products in float32 as the reference, eigenvalues in float64.

use super::naswot::CodeKernel;
use super::{Measure, Needs, Probe, Proxy};
use crate::nets::Init;
use crate::nets::{layers::flops, BnStats, Sink};
use anyhow::{bail, Result};
use tch::{Kind, Tensor};

/// Which of the four.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Sum of eigen-entropies.
    Expressivity,
    /// Smallest entropy step.
    Progressivity,
    /// Mean spectral closeness to 1 of the stage Jacobians.
    Trainability,
    /// FLOPs.
    Complexity,
}

/// One AZ-NAS proxy; the four share one computation per network.
#[derive(Debug, Clone, Copy)]
pub struct AzPart(pub Part);

/// The four values of one network, in [`Part`] order.
const KEY: &str = "az";

/// The maps between stages, and NASWOT's code kernel when it is asked for
/// (its protocol is this pass's: Kaiming-normal fan-in init, the same 64
/// noise inputs, train-mode BatchNorm; grad mode changes no forward value).
struct Features {
    maps: Vec<Tensor>,
    codes: Option<CodeKernel>,
}

impl Sink for Features {
    fn feature(&mut self, out: &Tensor) {
        self.maps.push(out.shallow_clone());
    }
    fn activation(&mut self, out: &Tensor) {
        if let Some(k) = &mut self.codes {
            k.activation(out);
        }
    }
    fn activation_again(&mut self, out: &Tensor) {
        if let Some(k) = &mut self.codes {
            k.activation_again(out);
        }
    }
    fn block_output(&mut self, out: &Tensor) {
        if let Some(k) = &mut self.codes {
            k.block_output(out);
        }
    }
}

/// `f`'s values as one row per position and a column per channel, and the
/// row count: a feature map `[b, c, h, w]` (channels second), a token map
/// `[b, l, d]` (channels last, as AZ-NAS' transformer code reads tokens) or
/// `[b, d]`.
fn channel_rows(f: &Tensor) -> Result<(Tensor, i64)> {
    let s = f.size();
    let t = match s.len() {
        4 => f.permute([0, 2, 3, 1]).reshape([s[0] * s[2] * s[3], s[1]]),
        3 => f.reshape([s[0] * s[1], s[2]]),
        2 => f.shallow_clone(),
        _ => bail!("AZ-NAS reads feature maps [N, C, H, W], token maps [N, L, D] or [N, D]; a stage gave {s:?}"),
    };
    let rows = t.size()[0];
    Ok((t, rows))
}

/// Entropy of the normalised eigenvalues of the channel covariance of `f`
/// (see [`channel_rows`] for the layouts).
pub fn eigen_entropy(f: &Tensor) -> Result<f64> {
    let (x, rows) = channel_rows(&f.detach())?;
    // centred and multiplied in float32 as the reference; the eigenvalues in float64
    let x = &x - x.mean_dim([0i64].as_slice(), true, Kind::Float);
    let sigma = x.tr().mm(&x).to_kind(Kind::Double) / rows as f64;
    let ev = sigma.linalg_eigvalsh("L");
    let p = &ev / ev.sum(Kind::Double);
    Ok((-(&p * (&p + 1e-8).log())).sum(Kind::Double).double_value(&[]))
}

/// `2 - s - 1 / (s + 1e-6)` for the stage mapping `f_in` to `f_out`
/// (`-inf` when the back-propagated gradient equals the random one).
fn stage_trainability(f_in: &Tensor, f_out: &Tensor, g_out: &Tensor) -> Result<f64> {
    let grads = super::backward(&[(f_out * g_out).sum(Kind::Float)], std::slice::from_ref(f_in), false)?;
    let Some(g_in) = grads.into_iter().next().flatten() else { return Ok(f64::NEG_INFINITY) };
    if g_in.size() == g_out.size() && g_in.equal(g_out) {
        return Ok(f64::NEG_INFINITY);
    }
    let (so, si) = (g_out.size(), g_in.size());
    // a stride: the input's pixels unshuffled onto the output's positions
    let g_in =
        if so.len() == 4 && si.len() == 4 && si[2] != so[2] { g_in.pixel_unshuffle(si[2] / so[2]) } else { g_in };
    let (go, rows) = channel_rows(g_out)?;
    let (gi, rows_in) = channel_rows(&g_in)?;
    if rows_in != rows {
        bail!(
            "AZ-NAS' trainability pairs each position of a stage's output with its input's; a stage maps {si:?} to \
             {so:?} (name stages whose outputs keep the positions)"
        );
    }
    let m = gi.tr().mm(&go).to_kind(Kind::Double) / rows as f64;
    // the largest singular value, as the root of M^T M's largest eigenvalue
    // (libtorch's svdvals takes no driver on the CPU through tch)
    let smax = m.tr().mm(&m).linalg_eigvalsh("L").max().double_value(&[]).max(0.0).sqrt();
    Ok(-smax - 1.0 / (smax + 1e-6) + 2.0)
}

/// All four values of one network.
pub fn az_values(p: &Probe) -> Result<[f64; 4]> {
    let net = (p.build)(Init::KaimingNormalFanIn)?;
    net.params().set_requires_grad(true);
    let x = p.noise(&p.x.size());
    let codes = p.is_pending(super::naswot::NAME).then(|| CodeKernel::new(x.size()[0]));
    let mut sink = Features { maps: Vec::new(), codes };
    let (out, macs) = flops::count(|| net.forward(&x, BnStats::Batch, &mut sink));
    let _ = out?;
    if let Some(k) = &sink.codes {
        p.yield_value(super::naswot::NAME, super::naswot::value_of(k));
    }
    let f = sink.maps;
    let e: Vec<f64> = f.iter().map(eigen_entropy).collect::<Result<_>>()?;
    let expressivity = super::nan_as_lowest(e.iter().sum());
    // NaN anywhere (an all-zero map) makes it NaN, as numpy's min does
    let steps = e.windows(2).map(|w| w[1] - w[0]);
    let progressivity =
        super::nan_as_lowest(
            steps.fold(f64::INFINITY, |a, b| if a.is_nan() || b.is_nan() { f64::NAN } else { a.min(b) }),
        );
    let mut t = Vec::new();
    for i in (1..f.len()).rev() {
        let g_out = crate::nets::seed::signs_like(p.seed ^ (0x7a00_0000_0000 + i as i64), &f[i]);
        t.push(stage_trainability(&f[i - 1], &f[i], &g_out)?);
    }
    let trainability = super::nan_as_lowest(t.iter().sum::<f64>() / t.len().max(1) as f64);
    Ok([expressivity, progressivity, trainability, macs / x.size()[0] as f64])
}

impl Proxy for AzPart {
    fn memory_per_input_value(&self) -> u64 {
        2600
    }
    fn name(&self) -> &'static str {
        match self.0 {
            Part::Expressivity => "az_expressivity",
            Part::Progressivity => "az_progressivity",
            Part::Trainability => "az_trainability",
            Part::Complexity => "az_complexity",
        }
    }
    fn needs(&self) -> Needs {
        Needs { batch: Some(64), labels: false, classifier: false }
    }
    fn reads_inputs(&self) -> bool {
        false // only the batch's shape
    }
    fn also_yields(&self) -> &'static [&'static str] {
        &[super::naswot::NAME]
    }
    fn score(&self, p: &Probe) -> Result<Measure> {
        let cached = p.shared.borrow().get(KEY).cloned();
        let v = match cached {
            Some(v) => v,
            None => {
                let v = az_values(p)?.to_vec();
                p.shared.borrow_mut().insert(KEY, v.clone());
                v
            }
        };
        Ok(Measure::value(v[self.0 as usize]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_of_isotropic_and_rank_one_features() {
        // two channels, independent +-1 patterns: covariance I, eigenvalues
        // (1, 1): entropy ln 2 (minus the 1e-8 guard's effect)
        let f = Tensor::from_slice(&[1.0f32, -1., 1., -1., 1., 1., -1., -1.]).view([1, 2, 2, 2]);
        assert!((eigen_entropy(&f).unwrap() - 2f64.ln()).abs() < 1e-7);
        // identical channels: eigenvalues (0, 2): entropy 0
        let g = Tensor::from_slice(&[1.0f32, -1., 1., -1., 1., -1., 1., -1.]).view([1, 2, 2, 2]);
        assert!(eigen_entropy(&g).unwrap().abs() < 1e-7);
        // the same four positions as tokens [1, 4, 2] (channels last): ln 2
        let tokens = f.permute([0, 2, 3, 1]).reshape([1, 4, 2]);
        assert!((eigen_entropy(&tokens).unwrap() - 2f64.ln()).abs() < 1e-7);
        let e = eigen_entropy(&f.unsqueeze(0)).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            e,
            "AZ-NAS reads feature maps [N, C, H, W], token maps [N, L, D] or [N, D]; a stage gave [1, 1, 2, 2, 2]"
        );
    }

    #[test]
    fn a_stage_that_changes_the_positions_is_named() {
        // [1, 2, 2, 2] (4 positions) -> [1, 3, 2] tokens (3 positions)
        let f0 = Tensor::ones([1, 2, 2, 2], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
        let f1 = f0.reshape([1, 2, 4]).narrow(2, 0, 3).transpose(1, 2) * 2.0;
        let g = Tensor::ones([1, 3, 2], (Kind::Float, tch::Device::Cpu));
        let e = stage_trainability(&f0, &f1, &g).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.starts_with("AZ-NAS' trainability pairs each position of a stage's output with its input's; a stage maps [1, 2, 2, 2] to [1, 3, 2]"), "{e}");
    }

    /// f0 = w x (two channels of the input, w a parameter equal to 1), f1 =
    /// a 1x1 convolution (weights `c`, no bias) of f0, and, when `identity`,
    /// f2 = f1 + 0 (a stage passing its gradient unchanged).
    struct TwoStages {
        p: crate::nets::Params,
        w: Tensor,
        conv: crate::nets::layers::Conv2d,
        identity: bool,
    }

    impl crate::nets::Net for TwoStages {
        fn forward(&self, x: &Tensor, stats: BnStats, sink: &mut dyn Sink) -> anyhow::Result<Tensor> {
            let f0 = x * &self.w;
            sink.feature(&f0);
            let f1 = self.conv.forward(&f0, stats);
            sink.feature(&f1);
            if self.identity {
                let f2 = &f1 + 0.0;
                sink.feature(&f2);
                return Ok(f2);
            }
            Ok(f1)
        }
        fn params(&self) -> &crate::nets::Params {
            &self.p
        }
    }

    const C: [f32; 2] = [0.3, 0.4];

    /// The four values, and the noise input the pass drew (as the network
    /// saw it).
    fn az_of_two_stages(identity: bool) -> ([f64; 4], Tensor) {
        use crate::nets::layers::{Conv2d, ConvSpec};
        use crate::proxies::test_nets::{probe, set, Recorder, Seen};
        let seen = Seen::default();
        let build = |_: Init| -> Result<Box<dyn crate::nets::Net>> {
            let mut p = crate::nets::Params::new();
            let (w, _) = p.norm_affine("s", 1);
            let spec = ConvSpec { bias: false, ..ConvSpec::new(2, 1, 1, 1, 0) };
            let conv = Conv2d::new(&mut p, "c", spec);
            set(&p, &[&[1.0], &[0.0], &C]);
            Ok(Box::new(Recorder { inner: Box::new(TwoStages { p, w, conv, identity }), seen: seen.clone() }))
        };
        let x = Tensor::zeros([4, 2, 3, 3], (Kind::Float, tch::Device::Cpu));
        let shared = std::cell::RefCell::new(std::collections::BTreeMap::new());
        let p = Probe { classes: 0, seed: 3, ..probe(&build, &x, None, &shared) };
        let values = az_values(&p).unwrap();
        let x = seen.lock().unwrap()[0].shallow_clone();
        (values, x)
    }

    #[test]
    fn az_of_a_two_channel_map_and_a_1x1_convolution_is_closed_form() {
        let ([e, pr, t, c], x) = az_of_two_stages(false);
        // f0's channel covariance [[a, b], [b, d]] over the 36 pixels, by
        // hand; its eigenvalues in closed form; f1 has one channel: its
        // entropy is -ln(1 + 1e-8)
        let v = Vec::<f32>::try_from(x.permute([0, 2, 3, 1]).reshape([-1])).unwrap();
        let (c0, c1): (Vec<f64>, Vec<f64>) = (
            v.iter().step_by(2).map(|&u| f64::from(u)).collect(),
            v.iter().skip(1).step_by(2).map(|&u| f64::from(u)).collect(),
        );
        let mean = |u: &[f64]| u.iter().sum::<f64>() / u.len() as f64;
        let cov = |u: &[f64], w: &[f64]| {
            let (mu, mw) = (mean(u), mean(w));
            u.iter().zip(w).map(|(a, b)| (a - mu) * (b - mw)).sum::<f64>() / u.len() as f64
        };
        let (a, b, d) = (cov(&c0, &c0), cov(&c0, &c1), cov(&c1, &c1));
        let r = (((a - d) / 2.0).powi(2) + b * b).sqrt();
        let ev = [(a + d) / 2.0 + r, (a + d) / 2.0 - r];
        let e0: f64 = ev.iter().map(|l| l / (a + d)).map(|q| -q * (q + 1e-8).ln()).sum();
        let e1 = -(1.0f64 + 1e-8).ln();
        assert!((e - (e0 + e1)).abs() < 1e-6, "expressivity {e} vs {}", e0 + e1);
        assert!((pr - (e1 - e0)).abs() < 1e-6, "progressivity {pr} vs {}", e1 - e0);
        assert!(e0 > 0.1, "two independent noise channels: far from rank one, got entropy {e0}");
        // the input gradient of channel k is c_k times the random +-1 one:
        // M = (c_0, c_1)^T mean(g^2), s = |c| = 0.5
        assert!((t - (2.0 - 0.5 - 1.0 / (0.5 + 1e-6))).abs() < 1e-6, "trainability {t}");
        // 2 multiply-adds per pixel of f1 (3x3), per input
        assert_eq!(c, 18.0);
        // an identity stage (the gradient passes unchanged) makes the mean -inf
        assert_eq!(az_of_two_stages(true).0[2], f64::NEG_INFINITY);
    }
}
