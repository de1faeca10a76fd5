//! The NDS cell networks (pycls `nas.py`, ported from DARTS): `NetworkCIFAR`
//! and `NetworkImageNet` built from a genotype, width and depth, with every
//! op of the DARTS, ENAS, PNAS, Amoeba and NASNet spaces. No auxiliary head,
//! drop path 0. Captured: every `nn.ReLU` and `ReLUConvBN` output.

use super::layers::{factorized_reduce_forward, BatchNorm, Conv2d, ConvSpec, Linear, ReluConvBn};
use super::{node_relu, BnStats, Net, Params, Sink};
use anyhow::{bail, Result};
use serde::Deserialize;
use tch::Tensor;

/// A cell genotype: `(op, input state)` pairs, two per step, and the states
/// concatenated into the output.
#[derive(Debug, Clone, Deserialize)]
pub struct Genotype {
    /// Normal cell ops.
    pub normal: Vec<(String, usize)>,
    /// States concatenated by the normal cell.
    pub normal_concat: Vec<usize>,
    /// Reduction cell ops.
    pub reduce: Vec<(String, usize)>,
    /// States concatenated by the reduction cell.
    pub reduce_concat: Vec<usize>,
}

/// The op names this module builds.
pub const OPS: &[&str] = &[
    "none",
    "avg_pool_2x2",
    "avg_pool_3x3",
    "avg_pool_5x5",
    "max_pool_2x2",
    "max_pool_3x3",
    "max_pool_5x5",
    "max_pool_7x7",
    "skip_connect",
    "conv_1x1",
    "conv_3x3",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "sep_conv_7x7",
    "dil_conv_3x3",
    "dil_conv_5x5",
    "dil_sep_conv_3x3",
    "conv_3x1_1x3",
    "conv_7x1_1x7",
];

/// Steps (pairs of ops) a cell may have: NDS cells have 4 or 5.
pub const MAX_STEPS: usize = 10;

/// Widths an NDS cell network may have: even (the factorized reductions
/// halve it), from 8 to 512. The embedded ImageNet files hold 32..96; NDS'
/// CIFAR files go down to 16.
pub const WIDTHS: std::ops::RangeInclusive<i64> = 8..=512;

/// Depths (cells) an NDS cell network may have. The embedded ImageNet
/// files hold 6..22; NDS' CIFAR files go down to about 4.
pub const DEPTHS: std::ops::RangeInclusive<i64> = 1..=64;

/// Most parameters a network may have: 2^30, i.e. 4 GiB of float32.
pub const MAX_PARAMS: u64 = 1 << 30;

impl Genotype {
    /// Checks op names, state indices and the concatenated states, naming
    /// the first bad one.
    pub fn validate(&self) -> Result<()> {
        for (ops, concat, kind) in
            [(&self.normal, &self.normal_concat, "normal"), (&self.reduce, &self.reduce_concat, "reduce")]
        {
            if ops.is_empty() || ops.len() % 2 != 0 || ops.len() > 2 * MAX_STEPS {
                bail!(
                    "genotype {kind} cell has {} ops; expected an even number from 2 to {}",
                    ops.len(),
                    2 * MAX_STEPS
                );
            }
            for (i, (op, input)) in ops.iter().enumerate() {
                if !OPS.contains(&op.as_str()) {
                    bail!(
                        "genotype {kind} cell: unknown op '{}' (expected one of {})",
                        crate::shown::shorten(op),
                        OPS.join(", ")
                    );
                }
                if *input >= 2 + i / 2 {
                    bail!(
                        "genotype {kind} cell: op {i} ('{op}') reads state {input}, which does not exist yet \
                         (op {i} may read states 0..={})",
                        1 + i / 2
                    );
                }
            }
            let states = 2 + ops.len() / 2;
            if concat.is_empty() || concat.len() > states {
                bail!("genotype {kind}_concat has {} states; expected 1 to {states} (the cell's states)", concat.len());
            }
            // a reduction cell's inputs (states 0 and 1) keep the input's
            // size, its new states are halved: only the new ones concatenate
            let first = if kind == "reduce" { 2 } else { 0 };
            if let Some(c) = concat.iter().find(|c| **c < first || **c >= states) {
                bail!("genotype {kind}_concat holds state {c}; expected states {first}..={}", states - 1);
            }
        }
        Ok(())
    }
}

