//! pycls `AnyNet` as NDS records describe it (`ds, ws, ss, bot_muls, num_gs,
//! block_type`): the first stage is the stem of width `ws[0]` and stride
//! `ss[0]` (ImageNet stride 4: 7x7 stride-2 conv, BN, ReLU, 3x3 max-pool;
//! ImageNet stride 8, the ResNeXt files: three 3x3 stride-2 conv-BN-ReLU of
//! widths w/2, w, w, which is what makes every record's parameter count
//! match, the strides being inferred; CIFAR: 3x3 conv, BN, ReLU), then
//! stages of residual basic / bottleneck or plain (vanilla) blocks, then
//! average pooling and a Linear head. Weights follow pycls' `init_weights`
//! (conv normal(0, sqrt(2 / fan_out)), Linear normal(0, 0.01), biases 0),
//! drawn after PyTorch's default construction, as `self.apply` does.
//! Captured: every `nn.ReLU` output; Q = the head's input.

use super::layers::{BatchNorm, Conv2d, ConvSpec, Linear};
use super::{BnStats, Net, Params, Sink};
use anyhow::{bail, Result};
use serde::Deserialize;
use tch::Tensor;

/// An NDS AnyNet record's `net`.
#[derive(Debug, Clone, Deserialize)]
pub struct AnyNetSpec {
    /// `res_basic_block`, `res_bottleneck_block` or `double_plain_block`.
    pub block_type: String,
    /// Blocks per stage (the first stage is the stem).
    pub ds: Vec<i64>,
    /// Widths per stage.
    pub ws: Vec<i64>,
    /// Strides per stage.
    pub ss: Vec<i64>,
    /// Bottleneck multipliers (bottleneck blocks).
    #[serde(default)]
    pub bot_muls: Vec<f64>,
    /// Groups of the 3x3 conv (bottleneck blocks).
    #[serde(default)]
    pub num_gs: Vec<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Basic,
    Bottleneck,
    Plain,
}

struct Block {
    kind: Kind,
    proj: Option<(Conv2d, BatchNorm)>,
    convs: Vec<(Conv2d, BatchNorm)>,
}

impl Block {
    fn forward(&self, x: &Tensor, stats: BnStats, sink: &mut dyn Sink) -> Tensor {
        // `self.bn(self.proj(x)) + self.f(x)`: the projection runs first
        let shortcut = match &self.proj {
            Some((c, b)) => b.forward(&c.forward(x, stats), stats),
            None => x.shallow_clone(),
        };
        let mut y = x.shallow_clone();
        let n = self.convs.len();
        for (i, (c, b)) in self.convs.iter().enumerate() {
            y = b.forward(&c.forward(&y, stats), stats);
            if i + 1 < n || self.kind == Kind::Plain {
                y = y.relu();
                sink.activation(&y);
            }
        }
        if self.kind == Kind::Plain {
            return y;
        }
        let out = (shortcut + y).relu();
        sink.activation(&out);
        out
    }
}

/// An NDS AnyNet.
pub struct AnyNet {
    params: Params,
    pool: bool,
    stem: Vec<(Conv2d, BatchNorm)>,
    blocks: Vec<Block>,
    head: Linear,
}

