//! Channels-last memory layout (NHWC in memory, NCHW in shape), which
//! libtorch's CPU pooling and convolution kernels run fastest on.

use super::{BnStats, Init, Net, Params, Sink};
use tch::Tensor;

/// Whether the 4-D `x` is laid out channels-last.
pub fn is_channels_last(x: &Tensor) -> bool {
    x.dim() == 4 && x.size()[1] > 1 && x.stride()[1] == 1
}

/// `x` copied into channels-last layout (the same values; autograd flows
/// through the copy); a tensor that is not 4-D, or already channels-last,
/// is returned as it is.
pub fn channels_last(x: &Tensor) -> Tensor {
    if x.dim() != 4 || is_channels_last(x) {
        return x.shallow_clone();
    }
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// A network whose 4-D inputs are put in channels-last layout before its
/// forward pass: libtorch's oneDNN convolutions then keep that layout
/// through the network (1.3-1.5x faster per network on the CPU for most
/// gradient proxies at their batches), but sum in another order than on NCHW inputs, so
/// the values differ in float32 rounding (see `Selection::channels_last`).
pub struct ChannelsLast(pub Box<dyn Net>);

impl Net for ChannelsLast {
    fn forward(&self, x: &Tensor, stats: BnStats, sink: &mut dyn Sink) -> anyhow::Result<Tensor> {
        self.0.forward(&channels_last(x), stats, sink)
    }
    fn params(&self) -> &Params {
        self.0.params()
    }
    fn reinit(&self, scheme: Init) -> anyhow::Result<()> {
        self.0.reinit(scheme)
    }
}
