//! Building blocks shared by the design spaces' networks. Every layer maps a
//! list of groups to a list of groups, one libtorch call per group, so that
//! per-image BatchNorm and per-image convolution stay bit-identical to the
//! reference's one-image-at-a-time forward.

use super::{Params, Sink};
use tch::Tensor;

/// Groups of images flowing through a network (see [`super::Sink`]).
pub type Groups = Vec<Tensor>;

/// Applies `f` to every group.
pub fn map(xs: &[Tensor], f: impl Fn(&Tensor) -> Tensor) -> Groups {
    xs.iter().map(f).collect()
}

/// Element-wise sum of two group lists, `a + b` in that order.
pub fn add(a: &[Tensor], b: &[Tensor]) -> Groups {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

/// `nn.Conv2d` (square kernel, zero padding).
#[derive(Debug)]
pub struct Conv2d {
    w: Tensor,
    b: Option<Tensor>,
    stride: i64,
    padding: i64,
    dilation: i64,
    groups: i64,
}

/// Shape of a convolution.
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec {
    /// Input channels.
    pub c_in: i64,
    /// Output channels.
    pub c_out: i64,
    /// Kernel size.
    pub k: i64,
    /// Stride.
    pub stride: i64,
    /// Zero padding.
    pub padding: i64,
    /// Dilation.
    pub dilation: i64,
    /// Channel groups.
    pub groups: i64,
    /// Whether it has a bias.
    pub bias: bool,
}

impl ConvSpec {
    /// A plain convolution: dilation 1, one group, no bias.
    pub fn new(c_in: i64, c_out: i64, k: i64, stride: i64, padding: i64) -> Self {
        Self {
            c_in,
            c_out,
            k,
            stride,
            padding,
            dilation: 1,
            groups: 1,
            bias: false,
        }
    }
}

impl Conv2d {
    /// Creates the layer's parameters under `prefix` (PyTorch init).
    pub fn new(p: &mut Params, prefix: &str, s: ConvSpec) -> Self {
        let (w, b) = p.conv(prefix, s.c_in, s.c_out, [s.k, s.k], s.groups, s.bias);
        Self {
            w,
            b,
            stride: s.stride,
            padding: s.padding,
            dilation: s.dilation,
            groups: s.groups,
        }
    }

    /// Applies the convolution to one tensor.
    pub fn apply(&self, x: &Tensor) -> Tensor {
        x.conv2d(
            &self.w,
            self.b.as_ref(),
            [self.stride, self.stride],
            [self.padding, self.padding],
            [self.dilation, self.dilation],
            self.groups,
        )
    }

    /// Applies the convolution to every group.
    pub fn forward(&self, xs: &[Tensor]) -> Groups {
        map(xs, |x| self.apply(x))
    }
}

/// `nn.BatchNorm2d` in training mode (statistics of the group itself; biased
/// variance, eps 1e-5). Running statistics are kept only so that the call is the
/// reference's; they never influence the output.
#[derive(Debug)]
pub struct BatchNorm {
    w: Tensor,
    b: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
}

impl BatchNorm {
    /// Creates the layer's affine parameters (weight 1, bias 0) under `prefix`.
    pub fn new(p: &mut Params, prefix: &str, c: i64) -> Self {
        let (w, b) = p.norm_affine(prefix, c);
        let opts = (tch::Kind::Float, tch::Device::Cpu);
        Self {
            w,
            b,
            running_mean: Tensor::zeros([c], opts),
            running_var: Tensor::ones([c], opts),
        }
    }

    /// Normalises one tensor with its own batch statistics.
    pub fn apply(&self, x: &Tensor) -> Tensor {
        Tensor::batch_norm(
            x,
            Some(&self.w),
            Some(&self.b),
            Some(&self.running_mean),
            Some(&self.running_var),
            true,
            0.1,
            1e-5,
            false,
        )
    }

    /// Normalises every group separately.
    pub fn forward(&self, xs: &[Tensor]) -> Groups {
        map(xs, |x| self.apply(x))
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

    /// Applies the layer to every group.
    pub fn forward(&self, xs: &[Tensor]) -> Groups {
        map(xs, |x| x.linear(&self.w, Some(&self.b)))
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
        let conv = Conv2d::new(p, &format!("{prefix}.op.1"), spec);
        let bn = BatchNorm::new(p, &format!("{prefix}.op.2"), spec.c_out);
        Self { conv, bn }
    }

    /// Runs the block, reporting the ReLU output then the block output.
    pub fn forward(&self, xs: &[Tensor], sink: &mut dyn Sink) -> Groups {
        self.forward_relu(&map(xs, |x| x.relu()), sink)
    }

    /// Runs the block on an input whose ReLU `r` is already computed (shared by
    /// several blocks reading the same node; the values are the same).
    pub fn forward_relu(&self, r: &[Tensor], sink: &mut dyn Sink) -> Groups {
        sink.activation(r);
        let y = self.bn.forward(&self.conv.forward(r));
        sink.activation(&y);
        y
    }
}
