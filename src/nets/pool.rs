//! 2-D average and max pooling, faster than libtorch's NCHW CPU kernels and
//! with their bits.
//!
//! libtorch's CPU pooling of an NCHW tensor walks one window at a time with
//! scalar code. Stride-1 average pooling of float32 NCHW tensors (NB201's and
//! DARTS' `avg_pool_3x3`) runs `csrc/avg_pool.cpp` instead, a custom autograd
//! function whose loops, vectorised across a row's pixels, add the same
//! operands in the same order as libtorch's NCHW kernels, forward and
//! backward (written by hand: libtorch has no vectorised NCHW average
//! pooling, and tch cannot define an autograd node). Every other pooling goes
//! through libtorch's channels-last kernels, which take the same window sums
//! (and the same first maximum) in the same order, vectorised over channels.
//! Values and gradients are the same bits either way (tested below).
//!
//! Measured on this project's 2-core CPU, one thread, 64 x 16 x 32 x 32
//! (NB201's first stage at the gradient proxies' batch), 3x3 average pooling
//! without the padding counted, the three side by side in one run: forward
//! 12.5 ms on libtorch's NCHW kernel, 3.5 ms through channels-last (the two
//! layout copies included), 1.3 ms in `csrc`; forward and backward with a
//! weighted sum as the loss 25.5, 10.5 and 3.8 ms. 3x3 max pooling forward:
//! 39.2 ms NCHW against 7.5 ms through channels-last. On other devices the
//! input's own layout is kept.

use super::layout::{channels_last, is_channels_last};
use tch::{Device, Kind, Tensor};
use torch_sys::C_tensor;

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
    let s = x.size();
    let own = x.device() == Device::Cpu
        && x.kind() == Kind::Float
        && s.len() == 4
        && x.is_contiguous()
        && stride == 1
        && k >= 1
        && (0..=k / 2).contains(&padding)
        && s[2] + 2 * padding >= k
        && s[3] + 2 * padding >= k;
    if own {
        return avg_stride_1(x, k, padding, count_padding);
    }
    pooled(x, |t| t.avg_pool2d([k, k], [stride, stride], [padding, padding], false, count_padding, None::<i64>))
}

extern "C" {
    fn rbflex_avg_pool_s1(x: *const C_tensor, k: i64, p: i64, count_padding: i32) -> *mut C_tensor;
    fn rbflex_last_error() -> *const std::os::raw::c_char;
}

/// `csrc/avg_pool.cpp` on a float32 NCHW CPU tensor (checked by [`avg`]).
fn avg_stride_1(x: &Tensor, k: i64, padding: i64, count_padding: bool) -> Tensor {
    // SAFETY: `x` is a live tensor; a non-null result is a new `at::Tensor`
    // that the returned `Tensor` owns, as tch's own calls hand them over
    let out = unsafe { rbflex_avg_pool_s1(x.as_ptr(), k, padding, i32::from(count_padding)) };
    if out.is_null() {
        // SAFETY: the message of this thread's failed call, NUL-terminated
        let why = unsafe { std::ffi::CStr::from_ptr(rbflex_last_error()) };
        // as tch's panicking ops do with libtorch's errors
        panic!("average pooling of {:?}: {}", x.size(), why.to_string_lossy());
    }
    // SAFETY: see above
    unsafe { Tensor::from_ptr(out) }
}

/// `k` x `k` max pooling of `x` with `stride` and `padding` (no dilation,
/// floor mode). The output has `x`'s layout.
pub fn max(x: &Tensor, k: i64, stride: i64, padding: i64) -> Tensor {
    pooled(x, |t| t.max_pool2d([k, k], [stride, stride], [padding, padding], [1, 1], false))
}

#[cfg(test)]
mod tests {
    use super::*;

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
                let theirs = |t: &Tensor| t.avg_pool2d([k, k], [s, s], [p, p], false, count, None::<i64>);
                same_bits(&x, |t| avg(t, k, s, p, count), theirs);
                same_bits(&x, |t| pooled(t, theirs), theirs);
            }
            for (k, s, p) in [(3, 1, 1), (3, 2, 1), (2, 2, 0)] {
                same_bits(&x, |t| max(t, k, s, p), |t| t.max_pool2d([k, k], [s, s], [p, p], [1, 1], false));
            }
        }
    }

    extern "C" {
        fn rbflex_avg_pool_four_lanes_only(on: i32);
    }

    /// Stride-1 average pooling against libtorch's NCHW kernel over shapes
    /// that run the vector loop and its scalar remainder.
    fn stride_one_pools_as_libtorch() {
        tch::manual_seed(4);
        let shapes = [[3i64, 5, 32, 32], [2, 4, 16, 16], [2, 3, 8, 8], [1, 2, 7, 9], [2, 2, 1, 5], [1, 1, 3, 1]];
        for shape in shapes {
            let x = Tensor::randn(shape, (Kind::Float, Device::Cpu));
            for (k, p) in [(3, 1), (3, 0), (1, 0), (2, 1), (2, 0), (5, 2), (5, 1), (4, 2)] {
                if shape[2] + 2 * p < k || shape[3] + 2 * p < k {
                    continue;
                }
                for count in [false, true] {
                    let theirs = |t: &Tensor| t.avg_pool2d([k, k], [1, 1], [p, p], false, count, None::<i64>);
                    same_bits(&x, |t| avg_stride_1(t, k, p, count), theirs);
                }
            }
        }
    }

    #[test]
    fn stride_one_average_pooling_gives_the_nchw_kernels_bits() {
        // eight lanes where the CPU has AVX2, else four; then four lanes
        stride_one_pools_as_libtorch();
        // SAFETY: sets an atomic flag
        unsafe { rbflex_avg_pool_four_lanes_only(1) };
        let four = std::panic::catch_unwind(stride_one_pools_as_libtorch);
        // SAFETY: as above
        unsafe { rbflex_avg_pool_four_lanes_only(0) };
        assert!(four.is_ok(), "the four-lane loop differs");
    }

    #[test]
    fn stride_one_average_pooling_differentiates_twice_as_libtorch() {
        // GraSP differentiates the gradient again: the pooling's backward is then
        // libtorch's own, and the second gradient is the same bits
        tch::manual_seed(5);
        let x = Tensor::randn([2, 3, 9, 8], (Kind::Float, Device::Cpu));
        let w = Tensor::randn([2, 3, 9, 8], (Kind::Float, Device::Cpu));
        let v = Tensor::randn([2, 3, 9, 8], (Kind::Float, Device::Cpu));
        let run = |f: &dyn Fn(&Tensor) -> Tensor| {
            let xi = x.detach().copy().set_requires_grad(true);
            // a loss whose gradient depends on x: sum(w * pool(x)^2)
            let y = f(&xi);
            let loss = (&w * &y * &y).sum(Kind::Float);
            let g = Tensor::run_backward(&[loss], &[&xi], true, true);
            let gv = (&g[0] * &v).sum(Kind::Float);
            let h = Tensor::run_backward(&[gv], &[&xi], false, false);
            (g[0].detach(), h[0].shallow_clone())
        };
        for count in [false, true] {
            let (ga, ha) = run(&|t| avg_stride_1(t, 3, 1, count));
            let (gb, hb) = run(&|t| t.avg_pool2d([3, 3], [1, 1], [1, 1], false, count, None::<i64>));
            assert!(ga.equal(&gb), "first gradients differ");
            assert!(ha.equal(&hb), "second gradients differ: {}", (&ha - &hb).abs().max().double_value(&[]));
        }
    }
}
