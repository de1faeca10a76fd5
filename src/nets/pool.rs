//! 2-D average and max pooling that run libtorch's channels-last CPU kernels.
//!
//! libtorch's CPU pooling of an NCHW tensor walks one plane at a time with
//! scalar code; its channels-last kernels take the same window sums (and the
//! same first maximum) in the same order, vectorised over channels, so the
//! values and gradients are the same bits (tested below) at a fraction of
//! the time, the two layout copies included. Measured on this project's
//! 2-core CPU, one thread, forward, 64 x 16 x 32 x 32 (NB201's first stage at
//! the gradient proxies' batch): 3x3 average pooling without the padding
//! counted 24.5 ms NCHW against 9.6 ms through channels-last; 3x3 max pooling
//! 39.2 ms against 7.5 ms. The backward passes gain alike. On other devices
//! the input's own layout is kept.

use super::layout::{channels_last, is_channels_last};
use tch::{Device, Tensor};

/// `pool(x)` through the channels-last kernel on the CPU, in `x`'s layout.
fn pooled(x: &Tensor, pool: impl Fn(&Tensor) -> Tensor) -> Tensor {
    if x.device() != Device::Cpu || x.dim() != 4 || is_channels_last(x) {
        return pool(x);
    }
    // both layout changes go through an identity view, whose backward puts
    // the gradient in the viewed tensor's layout: `y`'s (channels-last) for
    // the pooling's backward, which `contiguous`'s backward alone would hand
    // an NCHW gradient (its slow kernel; NB201 3x3 average pooling at
    // 64x16x32x32, forward and backward: 26.0 ms -> 13.4 ms), and `x`'s
    // (NCHW) for the layers before, which would otherwise receive a
    // channels-last gradient and run their backward convolutions in another
    // order (not the same bits as the reference; tested below)
    let y = pool(&channels_last(&identity_view(x)));
    identity_view(&y).contiguous()
}

/// `x` as a view of itself (no copy).
fn identity_view(x: &Tensor) -> Tensor {
    x.as_strided(x.size(), x.stride(), None::<i64>)
}

/// `k` x `k` average pooling of `x` with `stride` and zero `padding`;
/// `count_padding`: whether padded zeros count in the divisor (PyTorch's
/// `count_include_pad`). The output has `x`'s layout.
pub fn avg(x: &Tensor, k: i64, stride: i64, padding: i64, count_padding: bool) -> Tensor {
    pooled(x, |t| t.avg_pool2d([k, k], [stride, stride], [padding, padding], false, count_padding, None::<i64>))
}

/// `k` x `k` max pooling of `x` with `stride` and `padding` (no dilation,
/// floor mode). The output has `x`'s layout.
pub fn max(x: &Tensor, k: i64, stride: i64, padding: i64) -> Tensor {
    pooled(x, |t| t.max_pool2d([k, k], [stride, stride], [padding, padding], [1, 1], false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    /// Values and input gradients of `ours` and `theirs` on `x`: the same bits.
    fn same_bits(x: &Tensor, ours: impl Fn(&Tensor) -> Tensor, theirs: impl Fn(&Tensor) -> Tensor) {
        let w = Tensor::randn(theirs(x).size().as_slice(), (Kind::Float, Device::Cpu));
        let run = |f: &dyn Fn(&Tensor) -> Tensor| {
            let xi = x.detach().copy().set_requires_grad(true);
            let y = f(&xi);
            let g = Tensor::run_backward(&[(&y * &w).sum(Kind::Float)], &[&xi], false, false);
            (y.detach(), g[0].shallow_clone())
        };
        let (ya, ga) = run(&ours);
        let (yb, gb) = run(&theirs);
        assert!(ya.is_contiguous());
        assert!(ya.equal(&yb), "values differ: {:?} max diff {}", x.size(), (&ya - &yb).abs().max().double_value(&[]));
        assert!(ga.equal(&gb), "gradients differ: {:?} {}", x.size(), (&ga - &gb).abs().max().double_value(&[]));
        assert_eq!(ga.stride(), gb.stride(), "the input gradient's layout differs: {:?}", x.size());
    }

    #[test]
    fn pooling_through_channels_last_gives_the_nchw_kernels_bits() {
        tch::manual_seed(3);
        // after a ReLU, so windows hold ties (zeros) for the max's first index
        for shape in [[4i64, 16, 32, 32], [1, 16, 32, 32], [2, 48, 7, 9]] {
            let x = Tensor::randn(shape, (Kind::Float, Device::Cpu)).relu();
            for (k, s, p, count) in [(3, 1, 1, false), (3, 1, 1, true), (2, 2, 0, true), (3, 2, 1, false)] {
                same_bits(
                    &x,
                    |t| avg(t, k, s, p, count),
                    |t| t.avg_pool2d([k, k], [s, s], [p, p], false, count, None::<i64>),
                );
            }
            for (k, s, p) in [(3, 1, 1), (3, 2, 1), (2, 2, 0)] {
                same_bits(&x, |t| max(t, k, s, p), |t| t.max_pool2d([k, k], [s, s], [p, p], [1, 1], false));
            }
        }
    }
}
