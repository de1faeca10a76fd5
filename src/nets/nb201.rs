//! NAS-Bench-201's `TinyNetwork` (xautodl `cell_infers/tiny_network.py`): stem
//! conv3x3+BN, three stages of N cells joined by ResNet basic blocks with
//! stride 2, BN+ReLU, global average pooling, Linear classifier. With free
//! per-layer channels it is NATS-Bench's size-space `DynamicShapeTinyNet`.

use super::layers::{BatchNorm, Conv2d, ConvSpec, Linear, ReluConvBn};
use super::{node_relu, BnStats, Net, Params, Sink};
use tch::Tensor;

/// A cell operation, numbered as NB201's `OP_NAMES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Zero (`none`).
    None,
    /// Identity (`skip_connect`).
    Skip,
    /// ReLU-Conv1x1-BN (`nor_conv_1x1`).
    Conv1x1,
    /// ReLU-Conv3x3-BN (`nor_conv_3x3`).
    Conv3x3,
    /// 3x3 average pooling (`avg_pool_3x3`).
    AvgPool,
}

/// A cell: `ops[e]` for the edges (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cell {
    /// The six edge ops.
    pub ops: [Op; 6],
}

/// The input node of each edge.
pub const EDGE_INPUT: [usize; 6] = [0, 0, 1, 0, 1, 2];
/// The output node of each edge.
pub const EDGE_OUTPUT: [usize; 6] = [1, 2, 2, 3, 3, 3];

/// One edge op of an inference cell.
#[derive(Debug)]
enum EdgeOp {
    /// `none`: nothing between equal channels (xautodl's `x * 0` adds exact
    /// zeros), fresh zeros of `c_out` channels when the channels change.
    Zero(Option<i64>),
    Identity,
    /// A stride-1 `FactorizedReduce` (1x1 conv + BN; its ReLU never fires).
    Reduce(Conv2d, BatchNorm),
    /// 3x3 average pooling, after a 1x1 ReLUConvBN when the channels change.
    AvgPool(Option<ReluConvBn>),
    Conv(ReluConvBn),
}

impl EdgeOp {
    /// Runs the edge on node `xs`; `relu` caches the node's ReLU, shared by
    /// the conv edges that read it when no gradient flows (see [`node_relu`]).
    /// `None` for a `none` edge between equal channels: it adds exact zeros,
    /// so the cell skips it.
    fn forward(&self, x: &Tensor, relu: &mut Option<Tensor>, stats: BnStats, sink: &mut dyn Sink) -> Option<Tensor> {
        let pool = |t: &Tensor| super::pool::avg(t, 3, 1, 1, false);
        Some(match self {
            EdgeOp::Zero(None) => return None,
            EdgeOp::Zero(Some(c)) => {
                let mut shape = x.size();
                shape[1] = *c;
                x.new_zeros(shape.as_slice(), (x.kind(), x.device()))
            }
            EdgeOp::Identity => x.shallow_clone(),
            EdgeOp::Reduce(conv, bn) => bn.forward(&conv.forward(x, stats), stats),
            EdgeOp::AvgPool(None) => pool(x),
            EdgeOp::AvgPool(Some(pre)) => pool(&pre.after_relu(&node_relu(relu, x, sink), stats, sink)),
            EdgeOp::Conv(op) => op.after_relu(&node_relu(relu, x, sink), stats, sink),
        })
    }
}

/// `InferCell`: node k = sum of its incoming edges, evaluated in edge order.
/// With gradients the backward graph is xautodl's too (a ReLU per edge, the
/// sum started at 0), so gradient proxies give the reference's bits.
///
/// Two pieces of xautodl's work are left out, the values unchanged: a `none`
/// edge between equal channels (`x * 0`, adding exact zeros forward and to
/// the input's gradient; only an infinite activation would tell, and
/// BatchNorm keeps them finite), and the sum's leading `0 +` (an alias keeps
/// its pass-through node in the backward graph, so the gradient sums keep
/// their order). On the 20 NB201 networks of the README's speed table, snip
/// went from 0.477 to 0.412 s per network (one thread); every proxy's value
/// is the same bits (`correlate --sample 30 --seed 4 --proxy all`, both
/// binaries, and `tests/proxies.rs`).
#[derive(Debug)]
struct InferCell {
    edges: Vec<EdgeOp>,
}

