//! Building blocks shared by the design spaces' networks. With
//! [`BnStats::PerImage`] they reproduce the reference's one-image-at-a-time
//! forward bit for bit while batching every op that is bit-identical on a
//! batch (element-wise ops, pooling, 1x1 convolutions, per-image
//! normalisation); other convolutions run image by image.

use super::{BnStats, Params, Sink};
use tch::Tensor;

/// Shape of a convolution (`[height, width]` pairs for kernel, stride,
/// padding and dilation).
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec {
    /// Input channels.
    pub c_in: i64,
    /// Output channels.
    pub c_out: i64,
    /// Kernel size.
    pub k: [i64; 2],
    /// Stride.
    pub stride: [i64; 2],
    /// Zero padding.
    pub padding: [i64; 2],
    /// Dilation.
    pub dilation: [i64; 2],
    /// Channel groups.
    pub groups: i64,
    /// Whether it has a bias.
    pub bias: bool,
}

impl ConvSpec {
    /// A plain square convolution: dilation 1, one group, no bias.
    pub fn new(c_in: i64, c_out: i64, k: i64, stride: i64, padding: i64) -> Self {
        Self {
            c_in,
            c_out,
            k: [k, k],
            stride: [stride, stride],
            padding: [padding, padding],
            dilation: [1, 1],
            groups: 1,
            bias: false,
        }
    }

    /// The same with `groups` channel groups and dilation `d`.
    pub fn grouped(self, groups: i64, d: i64) -> Self {
        Self { groups, dilation: [d, d], ..self }
    }
}

/// `nn.Conv2d` (zero padding).
#[derive(Debug)]
pub struct Conv2d {
    w: Tensor,
    b: Option<Tensor>,
    spec: ConvSpec,
}

impl Conv2d {
    /// Creates the layer's parameters under `prefix` (PyTorch init).
    pub fn new(p: &mut Params, prefix: &str, spec: ConvSpec) -> Self {
        let (w, b) = p.conv(prefix, spec.c_in, spec.c_out, spec.k, spec.groups, spec.bias);
        Self { w, b, spec }
    }

    fn apply(&self, x: &Tensor) -> Tensor {
        let s = &self.spec;
        let y = x.conv2d(&self.w, self.b.as_ref(), s.stride, s.padding, s.dilation, s.groups);
        flops::add_conv(&y, s);
        y
    }

    /// Applies the convolution. In per-image mode on the CPU a kernel
    /// larger than 1x1 runs image by image: libtorch picks another (not
    /// bit-identical) algorithm for a batch, while a 1x1 convolution is
    /// identical either way. That loop exists only for bit-parity with the
    /// CPU reference; on a GPU the batch runs at once.
    pub fn forward(&self, x: &Tensor, stats: BnStats) -> Tensor {
        let n = x.size()[0];
        if stats == BnStats::PerImage && self.spec.k != [1, 1] && n > 1 && x.device() == tch::Device::Cpu {
            // each image's output goes straight into the batch (no second copy)
            let first = self.apply(&x.narrow(0, 0, 1));
            let mut shape = first.size();
            shape[0] = n;
            let out = first.new_empty(shape.as_slice(), (first.kind(), first.device()));
            let mut slot = out.narrow(0, 0, 1);
            slot.copy_(&first);
            drop(first);
            for i in 1..n {
                let mut slot = out.narrow(0, i, 1);
                slot.copy_(&self.apply(&x.narrow(0, i, 1)));
            }
            layer_outputs::record(&out, &self.w);
            sites::record(sites::Kind::Conv(self.spec), x, &out, &self.w, self.b.as_ref());
            out
        } else {
            let y = self.apply(x);
            layer_outputs::record(&y, &self.w);
            sites::record(sites::Kind::Conv(self.spec), x, &y, &self.w, self.b.as_ref());
            y
        }
    }
}

/// `nn.BatchNorm2d` in training mode (biased variance, eps 1e-5), with
/// per-image or batch statistics. Running statistics never influence the
/// output and are not kept.
#[derive(Debug)]
pub struct BatchNorm {
    w: Tensor,
    b: Tensor,
    eps: f64,
}

