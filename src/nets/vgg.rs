//! The CIFAR VGG-19 of NAFBee (kuangliu's pytorch-cifar layout): cfg
//! 64,64,M,128,128,M,256x4,M,512x4,M,512x4,M, each conv3x3 (padding 1, bias)
//! -> BN -> activation, 2x2 max-pool, a 1x1 average pool, Linear(512, classes).

use super::activation::Activation;
use super::layers::{BatchNorm, Conv2d, ConvSpec, Linear};
use super::{BnStats, Net, Params, Sink};
use tch::Tensor;

/// The layer configuration: channels, or 0 for a max-pool.
pub const CFG: [i64; 21] =
    [64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0];

enum Layer {
    Block(Conv2d, BatchNorm),
    Pool,
}

/// VGG-19 with one activation function throughout.
pub struct Vgg19 {
    params: Params,
    layers: Vec<Layer>,
    act: Activation,
    classifier: Linear,
}

impl Vgg19 {
    /// Builds the network (PyTorch default init, construction order; module
    /// names `features.<i>` and `classifier` as in the reference).
    pub fn new(act: Activation, num_classes: i64) -> Self {
        let mut p = Params::new();
        let mut layers = Vec::new();
        let (mut c_in, mut idx) = (3, 0);
        for c in CFG {
            if c == 0 {
                layers.push(Layer::Pool);
                idx += 1;
            } else {
                let spec = ConvSpec { bias: true, ..ConvSpec::new(c_in, c, 3, 1, 1) };
                let conv = Conv2d::new(&mut p, &format!("features.{idx}"), spec);
                let bn = BatchNorm::new(&mut p, &format!("features.{}", idx + 1), c);
                layers.push(Layer::Block(conv, bn));
                idx += 3;
                c_in = c;
            }
        }
        let classifier = Linear::new(&mut p, "classifier", 512, num_classes);
        Self { params: p, layers, act, classifier }
    }
}

impl Net for Vgg19 {
    fn forward(&self, x: &Tensor, stats: BnStats, sink: &mut dyn Sink) -> anyhow::Result<Tensor> {
        let mut x = x.shallow_clone();
        for l in &self.layers {
            x = match l {
                Layer::Block(conv, bn) => {
                    let y = self.act.apply(&bn.forward(&conv.forward(&x, stats), stats));
                    sink.activation(&y);
                    y
                }
                Layer::Pool => {
                    let y = super::pool::max(&x, 2, 2, 0);
                    sink.feature(&y);
                    y
                }
            };
        }
        sink.pre_pool(&x);
        let flat = x.avg_pool2d([1, 1], [1, 1], [0, 0], false, true, None::<i64>).flatten(1, -1);
        sink.last_input(&flat);
        Ok(self.classifier.forward(&flat))
    }

    fn params(&self) -> &Params {
        &self.params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_count_matches_nafbee() {
        assert_eq!(Vgg19::new(Activation::ReLU, 10).params().count(), 20_040_522);
    }
}