impl InferCell {
    /// Edges from node 0 map `c_in` to `c_out` channels, the others `c_out` to
    /// `c_out`, as xautodl's `InferCell`.
    fn new(p: &mut Params, prefix: &str, cell: &Cell, c_in: i64, c_out: i64) -> Self {
        let edges =
            cell.ops
                .iter()
                .enumerate()
                .map(|(i, op)| {
                    let name = format!("{prefix}.layers.{i}");
                    let ci = if EDGE_INPUT[i] == 0 { c_in } else { c_out };
                    let same = ci == c_out;
                    match op {
                        Op::None => EdgeOp::Zero((!same).then_some(c_out)),
                        Op::Skip if same => EdgeOp::Identity,
                        Op::Skip => EdgeOp::Reduce(
                            Conv2d::new(p, &format!("{name}.conv"), ConvSpec::new(ci, c_out, 1, 1, 0)),
                            BatchNorm::new(p, &format!("{name}.bn"), c_out),
                        ),
                        Op::AvgPool => EdgeOp::AvgPool((!same).then(|| {
                            ReluConvBn::new(p, &format!("{name}.preprocess"), ConvSpec::new(ci, c_out, 1, 1, 0))
                        })),
                        Op::Conv1x1 => EdgeOp::Conv(ReluConvBn::new(p, &name, ConvSpec::new(ci, c_out, 1, 1, 0))),
                        Op::Conv3x3 => EdgeOp::Conv(ReluConvBn::new(p, &name, ConvSpec::new(ci, c_out, 3, 1, 1))),
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
            if let Some(out) = edge.forward(&nodes[src], &mut relus[src], stats, sink) {
                acc = Some(match acc {
                    // xautodl sums a node with Python's `sum()`, `0 + e0 + e1 ...`:
                    // with gradients, that extra add is a node of the backward
                    // graph, which orders the gradient sums as the reference's;
                    // an alias is the same pass-through node without the add
                    None if out.requires_grad() => out.alias(),
                    None => out,
                    Some(a) => a + out,
                });
            }
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
        let pooled = super::pool::avg(x, 2, 2, 0, true);
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
        let mut channels = vec![c; n];
        channels.extend(std::iter::repeat_n(2 * c, n + 1));
        channels.extend(std::iter::repeat_n(4 * c, n + 1));
        Self::with_channels(cell, &channels, num_classes)
    }

    /// Builds NATS-Bench's `DynamicShapeTinyNet(channels, cell, num_classes)`:
    /// `3N + 2` layers, the (N+1)-th and (2N+2)-th being stride-2 ResNet
    /// blocks, layer i with `channels[i]` output channels.
    pub fn with_channels(cell: Cell, channels: &[i64], num_classes: i64) -> Self {
        let n = channels.len() / 3;
        let mut p = Params::new();
        let stem_conv = Conv2d::new(&mut p, "stem.0", ConvSpec::new(3, channels[0], 3, 1, 1));
        let stem_bn = BatchNorm::new(&mut p, "stem.1", channels[0]);
        let mut stages = Vec::new();
        let mut c_prev = channels[0];
        for (i, &c_cur) in channels.iter().enumerate() {
            let prefix = format!("cells.{i}");
            if i == n || i == 2 * n + 1 {
                stages.push(Stage::Reduce(Box::new(ResNetBlock::new(&mut p, &prefix, c_prev, c_cur))));
            } else {
                stages.push(Stage::Cell(InferCell::new(&mut p, &prefix, &cell, c_prev, c_cur)));
            }
            c_prev = c_cur;
        }
        let last_bn = BatchNorm::new(&mut p, "lastact.0", c_prev);
        let classifier = Linear::new(&mut p, "classifier", c_prev, num_classes);
        Self { params: p, stem_conv, stem_bn, stages, last_bn, classifier }
    }
}

impl Net for TinyNetwork {
    fn forward(&self, x: &Tensor, stats: BnStats, sink: &mut dyn Sink) -> anyhow::Result<Tensor> {
        let mut x = self.stem_bn.forward(&self.stem_conv.forward(x, stats), stats);
        sink.feature(&x);
        for stage in &self.stages {
            x = match stage {
                Stage::Cell(c) => c.forward(&x, stats, sink),
                Stage::Reduce(b) => b.forward(&x, stats, sink),
            };
            sink.feature(&x);
        }
        let act = self.last_bn.forward(&x, stats).relu();
        sink.activation(&act);
        sink.pre_pool(&act);
        let pooled = act.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        sink.last_input(&pooled);
        Ok(self.classifier.forward(&pooled))
    }

    fn params(&self) -> &Params {
        &self.params
    }
}