impl BatchNorm {
    /// Creates the layer's affine parameters (weight 1, bias 0) under `prefix`.
    pub fn new(p: &mut Params, prefix: &str, c: i64) -> Self {
        Self::with_eps(p, prefix, c, 1e-5)
    }

    /// The same with another epsilon.
    pub fn with_eps(p: &mut Params, prefix: &str, c: i64, eps: f64) -> Self {
        let (w, b) = p.norm_affine(prefix, c);
        Self { w, b, eps }
    }

    /// Normalises `x`. Per image, `instance_norm` with the BN's affine
    /// parameters equals BN on each image alone, bit for bit.
    pub fn forward(&self, x: &Tensor, stats: BnStats) -> Tensor {
        let y = self.normalise(x, stats);
        sites::record(sites::Kind::BatchNorm { eps: self.eps, stats }, x, &y, &self.w, Some(&self.b));
        y
    }

    fn normalise(&self, x: &Tensor, stats: BnStats) -> Tensor {
        match stats {
            BnStats::PerImage => Tensor::instance_norm(
                x,
                Some(&self.w),
                Some(&self.b),
                None::<&Tensor>,
                None::<&Tensor>,
                true,
                0.1,
                self.eps,
                false,
            ),
            BnStats::Off => x.shallow_clone(),
            BnStats::Eval => {
                let c = self.w.size()[0];
                let mean = Tensor::zeros([c], (x.kind(), x.device()));
                let var = Tensor::ones([c], (x.kind(), x.device()));
                Tensor::batch_norm(
                    x,
                    Some(&self.w),
                    Some(&self.b),
                    Some(&mean),
                    Some(&var),
                    false,
                    0.1,
                    self.eps,
                    false,
                )
            }
            BnStats::Batch => {
                bn_stats::record(x);
                Tensor::batch_norm(
                    x,
                    Some(&self.w),
                    Some(&self.b),
                    None::<&Tensor>,
                    None::<&Tensor>,
                    true,
                    0.1,
                    self.eps,
                    false,
                )
            }
        }
    }
}

/// `nn.Linear`.
#[derive(Debug)]
pub struct Linear {
    w: Tensor,
    b: Tensor,
}

impl Linear {
    /// Creates the layer's parameters under `prefix` (PyTorch init).
    pub fn new(p: &mut Params, prefix: &str, f_in: i64, f_out: i64) -> Self {
        let (w, b) = p.linear(prefix, f_in, f_out);
        Self { w, b }
    }

    /// Applies the layer.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let y = x.linear(&self.w, Some(&self.b));
        flops::add(self.w.numel() as f64 * y.size().first().copied().unwrap_or(1) as f64);
        layer_outputs::record(&y, &self.w);
        sites::record(sites::Kind::Linear, x, &y, &self.w, Some(&self.b));
        y
    }
}

/// ReLU -> Conv -> BN (NB201's `ReLUConvBN`). Its class name contains "ReLU",
/// so the reference captures both the inner ReLU's output and the block's.
#[derive(Debug)]
pub struct ReluConvBn {
    conv: Conv2d,
    bn: BatchNorm,
}

impl ReluConvBn {
    /// Creates `prefix.op.1` (conv, no bias) and `prefix.op.2` (BN).
    pub fn new(p: &mut Params, prefix: &str, spec: ConvSpec) -> Self {
        Self::named(p, prefix, "op", spec)
    }

    /// The same with the inner `nn.Sequential` called `seq` (TransNAS: `ops`).
    pub fn named(p: &mut Params, prefix: &str, seq: &str, spec: ConvSpec) -> Self {
        let conv = Conv2d::new(p, &format!("{prefix}.{seq}.1"), spec);
        let bn = BatchNorm::new(p, &format!("{prefix}.{seq}.2"), spec.c_out);
        Self { conv, bn }
    }