/// Checks an NDS cell network's width and depth against [`WIDTHS`] and
/// [`DEPTHS`], then its estimated parameter count against [`MAX_PARAMS`]
/// (before anything is allocated).
pub fn check_size(g: &Genotype, width: i64, depth: i64, imagenet: bool, num_classes: i64) -> Result<()> {
    if !WIDTHS.contains(&width) || width % 2 != 0 {
        bail!("NDS net: width {width} out of range (an even number in {}..={})", WIDTHS.start(), WIDTHS.end());
    }
    if !DEPTHS.contains(&depth) {
        bail!("NDS net: depth {depth} out of range ({}..={})", DEPTHS.start(), DEPTHS.end());
    }
    let est = estimate_params(g, width, depth, imagenet, num_classes);
    if est > MAX_PARAMS {
        bail!(
            "NDS net: width {width} and depth {depth} make about {est} parameters ({:.1} GiB of float32), more than \
             the limit of {MAX_PARAMS} (4 GiB)",
            est as f64 * 4.0 / (1u64 << 30) as f64
        );
    }
    Ok(())
}

/// Weights of one op at `c` channels (an upper estimate: BN included).
fn op_params(name: &str, c: u64, stride: u64) -> u64 {
    let sep = |k: u64| 2 * (k * k * c + c * c + 2 * c);
    match name {
        "skip_connect" if stride > 1 => c * c + 2 * c,
        "conv_1x1" => c * c + 2 * c,
        "conv_3x3" => 9 * c * c + 2 * c,
        "sep_conv_3x3" => sep(3),
        "sep_conv_5x5" => sep(5),
        "sep_conv_7x7" => sep(7),
        "dil_conv_3x3" => 9 * c + c * c + 2 * c,
        "dil_conv_5x5" => 25 * c + c * c + 2 * c,
        "dil_sep_conv_3x3" => sep(3),
        "conv_3x1_1x3" => 6 * c * c + 2 * c,
        "conv_7x1_1x7" => 14 * c * c + 2 * c,
        _ => 0,
    }
}

/// About how many parameters `DartsNet::new` would make (exact up to the
/// few BN and factorized-reduction terms; saturating, never overflows).
pub fn estimate_params(g: &Genotype, width: i64, depth: i64, imagenet: bool, num_classes: i64) -> u64 {
    let c = width.clamp(0, 1 << 24) as u64;
    let mut total: u64 = if imagenet { 27 * c / 2 + 9 * c * c / 2 + 9 * c * c + 4 * c } else { 81 * c + 6 * c };
    let (mut c_pp, mut c_p, mut c_cur) = if imagenet { (c, c, c) } else { (3 * c, 3 * c, c) };
    let depth = depth.clamp(0, 1 << 20);
    for i in 0..depth {
        let red = i == depth / 3 || i == 2 * depth / 3;
        if red {
            c_cur = c_cur.saturating_mul(2);
        }
        let (ops, concat) = if red { (&g.reduce, &g.reduce_concat) } else { (&g.normal, &g.normal_concat) };
        let mut cell = c_pp.saturating_mul(c_cur).saturating_add(c_p.saturating_mul(c_cur));
        for (name, input) in ops {
            let stride = if red && *input < 2 { 2 } else { 1 };
            cell = cell.saturating_add(op_params(name, c_cur.min(1 << 24), stride));
        }
        total = total.saturating_add(cell);
        c_pp = c_p;
        c_p = (concat.len() as u64).saturating_mul(c_cur);
    }
    total.saturating_add(c_p.saturating_mul(num_classes.max(0) as u64 + 1))
}

/// A sequence of convolutions and BNs preceded by a ReLU (conv_*, sep/dil convs).
#[derive(Debug)]
enum Step {
    Relu,
    Conv(Conv2d),
    Bn(BatchNorm),
}

