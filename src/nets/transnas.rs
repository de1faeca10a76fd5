//! TransNAS-Bench-101 networks as the RBFleX code wraps them: `MacroNet` in
//! its `backbone` structure (stem conv3x3/2 + BN, ReLUConvBN/2; two cells per
//! macro digit) whose layer outputs are resized to 8x8 (nearest), reversed,
//! and the first three fed to a head of Conv1x1(+bias) -> ReLU -> BN (32
//! channels) branches. Captured: every ReLU and ReLUConvBN output, in firing
//! order; Q = the input of the last head BN.

use super::layers::{factorized_reduce_forward, BatchNorm, Conv2d, ConvSpec, ReluConvBn};
use super::{node_relu, BnStats, Net, Params, Sink};
use tch::Tensor;

/// A TransNAS cell: a micro cell code `[[a], [b, c], [d, e, f]]` (ops 0 none,
/// 1 skip, 2 conv1x1, 3 conv3x3, indexed by target node then source node) or
/// the ResNet basic block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CellCode {
    /// `basic`.
    Basic,
    /// Micro cell ops per node.
    Micro(Vec<Vec<u8>>),
}

/// A network code `C-macro-cell`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetCode {
    /// Base channels.
    pub channels: i64,
    /// Macro digits 1..4 (even: double the channels; > 2: stride 2).
    pub macro_code: Vec<u8>,
    /// The cell.
    pub cell: CellCode,
}

impl NetCode {
    /// Values per image of the largest feature map the network makes from an
    /// `h` x `w` input (stem, then each layer's input and output).
    pub fn largest_feature(&self, h: i64, w: i64) -> i64 {
        let half = |v: i64| (v + 1) / 2;
        // stem: conv/2 to half the channels, then ReLUConvBN/2
        let (h, w) = (half(h), half(w));
        let mut largest = (self.channels / 2) * h * w;
        let (mut c, mut h, mut w) = (self.channels, half(h), half(w));
        largest = largest.max(c * h * w);
        for d in &self.macro_code {
            if d % 2 == 0 {
                c *= 2;
            }
            if *d > 2 {
                (h, w) = (half(h), half(w));
            }
            largest = largest.max(c * h * w);
        }
        largest
    }
}

enum Edge {
    Zero { c_out: Option<i64>, stride: i64 },
    Identity,
    Reduce(Conv2d, Conv2d, BatchNorm),
    Conv(ReluConvBn),
}

impl Edge {
    fn new(p: &mut Params, prefix: &str, op: u8, c_in: i64, c_out: i64, stride: i64) -> Edge {
        match op {
            0 => Edge::Zero { c_out: (c_in != c_out).then_some(c_out), stride },
            1 if stride == 1 && c_in == c_out => Edge::Identity,
            1 => Edge::Reduce(
                Conv2d::new(p, &format!("{prefix}.convs.0"), ConvSpec::new(c_in, c_out / 2, 1, stride, 0)),
                Conv2d::new(p, &format!("{prefix}.convs.1"), ConvSpec::new(c_in, c_out - c_out / 2, 1, stride, 0)),
                BatchNorm::new(p, &format!("{prefix}.bn"), c_out),
            ),
            2 => Edge::Conv(ReluConvBn::named(p, prefix, "ops", ConvSpec::new(c_in, c_out, 1, stride, 0))),
            _ => Edge::Conv(ReluConvBn::named(p, prefix, "ops", ConvSpec::new(c_in, c_out, 3, stride, 1))),
        }
    }

    fn forward(&self, x: &Tensor, relu: &mut Option<Tensor>, stats: BnStats, sink: &mut dyn Sink) -> Tensor {
        match self {
            Edge::Zero { c_out: None, stride: 1 } => x * 0.0,
            Edge::Zero { c_out: None, stride } => x.slice(2, 0, None, *stride).slice(3, 0, None, *stride) * 0.0,
            Edge::Zero { c_out: Some(c), stride } => {
                let s = x.size();
                let (h, w) = if *stride > 1 { ((s[2] + 1) / stride, (s[3] + 1) / stride) } else { (s[2], s[3]) };
                x.new_zeros([s[0], *c, h, w], (x.kind(), x.device()))
            }
            Edge::Identity => x.shallow_clone(),
            Edge::Reduce(c1, c2, bn) => factorized_reduce_forward(&node_relu(relu, x, sink), c1, c2, bn, stats),
            Edge::Conv(op) => op.after_relu(&node_relu(relu, x, sink), stats, sink),
        }
    }
}

struct Basic {
    conv_a: ReluConvBn,
    conv_b: ReluConvBn,
    down: Option<(Conv2d, BatchNorm)>,
}

enum Cell {
    Micro { edges: Vec<(Edge, usize)>, nodes: usize },
    Basic(Box<Basic>),
}

impl Cell {
    fn new(p: &mut Params, prefix: &str, code: &CellCode, c_in: i64, c_out: i64, stride: i64) -> Cell {
        match code {
            CellCode::Basic => Cell::Basic(Box::new(Basic {
                conv_a: ReluConvBn::named(
                    p,
                    &format!("{prefix}.conv_a"),
                    "ops",
                    ConvSpec::new(c_in, c_out, 3, stride, 1),
                ),
                conv_b: ReluConvBn::named(p, &format!("{prefix}.conv_b"), "ops", ConvSpec::new(c_out, c_out, 3, 1, 1)),
                down: (stride != 1 || c_in != c_out).then(|| {
                    (
                        Conv2d::new(p, &format!("{prefix}.downsample.0"), ConvSpec::new(c_in, c_out, 1, stride, 0)),
                        // `nn.BatchNorm2d(planes, affine, track_running_stats)` in the
                        // reference passes them positionally: eps = True = 1.0
                        BatchNorm::with_eps(p, &format!("{prefix}.downsample.1"), c_out, 1.0),
                    )
                }),
            })),
            CellCode::Micro(nodes) => {
                let mut edges = Vec::new();
                for ops in nodes {
                    for (from, op) in ops.iter().enumerate() {
                        let name = format!("{prefix}.edges.{}", edges.len());
                        let e = if from == 0 {
                            Edge::new(p, &name, *op, c_in, c_out, stride)
                        } else {
                            Edge::new(p, &name, *op, c_out, c_out, 1)
                        };
                        edges.push((e, from));
                    }
                }
                Cell::Micro { edges, nodes: nodes.len() }
            }
        }
    }