    /// Runs the block, reporting the ReLU output then the block output.
    pub fn forward(&self, x: &Tensor, stats: BnStats, sink: &mut dyn Sink) -> Tensor {
        self.forward_owned(x.shallow_clone(), stats, sink)
    }

    /// The same, releasing `x` as soon as its ReLU exists (frees the input
    /// early when the caller has no further use for it).
    pub fn forward_owned(&self, x: Tensor, stats: BnStats, sink: &mut dyn Sink) -> Tensor {
        let r = x.relu();
        drop(x);
        sink.activation(&r);
        self.after_relu(&r, stats, sink)
    }

    /// Runs the block on an input whose ReLU `r` is already computed and
    /// reported (see [`super::node_relu`]).
    pub fn after_relu(&self, r: &Tensor, stats: BnStats, sink: &mut dyn Sink) -> Tensor {
        let y = self.bn.forward(&self.conv.forward(r, stats), stats);
        sink.block_output(&y);
        y
    }
}

/// DARTS' `FactorizedReduce` after its ReLU `r`: two 1x1 convs, the second on
/// the input shifted by one pixel (pad (0, 1, 0, 1), drop the first row and
/// column), concatenated over channels, then BN.
pub fn factorized_reduce_forward(r: &Tensor, c1: &Conv2d, c2: &Conv2d, bn: &BatchNorm, stats: BnStats) -> Tensor {
    let shifted = r.constant_pad_nd([0, 1, 0, 1]).slice(2, 1, None, 1).slice(3, 1, None, 1);
    bn.forward(&Tensor::cat(&[c1.forward(r, stats), c2.forward(&shifted, stats)], 1), stats)
}

/// Multiply-accumulates of the convolutions and Linear layers a forward pass
/// runs, counted per thread while [`flops::count`] is active (each thread
/// runs one network at a time). The count is a layer's own arithmetic, as
/// NATS-Bench and pycls report FLOPs (multiply-adds of Conv2d and Linear).
pub mod flops {
    use super::ConvSpec;
    use std::cell::Cell;
    use tch::Tensor;

    thread_local! {
        static COUNT: Cell<Option<f64>> = const { Cell::new(None) };
    }

    /// Runs `f` and returns its result with the multiply-adds counted.
    pub fn count<T>(f: impl FnOnce() -> T) -> (T, f64) {
        let outer = COUNT.with(|c| c.replace(Some(0.0)));
        let out = f();
        let n = COUNT.with(|c| c.replace(outer)).unwrap_or(0.0);
        (out, n)
    }

    /// Adds `n` multiply-adds when counting.
    pub fn add(n: f64) {
        COUNT.with(|c| {
            if let Some(v) = c.get() {
                c.set(Some(v + n));
            }
        });
    }

    /// A convolution's multiply-adds: output elements x (input channels /
    /// groups) x kernel area.
    pub fn add_conv(out: &Tensor, s: &ConvSpec) {
        if COUNT.with(|c| c.get().is_some()) {
            add(out.numel() as f64 * (s.c_in / s.groups) as f64 * (s.k[0] * s.k[1]) as f64);
        }
    }
}

/// The per-channel batch variances (unbiased, as BatchNorm's running
/// variance takes them) of every BatchNorm a forward pass runs in batch
/// mode, recorded per thread while [`bn_stats::collect`] is active (Zen-NAS
/// reads the running variances after two forward passes).
pub mod bn_stats {
    use std::cell::RefCell;
    use tch::{Kind, Tensor};

    thread_local! {
        static VARS: RefCell<Option<Vec<Tensor>>> = const { RefCell::new(None) };
    }

    /// Runs `f` and returns its result with each BatchNorm's variances, in order.
    pub fn collect<T>(f: impl FnOnce() -> T) -> (T, Vec<Tensor>) {
        let outer = VARS.with(|v| v.replace(Some(Vec::new())));
        let out = f();
        let vars = VARS.with(|v| v.replace(outer)).unwrap_or_default();
        (out, vars)
    }