#[derive(Debug)]
enum Op {
    Zero(i64),
    Identity,
    AvgPool(i64, i64, i64),
    MaxPool(i64, i64, i64),
    /// Stride-2 skip: ReLU, two 1x1 stride-2 convs (one on the shifted input), BN.
    Reduce(Box<(Conv2d, Conv2d, BatchNorm)>),
    /// Starts with a ReLU (on the shared ReLU of its input state).
    Seq(Vec<Step>),
}

fn seq(p: &mut Params, prefix: &str, specs: &[(ConvSpec, bool)]) -> Op {
    // (conv, then BN?) in order; a ReLU opens the op and follows each BN but the last
    let mut steps = vec![Step::Relu];
    let mut idx = 1;
    for (i, (spec, bn)) in specs.iter().enumerate() {
        steps.push(Step::Conv(Conv2d::new(p, &format!("{prefix}.op.{idx}"), *spec)));
        idx += 1;
        if *bn {
            steps.push(Step::Bn(BatchNorm::new(p, &format!("{prefix}.op.{idx}"), spec.c_out)));
            idx += 1;
            if i + 1 < specs.len() {
                steps.push(Step::Relu);
                idx += 1;
            }
        }
    }
    Op::Seq(steps)
}

impl Op {
    fn new(p: &mut Params, prefix: &str, name: &str, c: i64, stride: i64) -> Op {
        let sq = |k: i64, pad: i64| ConvSpec::new(c, c, k, stride, pad);
        let dw = |k: i64, s: i64, pad: i64, d: i64| ConvSpec::new(c, c, k, s, pad).grouped(c, d);
        let pw = ConvSpec::new(c, c, 1, 1, 0);
        let rect = |kh: i64, kw: i64, sh: i64, sw: i64, ph: i64, pw: i64| ConvSpec {
            k: [kh, kw],
            stride: [sh, sw],
            padding: [ph, pw],
            ..ConvSpec::new(c, c, 1, 1, 0)
        };
        match name {
            "none" => Op::Zero(stride),
            "avg_pool_2x2" => Op::AvgPool(2, stride, 0),
            "avg_pool_3x3" => Op::AvgPool(3, stride, 1),
            "avg_pool_5x5" => Op::AvgPool(5, stride, 2),
            "max_pool_2x2" => Op::MaxPool(2, stride, 0),
            "max_pool_3x3" => Op::MaxPool(3, stride, 1),
            "max_pool_5x5" => Op::MaxPool(5, stride, 2),
            "max_pool_7x7" => Op::MaxPool(7, stride, 3),
            "skip_connect" if stride == 1 => Op::Identity,
            "skip_connect" => factorized_reduce(p, prefix, c, c),
            "conv_1x1" => seq(p, prefix, &[(sq(1, 0), true)]),
            "conv_3x3" => seq(p, prefix, &[(sq(3, 1), true)]),
            "sep_conv_3x3" | "sep_conv_5x5" | "sep_conv_7x7" => {
                let k = name[name.len() - 1..].parse::<i64>().unwrap_or(3);
                let pad = k / 2;
                seq(p, prefix, &[(dw(k, stride, pad, 1), false), (pw, true), (dw(k, 1, pad, 1), false), (pw, true)])
            }
            "dil_conv_3x3" => seq(p, prefix, &[(dw(3, stride, 2, 2), false), (pw, true)]),
            "dil_conv_5x5" => seq(p, prefix, &[(dw(5, stride, 4, 2), false), (pw, true)]),
            "dil_sep_conv_3x3" => {
                seq(p, prefix, &[(dw(3, stride, 2, 2), false), (pw, true), (dw(3, 1, 2, 2), false), (pw, true)])
            }
            "conv_3x1_1x3" => {
                seq(p, prefix, &[(rect(1, 3, 1, stride, 0, 1), false), (rect(3, 1, stride, 1, 1, 0), true)])
            }
            "conv_7x1_1x7" => {
                seq(p, prefix, &[(rect(1, 7, 1, stride, 0, 3), false), (rect(7, 1, stride, 1, 3, 0), true)])
            }
            _ => Op::Zero(stride), // unreachable after Genotype::validate
        }
    }

