//! Tiny networks with fixed weights whose proxy values are worked out by
//! hand in the proxies' unit tests.

use crate::nets::layers::Linear;
use crate::nets::Init;
use crate::nets::{BnStats, Net, Params, Sink};
use anyhow::Result;
use tch::Tensor;

/// x -> Linear(2, 2) -> Linear(2, 1).
pub struct TwoLinear {
    p: Params,
    a: Linear,
    b: Linear,
}

impl Net for TwoLinear {
    fn forward(&self, x: &Tensor, _stats: BnStats, _sink: &mut dyn Sink) -> anyhow::Result<Tensor> {
        Ok(self.b.forward(&self.a.forward(x)))
    }
    fn params(&self) -> &Params {
        &self.p
    }
}

/// Fixed weights W1 = [[1, -2], [3, 0.5]], b1 = [-1, 2], W2 = [[0.25, -4]], b2 = [3].
pub fn two_linear() -> TwoLinear {
    let mut p = Params::new();
    let a = Linear::new(&mut p, "a", 2, 2);
    let b = Linear::new(&mut p, "b", 2, 1);
    set(&p, &[&flat(W), &B.map(|v| v as f32), &[0.25, -4.0], &[3.0]]);
    TwoLinear { p, a, b }
}

/// x -> Linear(2, 2) (two class logits), W = [[1, -2], [3, 0.5]], b = [-1, 2].
pub struct OneLinear {
    p: Params,
    a: Linear,
}

impl Net for OneLinear {
    fn forward(&self, x: &Tensor, _stats: BnStats, _sink: &mut dyn Sink) -> anyhow::Result<Tensor> {
        Ok(self.a.forward(x))
    }
    fn params(&self) -> &Params {
        &self.p
    }
}

/// The first Linear layer's weight, W = [[1, -2], [3, 0.5]].
pub const W: [[f64; 2]; 2] = [[1.0, -2.0], [3.0, 0.5]];
/// Its bias, b = [-1, 2].
pub const B: [f64; 2] = [-1.0, 2.0];

/// `W` row by row, in float32.
fn flat(w: [[f64; 2]; 2]) -> [f32; 4] {
    [w[0][0], w[0][1], w[1][0], w[1][1]].map(|v| v as f32)
}

/// Overwrites `p`'s tensors, in order, with `values`.
pub fn set(p: &Params, values: &[&[f32]]) {
    let _guard = tch::no_grad_guard();
    for ((_, t, _), v) in p.iter().zip(values) {
        t.shallow_clone().copy_(&Tensor::from_slice(v).view(t.size().as_slice()));
    }
}

/// [`OneLinear`] with `W` and `B` (any `Init`: the weights stay fixed).
pub fn one_linear(_: Init) -> Result<Box<dyn Net>> {
    let mut p = Params::new();
    let a = Linear::new(&mut p, "a", 2, 2);
    set(&p, &[&flat(W), &B.map(|v| v as f32)]);
    Ok(Box::new(OneLinear { p, a }))
}

/// Softmax of two logits, in float64.
pub fn softmax(z: [f64; 2]) -> [f64; 2] {
    let e = [z[0].exp(), z[1].exp()];
    [e[0] / (e[0] + e[1]), e[1] / (e[0] + e[1])]
}

/// The labelled batch e1 (class 0), e2 (class 1): logits z_0 = (0, 5),
/// z_1 = (-3, 2.5); mean cross-entropy, so dCE/dz_n = (softmax(z_n) -
/// onehot_n) / 2 =: g_n, and dCE/dW[k][j] = g_j[k] (input n is e_n).
pub fn labelled_batch() -> (Tensor, Tensor, [[f64; 2]; 2], [[f64; 2]; 2]) {
    let x = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0]).view([2, 2]);
    let y = Tensor::from_slice(&[0i64, 1]);
    let z = [[0.0, 5.0], [-3.0, 2.5]];
    let (s0, s1) = (softmax(z[0]), softmax(z[1]));
    let g = [[(s0[0] - 1.0) / 2.0, s0[1] / 2.0], [s1[0] / 2.0, (s1[1] - 1.0) / 2.0]];
    (x, y, z, g)
}

/// Equal up to float32 rounding of the network's terms (of order 0.1-5).
pub fn close(got: f64, want: f64) {
    assert!((got - want).abs() <= 1e-6 * want.abs().max(0.1), "{got} vs {want}");
}

/// The values a probe shares between passes.
pub type Shared = std::cell::RefCell<std::collections::BTreeMap<&'static str, Vec<f64>>>;

/// A probe of `build` on `x` (two classes, init seed 1, nothing pending).
pub fn probe<'a>(
    build: &'a dyn Fn(Init) -> Result<Box<dyn Net>>,
    x: &'a Tensor,
    labels: Option<&'a Tensor>,
    shared: &'a Shared,
) -> super::Probe<'a> {
    super::Probe { build, x, labels, classes: 2, seed: 1, shared, pending: &[] }
}

/// The inputs a network was run on, kept by [`Recorder`]: tests compare a
/// proxy with a hand computation on the very noise it drew (other tests'
/// threads draw from the global RNG too, so a second draw may differ).
pub type Seen = std::sync::Arc<std::sync::Mutex<Vec<Tensor>>>;

/// A network that records every input batch before running `inner`.
pub struct Recorder {
    /// The network run.
    pub inner: Box<dyn Net>,
    /// Where its inputs go.
    pub seen: Seen,
}

impl Net for Recorder {
    fn forward(&self, x: &Tensor, stats: BnStats, sink: &mut dyn Sink) -> anyhow::Result<Tensor> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).push(x.detach().copy());
        self.inner.forward(x, stats, sink)
    }
    fn params(&self) -> &Params {
        self.inner.params()
    }
}
