//! Networks as tch modules that report their activations to a [`Sink`] while
//! they run (no global hooks), with PyTorch-faithful parameter creation.
//!
//! A forward pass takes *groups* of images: every group is one tensor whose
//! images share train-mode BatchNorm statistics. The reference forwards each
//! image alone (N groups of one); HDA forwards the batch as one group.

pub mod layers;
pub mod nb201;
pub mod params;

pub use params::Params;
use tch::Tensor;

/// Receives what a network reports while it runs.
pub trait Sink {
    /// One captured activation (the K side): `outs[g]` is group `g`'s output,
    /// `[n_g, ...]`; rows are images in group order.
    fn activation(&mut self, outs: &[Tensor]);
    /// The input of the network's final layer (the Q side).
    fn last_input(&mut self, outs: &[Tensor]);
}

/// A network that can be scored: a forward pass that feeds a [`Sink`], and its
/// parameters (to load reference weights or count them).
pub trait Net: Send {
    /// Runs every group through the network, reporting to `sink`.
    fn forward(&self, groups: &[Tensor], sink: &mut dyn Sink);
    /// The trainable parameters, by PyTorch name, in construction order.
    fn params(&self) -> &Params;
}

/// A sink that only counts the captured values per image (L_A and L_Q).
#[derive(Debug, Default, Clone, Copy)]
pub struct Counter {
    /// Values per image on the activation side.
    pub la: i64,
    /// Values per image at the final layer's input.
    pub lq: i64,
}

fn per_image(outs: &[Tensor]) -> i64 {
    outs.first()
        .map(|t| t.numel() as i64 / t.size()[0].max(1))
        .unwrap_or(0)
}

impl Sink for Counter {
    fn activation(&mut self, outs: &[Tensor]) {
        self.la += per_image(outs);
    }
    fn last_input(&mut self, outs: &[Tensor]) {
        self.lq += per_image(outs);
    }
}

/// Splits a batch `[N, ...]` into N groups of one image each (the reference's
/// per-image forward).
pub fn split_images(x: &Tensor) -> Vec<Tensor> {
    let n = x.size()[0];
    (0..n).map(|i| x.narrow(0, i, 1)).collect()
}