    fn forward(&self, x: &Tensor, relu: &mut Option<Tensor>, stats: BnStats, sink: &mut dyn Sink) -> Tensor {
        match self {
            Op::Zero(1) => x * 0.0,
            Op::Zero(s) => x.slice(2, 0, None, *s).slice(3, 0, None, *s) * 0.0,
            Op::Identity => x.shallow_clone(),
            Op::AvgPool(k, s, pad) => super::pool::avg(x, *k, *s, *pad, false),
            Op::MaxPool(k, s, pad) => super::pool::max(x, *k, *s, *pad),
            Op::Reduce(parts) => {
                let (c1, c2, bn) = &**parts;
                let r = &node_relu(relu, x, sink);
                factorized_reduce_forward(r, c1, c2, bn, stats)
            }
            Op::Seq(steps) => {
                let mut y = node_relu(relu, x, sink);
                for step in &steps[1..] {
                    y = match step {
                        Step::Relu => {
                            let r = y.relu();
                            sink.activation(&r);
                            r
                        }
                        Step::Conv(c) => c.forward(&y, stats),
                        Step::Bn(b) => b.forward(&y, stats),
                    };
                }
                y
            }
        }
    }
}

fn factorized_reduce(p: &mut Params, prefix: &str, c_in: i64, c_out: i64) -> Op {
    let c1 = Conv2d::new(p, &format!("{prefix}.conv_1"), ConvSpec::new(c_in, c_out / 2, 1, 2, 0));
    let c2 = Conv2d::new(p, &format!("{prefix}.conv_2"), ConvSpec::new(c_in, c_out / 2, 1, 2, 0));
    let bn = BatchNorm::new(p, &format!("{prefix}.bn"), c_out);
    Op::Reduce(Box::new((c1, c2, bn)))
}

#[derive(Debug)]
struct Cell {
    pre0: Op,
    pre0_rcb: Option<ReluConvBn>,
    pre1: ReluConvBn,
    ops: Vec<(Op, usize)>,
    concat: Vec<usize>,
}

impl Cell {
    #[allow(clippy::too_many_arguments)]
    fn new(p: &mut Params, prefix: &str, g: &Genotype, c_pp: i64, c_p: i64, c: i64, red: bool, red_prev: bool) -> Self {
        let (pre0, pre0_rcb) = if red_prev {
            (factorized_reduce(p, &format!("{prefix}.preprocess0"), c_pp, c), None)
        } else {
            (Op::Identity, Some(ReluConvBn::new(p, &format!("{prefix}.preprocess0"), ConvSpec::new(c_pp, c, 1, 1, 0))))
        };
        let pre1 = ReluConvBn::new(p, &format!("{prefix}.preprocess1"), ConvSpec::new(c_p, c, 1, 1, 0));
        let (list, concat) = if red { (&g.reduce, &g.reduce_concat) } else { (&g.normal, &g.normal_concat) };
        let ops = list
            .iter()
            .enumerate()
            .map(|(j, (name, input))| {
                let stride = if red && *input < 2 { 2 } else { 1 };
                (Op::new(p, &format!("{prefix}._ops.{j}"), name, c, stride), *input)
            })
            .collect();
        Self { pre0, pre0_rcb, pre1, ops, concat: concat.clone() }
    }

    fn forward(&self, s0: &Tensor, s1: &Tensor, stats: BnStats, sink: &mut dyn Sink) -> Tensor {
        let s0 = match &self.pre0_rcb {
            Some(rcb) => rcb.forward(s0, stats, sink),
            None => self.pre0.forward(s0, &mut None, stats, sink),
        };
        let s1 = self.pre1.forward(s1, stats, sink);
        let mut states = vec![s0, s1];
        let mut relus: Vec<Option<Tensor>> = vec![None, None];
        for pair in self.ops.chunks(2) {
            let mut outs = Vec::with_capacity(2);
            for (op, input) in pair {
                outs.push(op.forward(&states[*input].shallow_clone(), &mut relus[*input], stats, sink));
            }
            let s = &outs[0] + &outs[1];
            states.push(s);
            relus.push(None);
        }
        let picked: Vec<&Tensor> = self.concat.iter().map(|i| &states[*i]).collect();
        Tensor::cat(&picked, 1)
    }
}