    fn forward(&self, x: &Tensor, stats: BnStats, sink: &mut dyn Sink) -> Tensor {
        match self {
            Cell::Basic(b) => {
                let Basic { conv_a, conv_b, down } = &**b;
                // conv_a's output is freed as soon as its ReLU exists
                let f = conv_b.forward_owned(conv_a.forward(x, stats, sink), stats, sink);
                let residual = match down {
                    Some((c, b)) => b.forward(&c.forward(x, stats), stats),
                    None => x.shallow_clone(),
                };
                residual + f
            }
            Cell::Micro { edges, nodes } => {
                let mut feats: Vec<Tensor> = vec![x.shallow_clone()];
                let mut relus: Vec<Option<Tensor>> = (0..=*nodes).map(|_| None).collect();
                let mut k = 0;
                for node in 1..=*nodes {
                    let mut outs = Vec::with_capacity(node);
                    for _ in 0..node {
                        let (edge, from) = &edges[k];
                        outs.push(edge.forward(&feats[*from].shallow_clone(), &mut relus[*from], stats, sink));
                        k += 1;
                    }
                    // torch.stack(list).sum(0), the reference's reduction
                    feats.push(Tensor::stack(&outs, 0).sum_dim_intlist([0i64].as_slice(), false, None::<tch::Kind>));
                }
                feats.pop().unwrap_or_else(|| x.shallow_clone())
            }
        }
    }
}

/// The wrapped TransNAS network.
pub struct TransNet {
    params: Params,
    stem_conv: Conv2d,
    stem_bn: BatchNorm,
    stem_rcb: ReluConvBn,
    layers: Vec<Vec<Cell>>,
    head: Vec<(Conv2d, BatchNorm)>,
}

impl TransNet {
    /// Builds backbone then head (PyTorch default init, construction order).
    pub fn new(code: &NetCode) -> Self {
        let mut p = Params::new();
        let c = code.channels;
        let b = "backbone.model";
        let stem_conv = Conv2d::new(&mut p, &format!("{b}.stem.0"), ConvSpec::new(3, c / 2, 3, 2, 1));
        let stem_bn = BatchNorm::new(&mut p, &format!("{b}.stem.1"), c / 2);
        let stem_rcb = ReluConvBn::named(&mut p, &format!("{b}.stem.2"), "ops", ConvSpec::new(c / 2, c, 3, 2, 1));
        let mut inplanes = c;
        let mut out_channels = Vec::new();
        let mut layers = Vec::new();
        for (i, d) in code.macro_code.iter().enumerate() {
            let target = if d % 2 == 0 { inplanes * 2 } else { inplanes };
            let stride = if *d > 2 { 2 } else { 1 };
            out_channels.push(target);
            let first = Cell::new(&mut p, &format!("{b}.layer{i}.0"), &code.cell, inplanes, target, stride);
            inplanes = target;
            let second = Cell::new(&mut p, &format!("{b}.layer{i}.1"), &code.cell, inplanes, target, 1);
            layers.push(vec![first, second]);
        }
        out_channels.reverse();
        let head = out_channels
            .iter()
            .take(3)
            .enumerate()
            .map(|(i, c_in)| {
                let spec = ConvSpec { bias: true, ..ConvSpec::new(*c_in, 32, 1, 1, 0) };
                (
                    Conv2d::new(&mut p, &format!("head.model.{i}.0"), spec),
                    BatchNorm::new(&mut p, &format!("head.model.{i}.2"), 32),
                )
            })
            .collect();
        Self { params: p, stem_conv, stem_bn, stem_rcb, layers, head }
    }
}

impl Net for TransNet {
    /// Returns the last head branch's output (`[N, 32, 8, 8]`): the RBFleX
    /// wrapper's decoder stand-in, not a task's prediction.
    fn forward(&self, x: &Tensor, stats: BnStats, sink: &mut dyn Sink) -> anyhow::Result<Tensor> {
        let s = self.stem_bn.forward(&self.stem_conv.forward(x, stats), stats);
        let mut y = self.stem_rcb.forward(&s, stats, sink);
        sink.feature(&y);
        let mut outs = Vec::new();
        for layer in &self.layers {
            for cell in layer {
                y = cell.forward(&y, stats, sink);
                sink.feature(&y);
            }
            outs.push(y.upsample_nearest2d([8, 8], None, None));
        }
        outs.reverse();
        let n = self.head.len();
        let mut out = None;
        for (i, ((conv, bn), feat)) in self.head.iter().zip(&outs).enumerate() {
            let r = conv.forward(feat, stats).relu();
            sink.activation(&r);
            if i + 1 == n {
                sink.last_input(&r);
            }
            out = Some(bn.forward(&r, stats));
        }
        Ok(out.unwrap_or(y))
    }

    fn params(&self) -> &Params {
        &self.params
    }
}
