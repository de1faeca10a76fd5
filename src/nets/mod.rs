//! Networks as tch modules that report their activations to a [`Sink`] while
//! they run (no global hooks), with PyTorch-faithful parameter creation.
//!
//! A forward pass takes the whole batch `[N, ...]` and a [`BnStats`] mode: the
//! reference scores each image alone (train-mode BatchNorm with that image's
//! statistics), while its HDA forwards the batch as one.

pub mod activation;
pub mod anynet;
pub mod bert;
pub mod darts;
pub mod layers;
pub mod layout;
pub mod nb201;
pub mod params;
pub mod pool;
pub mod seed;
pub mod transnas;
pub mod vgg;

pub use params::Params;
pub use seed::seeded;
use tch::Tensor;

/// Which statistics train-mode BatchNorm uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BnStats {
    /// Each image its own, as if forwarded alone (the reference's scoring);
    /// convolutions that are not bit-identical on a batch run image by image.
    PerImage,
    /// The whole batch's (the reference's HDA; zero-cost proxies).
    Batch,
    /// None: every BatchNorm is the identity (synflow removes them).
    Off,
    /// Eval mode with the running statistics a fresh network has (mean 0,
    /// variance 1): `x / sqrt(1 + eps) * w + b` (VKDNW's `model.eval()`
    /// before any forward pass).
    Eval,
}

/// Receives what a network reports while it runs (its probes). Every method
/// has a default that ignores the probe, so a proxy's sink overrides only what
/// it reads. The tensors are `[N, ...]` and part of the autograd graph when the
/// caller runs with gradients.
pub trait Sink {
    /// The output of a ReLU (or, in NAFBee's networks, of the activation
    /// function under test), in firing order.
    fn activation(&mut self, _out: &Tensor) {}
    /// The same tensor as an earlier [`Sink::activation`] call, reported
    /// again (the reference captures a node's ReLU once per block reading
    /// it); the network keeps it alive meanwhile.
    fn activation_again(&mut self, out: &Tensor) {
        self.activation(out);
    }
    /// The output of a block that RBFleX's reference captures because its
    /// class name contains "ReLU" (`ReLUConvBN`: a BatchNorm output, not a
    /// ReLU's). RBFleX's K side counts it with the activations; by default it
    /// is reported as one.
    fn block_output(&mut self, out: &Tensor) {
        self.activation(out);
    }
    /// The input of the network's final layer (the classifier's input; RBFleX's
    /// Q side).
    fn last_input(&mut self, _out: &Tensor) {}
    /// A feature map between stages: the stem's output, then every cell's or
    /// block's output, in order (AZ-NAS' expressivity and progressivity).
    fn feature(&mut self, _out: &Tensor) {}
    /// The map the global pooling before the classifier reads (Zen-NAS'
    /// `forward_pre_GAP`); networks without such a pooling never report it.
    fn pre_pool(&mut self, _out: &Tensor) {}
}

/// A sink that ignores every probe (a plain forward pass).
pub struct NoProbe;

impl Sink for NoProbe {}

/// The ReLU of node `x` for one block that reads it; each use is reported,
/// repeats as [`Sink::activation_again`].
///
/// Without gradients it is computed once and shared by every reader (the
/// values are the same). When `x` takes part in autograd every reader gets
/// its own ReLU, as in the reference's graph (a ReLU module per edge): the
/// node's gradient is then summed edge by edge in the reference's order, so
/// gradient proxies match xautodl's and pycls' networks bit for bit (one
/// shared ReLU would group the sum differently and move the last digits).
pub fn node_relu(cache: &mut Option<Tensor>, x: &Tensor, sink: &mut dyn Sink) -> Tensor {
    match cache {
        Some(r) if !x.requires_grad() => {
            sink.activation_again(r);
            r.shallow_clone()
        }
        Some(_) => {
            let r = x.relu();
            sink.activation_again(&r);
            r
        }
        None => {
            let r = x.relu();
            sink.activation(&r);
            *cache = Some(r.shallow_clone());
            r
        }
    }
}

/// A network that can be scored: a forward pass that feeds a [`Sink`] and
/// returns the output, and its parameters (to load reference weights, count
/// them or take gradients).
///
/// The forward pass records autograd history when gradients are enabled and
/// the parameters require them; callers that need no gradients run it under
/// `tch::no_grad_guard()` (as every RBFleX score does).
pub trait Net: Send {
    /// Runs the batch `x` through the network, reporting to `sink`; returns
    /// the output (`[N, classes]` logits; TransNAS: the decoder head's
    /// output), or why the network cannot run it (a user's model can fail).
    fn forward(&self, x: &Tensor, stats: BnStats, sink: &mut dyn Sink) -> anyhow::Result<Tensor>;
    /// The trainable parameters, by PyTorch name, in construction order.
    fn params(&self) -> &Params;
    /// Re-draws the weights by `scheme` (from the global tch RNG, right
    /// after the build, under [`seeded`]'s lock); by default over
    /// [`Net::params`] in construction order, as the protocols' loops over
    /// `named_modules` do.
    fn reinit(&self, scheme: Init) -> anyhow::Result<()> {
        scheme.apply(self.params());
        Ok(())
    }
}

/// How a network is initialised after it is built with PyTorch's default
/// initialisers (each proxy's protocol fixes one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// PyTorch's defaults (the reference's weights).
    Default,
    /// AZ-NAS' `kaiming_norm_fanin`: Conv/Linear weights normal(0, sqrt(2 / fan_in)), biases 0.
    KaimingNormalFanIn,
    /// Zen-NAS' Gaussian init: Conv/Linear weights normal(0, 1), biases 0.
    Gaussian,
}

impl Init {
    /// Re-draws `p` (from the global tch RNG, right after the build).
    pub fn apply(self, p: &Params) {
        match self {
            Init::Default => {}
            Init::KaimingNormalFanIn => p.reinit_kaiming_normal_fan_in(),
            Init::Gaussian => p.reinit_gaussian(),
        }
    }
}

/// A sink that only counts the captured values per image (L_A and L_Q).
#[derive(Debug, Default, Clone, Copy)]
pub struct Counter {
    /// Values per image on the activation side.
    pub la: i64,
    /// Values per image at the final layer's input.
    pub lq: i64,
}

/// Values per image of a `[N, ...]` tensor.
pub fn per_image(t: &Tensor) -> i64 {
    t.numel() as i64 / t.size().first().copied().unwrap_or(1).max(1)
}

impl Sink for Counter {
    fn activation(&mut self, out: &Tensor) {
        self.la += per_image(out);
    }
    fn last_input(&mut self, out: &Tensor) {
        self.lq += per_image(out);
    }
}