/// `NetworkCIFAR` or `NetworkImageNet`.
pub struct DartsNet {
    params: Params,
    imagenet: bool,
    stem: Vec<(Conv2d, BatchNorm)>,
    cells: Vec<Cell>,
    classifier: Linear,
}

impl DartsNet {
    /// Builds the network (PyTorch default init, construction order).
    /// Checks the genotype, width and depth (see [`check_size`]) first.
    pub fn new(g: &Genotype, width: i64, depth: i64, imagenet: bool, num_classes: i64) -> Result<Self> {
        g.validate()?;
        check_size(g, width, depth, imagenet, num_classes)?;
        let mut p = Params::new();
        let c = width;
        let (stem, mut c_pp, mut c_p, mut c_cur) = if imagenet {
            let a = Conv2d::new(&mut p, "stem0.0", ConvSpec::new(3, c / 2, 3, 2, 1));
            let a_bn = BatchNorm::new(&mut p, "stem0.1", c / 2);
            let b = Conv2d::new(&mut p, "stem0.3", ConvSpec::new(c / 2, c, 3, 2, 1));
            let b_bn = BatchNorm::new(&mut p, "stem0.4", c);
            let s1 = Conv2d::new(&mut p, "stem1.1", ConvSpec::new(c, c, 3, 2, 1));
            let s1_bn = BatchNorm::new(&mut p, "stem1.2", c);
            (vec![(a, a_bn), (b, b_bn), (s1, s1_bn)], c, c, c)
        } else {
            let s = Conv2d::new(&mut p, "stem.0", ConvSpec::new(3, 3 * c, 3, 1, 1));
            let s_bn = BatchNorm::new(&mut p, "stem.1", 3 * c);
            (vec![(s, s_bn)], 3 * c, 3 * c, c)
        };
        let mut cells = Vec::new();
        let mut red_prev = imagenet;
        for i in 0..depth {
            let red = i == depth / 3 || i == 2 * depth / 3;
            if red {
                c_cur *= 2;
            }
            let cell = Cell::new(&mut p, &format!("cells.{i}"), g, c_pp, c_p, c_cur, red, red_prev);
            red_prev = red;
            let mult = cell.concat.len() as i64;
            cells.push(cell);
            c_pp = c_p;
            c_p = mult * c_cur;
        }
        let classifier = Linear::new(&mut p, "classifier.classifier", c_p, num_classes);
        Ok(Self { params: p, imagenet, stem, cells, classifier })
    }
}

impl Net for DartsNet {
    fn forward(&self, x: &Tensor, stats: BnStats, sink: &mut dyn Sink) -> anyhow::Result<Tensor> {
        let (mut s0, mut s1) = if self.imagenet {
            let (a, a_bn) = &self.stem[0];
            let (b, b_bn) = &self.stem[1];
            let (c, c_bn) = &self.stem[2];
            let h = a_bn.forward(&a.forward(x, stats), stats).relu();
            sink.activation(&h);
            let s0 = b_bn.forward(&b.forward(&h, stats), stats);
            // stem1 opens with ReLU(inplace=True): it rewrites s0 itself
            let s0 = s0.relu();
            sink.activation(&s0);
            let s1 = c_bn.forward(&c.forward(&s0, stats), stats);
            (s0, s1)
        } else {
            let (a, a_bn) = &self.stem[0];
            let s = a_bn.forward(&a.forward(x, stats), stats);
            (s.shallow_clone(), s)
        };
        sink.feature(&s1);
        for cell in &self.cells {
            let next = cell.forward(&s0, &s1, stats, sink);
            sink.feature(&next);
            s0 = s1;
            s1 = next;
        }
        sink.pre_pool(&s1);
        let pooled = s1.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        sink.last_input(&pooled);
        Ok(self.classifier.forward(&pooled))
    }

    fn params(&self) -> &Params {
        &self.params
    }
}