    /// Records the variances of a BatchNorm input `[N, C, ...]` when collecting.
    pub fn record(x: &Tensor) {
        VARS.with(|v| {
            if let Some(list) = v.borrow_mut().as_mut() {
                let dims: Vec<i64> = (0..x.dim() as i64).filter(|d| *d != 1).collect();
                let var = x.detach().var_dim(dims.as_slice(), true, false).to_kind(Kind::Double);
                list.push(var);
            }
        });
    }
}

/// The output of every Conv2d and Linear layer a forward pass runs, with
/// its weight's values per output channel (`weight.shape[1:]`'s product),
/// recorded per thread while [`layer_outputs::collect`] is active:
/// zero-cost-nas' fisher reads each such output (its `dummy` identity after
/// every Conv2d/Linear) and weighs channels by that count.
pub mod layer_outputs {
    use std::cell::RefCell;
    use tch::Tensor;

    thread_local! {
        static OUTS: RefCell<Option<Vec<(Tensor, i64)>>> = const { RefCell::new(None) };
    }

    /// Runs `f` and returns its result with each layer's output (in the
    /// autograd graph when `f` records one) and weight count per channel.
    pub fn collect<T>(f: impl FnOnce() -> T) -> (T, Vec<(Tensor, i64)>) {
        let outer = OUTS.with(|v| v.replace(Some(Vec::new())));
        let out = f();
        let outs = OUTS.with(|v| v.replace(outer)).unwrap_or_default();
        (out, outs)
    }

    /// Records a layer output `y` of weight `w` when collecting.
    pub fn record(y: &Tensor, w: &Tensor) {
        OUTS.with(|v| {
            if let Some(list) = v.borrow_mut().as_mut() {
                list.push((y.shallow_clone(), w.size()[1..].iter().product()));
            }
        });
    }
}

/// Every Conv2d, BatchNorm and Linear call of a forward pass (a module with
/// weights): its input, output and parameters, recorded per thread while
/// [`sites::collect`] is active. NEAR and MeCo read the outputs (hooks on
/// every such module); VKDNW takes per-input derivatives w.r.t. single
/// weights from the inputs and the outputs' gradients.
pub mod sites {
    use super::{BnStats, ConvSpec};
    use std::cell::RefCell;
    use tch::Tensor;

    /// The layer's type.
    #[derive(Debug, Clone, Copy)]
    pub enum Kind {
        /// A convolution of this shape.
        Conv(ConvSpec),
        /// A BatchNorm run in this mode.
        BatchNorm {
            /// Its epsilon.
            eps: f64,
            /// Its statistics.
            stats: BnStats,
        },
        /// A Linear layer.
        Linear,
    }

    /// One call.
    #[derive(Debug)]
    pub struct Site {
        /// What ran.
        pub kind: Kind,
        /// Its input (undefined when not asked for).
        pub input: Option<Tensor>,
        /// Its output (in the autograd graph when the pass records one).
        pub output: Tensor,
        /// Its weight.
        pub weight: Tensor,
        /// Its bias.
        pub bias: Option<Tensor>,
    }

    thread_local! {
        static SITES: RefCell<Option<(bool, Vec<Site>)>> = const { RefCell::new(None) };
    }

    /// Runs `f` and returns its result with every call, in firing order
    /// (with the inputs when `inputs`).
    pub fn collect<T>(inputs: bool, f: impl FnOnce() -> T) -> (T, Vec<Site>) {
        let outer = SITES.with(|v| v.replace(Some((inputs, Vec::new()))));
        let out = f();
        let sites = SITES.with(|v| v.replace(outer)).map(|(_, s)| s).unwrap_or_default();
        (out, sites)
    }

    /// Records a call when collecting.
    pub fn record(kind: Kind, x: &Tensor, y: &Tensor, w: &Tensor, b: Option<&Tensor>) {
        SITES.with(|v| {
            if let Some((inputs, list)) = v.borrow_mut().as_mut() {
                list.push(Site {
                    kind,
                    input: inputs.then(|| x.shallow_clone()),
                    output: y.shallow_clone(),
                    weight: w.shallow_clone(),
                    bias: b.map(Tensor::shallow_clone),
                });
            }
        });
    }
}
