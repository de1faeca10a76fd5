//! The RBFleX-NAS score: `N * (log|det K| + log|det Q|)` with RBF kernels over
//! the column-normalised activations (K) and final-layer inputs (Q).

use super::kernel::{logabsdet, KernelSums};
use super::{Columns, Measure, Needs, Probe, Proxy};
use crate::nets::{BnStats, Net, Sink};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// The paper's fixed gamma for the activation kernel.
pub const GAMMA_K: f64 = 2.68690173088039e-12;
/// The paper's fixed gamma for the final-layer kernel.
pub const GAMMA_Q: f64 = 1.02460061284506e-11;

/// Kernel widths.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Gammas {
    /// Gamma of the activation kernel K.
    pub gamma_k: f64,
    /// Gamma of the final-layer kernel Q.
    pub gamma_q: f64,
}

impl Gammas {
    /// Checks both gammas: positive normal floats (a subnormal or zero
    /// gamma makes every kernel entry exp(-0) = 1, a singular kernel).
    pub fn check(&self) -> Result<()> {
        for (name, g) in [("--gamma-k", self.gamma_k), ("--gamma-q", self.gamma_q)] {
            if !(g.is_normal() && g > 0.0) {
                anyhow::bail!(
                    "{name} must be a positive number (a normal float, {:e} to {:e}), got {g:e}",
                    f64::MIN_POSITIVE,
                    f64::MAX
                );
            }
        }
        Ok(())
    }
}

impl Default for Gammas {
    fn default() -> Self {
        Self { gamma_k: GAMMA_K, gamma_q: GAMMA_Q }
    }
}

/// One network's score and its parts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// `N * (logdet_k + logdet_q)`; `-inf` when a kernel is singular.
    pub score: f64,
    /// `log|det K|`.
    pub logdet_k: f64,
    /// `log|det Q|`.
    pub logdet_q: f64,
    /// Captured activation values per image (L_A).
    pub la: i64,
    /// Final-layer input values per image (L_Q).
    pub lq: i64,
    /// Whether some activation was NaN or infinite (the score is then `-inf`).
    pub nonfinite: bool,
    /// Whether two inputs gave identical rows in a kernel (at zero
    /// distance: that kernel is singular whatever the gamma).
    #[serde(default)]
    pub identical_rows: bool,
}

/// A [`Sink`] that streams both kernels' sums.
#[derive(Debug)]
pub struct RbflexSink {
    /// Activation side.
    pub k: KernelSums,
    /// Final-layer side.
    pub q: KernelSums,
}

impl RbflexSink {
    /// Empty sums for `n` images.
    pub fn new(n: usize) -> Self {
        Self { k: KernelSums::new(n), q: KernelSums::new(n) }
    }

    /// The score from the accumulated sums.
    pub fn finish(&self, n: usize, g: Gammas) -> Score {
        let nonfinite = self.k.nonfinite() || self.q.nonfinite();
        let logdet_k = logabsdet(&self.k.kernel(g.gamma_k), n);
        let logdet_q = logabsdet(&self.q.kernel(g.gamma_q), n);
        let mut score = n as f64 * (logdet_k + logdet_q);
        if nonfinite || score.is_nan() {
            score = f64::NEG_INFINITY;
        }
        let identical_rows = self.k.identical_rows() || self.q.identical_rows();
        Score { score, logdet_k, logdet_q, la: self.k.len, lq: self.q.len, nonfinite, identical_rows }
    }
}

impl Sink for RbflexSink {
    fn activation(&mut self, out: &Tensor) {
        self.k.add(out);
    }
    fn activation_again(&mut self, out: &Tensor) {
        self.k.add_again(out);
    }
    fn last_input(&mut self, out: &Tensor) {
        self.q.add(out);
    }
}

/// Scores a network on a batch `x` (`[N, C, H, W]`), forwarding each image
/// alone as the reference does (train-mode BN with that image's statistics).
pub fn score(net: &dyn Net, x: &Tensor, g: Gammas) -> Result<Score> {
    let _guard = tch::no_grad_guard();
    let n = x.size()[0] as usize;
    let mut sink = RbflexSink::new(n);
    let _ = net.forward(x, BnStats::PerImage, &mut sink)?;
    Ok(sink.finish(n, g))
}

/// RBFleX as a [`Proxy`]: the run's `--batch` images, no labels, the score
/// and its parts in the columns the first versions of `scores.csv` had.
#[derive(Debug, Clone, Copy)]
pub struct Rbflex {
    /// Kernel widths.
    pub gammas: Gammas,
}

impl Proxy for Rbflex {
    fn name(&self) -> &'static str {
        "rbflex"
    }
    fn needs(&self) -> Needs {
        Needs { batch: None, labels: false, classifier: false }
    }
    fn settings(&self) -> serde_json::Value {
        serde_json::json!({ "gamma_k": self.gammas.gamma_k, "gamma_q": self.gammas.gamma_q })
    }
    fn columns(&self) -> Columns {
        let parts = ["logdet_k", "logdet_q", "la", "lq"].iter().map(|s| s.to_string()).collect();
        Columns { value: "score".into(), parts, seconds: "seconds".into() }
    }
    fn score(&self, p: &Probe) -> Result<Measure> {
        let net = (p.build)(super::Init::Default)?;
        let s = score(net.as_ref(), p.x, self.gammas)?;
        let note = if s.nonfinite {
            Some("some activations were NaN or infinite; the score is -inf".to_string())
        } else if s.score == f64::NEG_INFINITY && s.identical_rows {
            Some("a kernel is singular (two inputs give identical rows); the score is -inf and ranks last".to_string())
        } else if s.score == f64::NEG_INFINITY {
            Some(format!(
                "a kernel is singular at gamma_k {:e}, gamma_q {:e} (its entries round to equal values); the score is \
                 -inf and ranks last",
                self.gammas.gamma_k, self.gammas.gamma_q
            ))
        } else {
            None
        };
        Ok(Measure { value: s.score, parts: vec![s.logdet_k, s.logdet_q, s.la as f64, s.lq as f64], note })
    }
}
