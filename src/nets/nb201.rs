//! NAS-Bench-201's `TinyNetwork` (xautodl `cell_infers/tiny_network.py`): stem
//! conv3x3+BN, three stages of N cells joined by ResNet basic blocks with
//! stride 2, BN+ReLU, global average pooling, Linear classifier.

use super::layers::{BatchNorm, Conv2d, ConvSpec, Linear, ReluConvBn};
use super::{BnStats, Net, Params, Sink};
use crate::spaces::nb201::{Cell, Op, EDGE_INPUT, EDGE_OUTPUT};
use tch::Tensor;

/// One edge op of an inference cell.
#[derive(Debug)]
enum EdgeOp {
    Zero,
    Identity,
    AvgPool,
    Conv(ReluConvBn),
}

impl EdgeOp {
    /// Runs the edge on node `xs`; `relu` caches the node's ReLU, computed once
    /// for all the conv edges that read it.
    fn forward(&self, x: &Tensor, relu: &mut Option<Tensor>, stats: BnStats, sink: &mut dyn Sink) -> Tensor {
        match self {
            EdgeOp::Zero => x * 0.0,
            EdgeOp::Identity => x.shallow_clone(),
            EdgeOp::AvgPool => x.avg_pool2d([3, 3], [1, 1], [1, 1], false, false, None::<i64>),
            EdgeOp::Conv(op) => op.forward_relu(relu.get_or_insert_with(|| x.relu()), stats, sink),
        }
    }
}

/// `InferCell`: node k = sum of its incoming edges, evaluated in edge order.
#[derive(Debug)]
struct InferCell {
    edges: Vec<EdgeOp>,
}

impl InferCell {
    fn new(p: &mut Params, prefix: &str, cell: &Cell, c: i64) -> Self {
        let edges = cell
            .ops
            .iter()
            .enumerate()
            .map(|(i, op)| {
                let name = format!("{prefix}.layers.{i}");
                match op {
                    Op::None => EdgeOp::Zero,
                    Op::Skip => EdgeOp::Identity,
                    Op::AvgPool => EdgeOp::AvgPool,
                    Op::Conv1x1 => EdgeOp::Conv(ReluConvBn::new(p, &name, ConvSpec::new(c, c, 1, 1, 0))),
                    Op::Conv3x3 => EdgeOp::Conv(ReluConvBn::new(p, &name, ConvSpec::new(c, c, 3, 1, 1))),
                }
            })
            .collect();
        Self { edges }
    }

    fn forward(&self, x: &Tensor, stats: BnStats, sink: &mut dyn Sink) -> Tensor {
        let mut nodes: Vec<Tensor> = vec![x.shallow_clone()];
        let mut relus: Vec<Option<Tensor>> = vec![None, None, None];
        let mut acc: Option<Tensor> = None;
        for (i, edge) in self.edges.iter().enumerate() {
            let src = EDGE_INPUT[i];
            let out = edge.forward(&nodes[src], &mut relus[src], stats, sink);
            acc = Some(match acc {
                None => out,
                Some(a) => a + out,
            });
            let last_of_node = i + 1 == self.edges.len() || EDGE_OUTPUT[i + 1] != EDGE_OUTPUT[i];
            if last_of_node {
                nodes.push(acc.take().unwrap_or_else(|| x * 0.0));
            }
        }
        nodes.pop().unwrap_or_else(|| x * 0.0)
    }
}

/// `ResNetBasicblock` with stride 2: conv_a, conv_b (ReLUConvBN) and an
/// AvgPool2d(2) + Conv1x1 shortcut; output = shortcut + block.
#[derive(Debug)]
struct ResNetBlock {
    conv_a: ReluConvBn,
    conv_b: ReluConvBn,
    down: Conv2d,
}

impl ResNetBlock {
    fn new(p: &mut Params, prefix: &str, c_in: i64, c_out: i64) -> Self {
        let conv_a = ReluConvBn::new(p, &format!("{prefix}.conv_a"), ConvSpec::new(c_in, c_out, 3, 2, 1));
        let conv_b = ReluConvBn::new(p, &format!("{prefix}.conv_b"), ConvSpec::new(c_out, c_out, 3, 1, 1));
        let down = Conv2d::new(p, &format!("{prefix}.downsample.1"), ConvSpec::new(c_in, c_out, 1, 1, 0));
        Self { conv_a, conv_b, down }
    }

    fn forward(&self, x: &Tensor, stats: BnStats, sink: &mut dyn Sink) -> Tensor {
        let a = self.conv_a.forward(x, stats, sink);
        let b = self.conv_b.forward(&a, stats, sink);
        let pooled = x.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>);
        self.down.forward(&pooled, stats) + b
    }
}

#[derive(Debug)]
enum Stage {
    Cell(InferCell),
    Reduce(Box<ResNetBlock>),
}

/// The NB201 network for one cell.
#[derive(Debug)]
pub struct TinyNetwork {
    params: Params,
    stem_conv: Conv2d,
    stem_bn: BatchNorm,
    stages: Vec<Stage>,
    last_bn: BatchNorm,
    classifier: Linear,
}

impl TinyNetwork {
    /// Builds `TinyNetwork(C, N, cell, num_classes)`, drawing parameters from
    /// the global tch RNG in PyTorch's construction order.
    pub fn new(cell: Cell, c: i64, n: usize, num_classes: i64) -> Self {
        let mut p = Params::new();
        let stem_conv = Conv2d::new(&mut p, "stem.0", ConvSpec::new(3, c, 3, 1, 1));
        let stem_bn = BatchNorm::new(&mut p, "stem.1", c);
        let mut stages = Vec::new();
        let mut c_prev = c;
        for (stage, mult) in [1, 2, 4].into_iter().enumerate() {
            let c_cur = c * mult;
            if stage > 0 {
                let prefix = format!("cells.{}", stages.len());
                stages.push(Stage::Reduce(Box::new(ResNetBlock::new(&mut p, &prefix, c_prev, c_cur))));
                c_prev = c_cur;
            }
            for _ in 0..n {
                let prefix = format!("cells.{}", stages.len());
                stages.push(Stage::Cell(InferCell::new(&mut p, &prefix, &cell, c_cur)));
            }
        }
        let last_bn = BatchNorm::new(&mut p, "lastact.0", c_prev);
        let classifier = Linear::new(&mut p, "classifier", c_prev, num_classes);
        Self { params: p, stem_conv, stem_bn, stages, last_bn, classifier }
    }
}

impl Net for TinyNetwork {
    fn forward(&self, x: &Tensor, stats: BnStats, sink: &mut dyn Sink) {
        let _guard = tch::no_grad_guard();
        let mut x = self.stem_bn.forward(&self.stem_conv.forward(x, stats), stats);
        for stage in &self.stages {
            x = match stage {
                Stage::Cell(c) => c.forward(&x, stats, sink),
                Stage::Reduce(b) => b.forward(&x, stats, sink),
            };
        }
        let act = self.last_bn.forward(&x, stats).relu();
        sink.activation(&act);
        let pooled = act.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        sink.last_input(&pooled);
        let _logits = self.classifier.forward(&pooled);
    }

    fn params(&self) -> &Params {
        &self.params
    }
}