impl AnyNet {
    /// Builds the network.
    pub fn new(s: &AnyNetSpec, imagenet: bool, num_classes: i64) -> Result<Self> {
        let kind = match s.block_type.as_str() {
            "res_basic_block" => Kind::Basic,
            "res_bottleneck_block" => Kind::Bottleneck,
            "double_plain_block" | "vanilla_block" => Kind::Plain,
            other => bail!(
                "unknown block_type '{other}' (expected res_basic_block, res_bottleneck_block or double_plain_block)"
            ),
        };
        let n = s.ds.len();
        if n < 2 || s.ws.len() != n || s.ss.len() != n {
            bail!(
                "ds, ws and ss must have the same length (at least 2: stem and one stage), got {}, {}, {}",
                n,
                s.ws.len(),
                s.ss.len()
            );
        }
        if kind == Kind::Bottleneck && (s.bot_muls.len() != n || s.num_gs.len() != n) {
            bail!(
                "bottleneck blocks need bot_muls and num_gs for every stage, got {} and {}",
                s.bot_muls.len(),
                s.num_gs.len()
            );
        }
        let mut p = Params::new();
        let stem_w = s.ws[0];
        let unit = |p: &mut Params, name: &str, spec: ConvSpec| {
            (Conv2d::new(p, &format!("stem.{name}"), spec), BatchNorm::new(p, &format!("stem.{name}_bn"), spec.c_out))
        };
        let (stem, pool) = match (imagenet, s.ss[0]) {
            (true, 8) => (
                vec![
                    unit(&mut p, "a", ConvSpec::new(3, stem_w / 2, 3, 2, 1)),
                    unit(&mut p, "b", ConvSpec::new(stem_w / 2, stem_w, 3, 2, 1)),
                    unit(&mut p, "c", ConvSpec::new(stem_w, stem_w, 3, 2, 1)),
                ],
                false,
            ),
            (true, 4) => (vec![unit(&mut p, "conv", ConvSpec::new(3, stem_w, 7, 2, 3))], true),
            (false, 1) => (vec![unit(&mut p, "conv", ConvSpec::new(3, stem_w, 3, 1, 1))], false),
            (_, st) => bail!("no known stem of stride {st} for {}", if imagenet { "ImageNet" } else { "CIFAR" }),
        };
        let mut blocks = Vec::new();
        let mut prev = stem_w;
        for st in 1..n {
            let (d, w, stride) = (s.ds[st], s.ws[st], s.ss[st]);
            for b in 0..d {
                let prefix = format!("s{st}.b{}", b + 1);
                let (w_in, st_b) = if b == 0 { (prev, stride) } else { (w, 1) };
                let proj = (kind != Kind::Plain && (w_in != w || st_b != 1)).then(|| {
                    (
                        Conv2d::new(&mut p, &format!("{prefix}.proj"), ConvSpec::new(w_in, w, 1, st_b, 0)),
                        BatchNorm::new(&mut p, &format!("{prefix}.bn"), w),
                    )
                });
                let f = if kind == Kind::Plain { prefix.clone() } else { format!("{prefix}.f") };
                let conv = |p: &mut Params, name: &str, spec: ConvSpec| {
                    (
                        Conv2d::new(p, &format!("{f}.{name}"), spec),
                        BatchNorm::new(p, &format!("{f}.{name}_bn"), spec.c_out),
                    )
                };
                let convs = match kind {
                    Kind::Basic | Kind::Plain => vec![
                        conv(&mut p, "a", ConvSpec::new(w_in, w, 3, st_b, 1)),
                        conv(&mut p, "b", ConvSpec::new(w, w, 3, 1, 1)),
                    ],
                    Kind::Bottleneck => {
                        let w_b = (w as f64 * s.bot_muls[st]).round() as i64;
                        let g = s.num_gs[st].max(1);
                        if w_b % g != 0 {
                            bail!("stage {st}: bottleneck width {w_b} is not divisible by {g} groups");
                        }
                        vec![
                            conv(&mut p, "a", ConvSpec::new(w_in, w_b, 1, 1, 0)),
                            conv(&mut p, "b", ConvSpec::new(w_b, w_b, 3, st_b, 1).grouped(g, 1)),
                            conv(&mut p, "c", ConvSpec::new(w_b, w, 1, 1, 0)),
                        ]
                    }
                };
                blocks.push(Block { kind, proj, convs });
            }
            prev = w;
        }
        let head = Linear::new(&mut p, "head.fc", prev, num_classes);
        p.reinit_pycls();
        Ok(Self { params: p, pool, stem, blocks, head })
    }
}

impl Net for AnyNet {
    fn forward(&self, x: &Tensor, stats: BnStats, sink: &mut dyn Sink) -> Tensor {
        let mut y = x.shallow_clone();
        for (c, b) in &self.stem {
            y = b.forward(&c.forward(&y, stats), stats).relu();
            sink.activation(&y);
        }
        if self.pool {
            y = y.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        }
        sink.feature(&y);
        for block in &self.blocks {
            y = block.forward(&y, stats, sink);
            sink.feature(&y);
        }
        sink.pre_pool(&y);
        let pooled = y.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        sink.last_input(&pooled);
        self.head.forward(&pooled)
    }

    fn params(&self) -> &Params {
        &self.params
    }
}
