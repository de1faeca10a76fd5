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

/// Stages (the stem included) an AnyNet may have: NDS has 4 or 5.
pub const STAGES: std::ops::RangeInclusive<usize> = 2..=8;
/// Blocks per stage: NDS has 1..24.
pub const DEPTHS: std::ops::RangeInclusive<i64> = 1..=64;
/// Widths per stage: NDS has 16..1024.
pub const WIDTHS: std::ops::RangeInclusive<i64> = 8..=4096;
/// Strides of the stages after the stem: NDS has 1, 2 and 4.
pub const STRIDES: [i64; 4] = [1, 2, 4, 8];
/// Groups of a bottleneck's 3x3 conv: NDS has 1..16.
pub const GROUPS: std::ops::RangeInclusive<i64> = 1..=1024;

impl AnyNetSpec {
    /// Checks every field against the ranges above (naming the field, the
    /// stage, the value and the range), then the estimated parameter count
    /// against [`super::darts::MAX_PARAMS`], before anything is built.
    pub fn validate(&self, imagenet: bool, num_classes: i64) -> Result<()> {
        let kind = Kind::parse(&self.block_type)?;
        let n = self.ds.len();
        if !STAGES.contains(&n) || self.ws.len() != n || self.ss.len() != n {
            bail!(
                "AnyNet: ds, ws and ss must have the same length, {} to {} (the stem and the stages), got {}, {} and {}",
                STAGES.start(),
                STAGES.end(),
                n,
                self.ws.len(),
                self.ss.len()
            );
        }
        if kind == Kind::Bottleneck && (self.bot_muls.len() != n || self.num_gs.len() != n) {
            bail!(
                "AnyNet: bottleneck blocks need bot_muls and num_gs for every one of the {n} stages, got {} and {}",
                self.bot_muls.len(),
                self.num_gs.len()
            );
        }
        for st in 0..n {
            let (d, w, stride) = (self.ds[st], self.ws[st], self.ss[st]);
            if !DEPTHS.contains(&d) {
                bail!("AnyNet: ds[{st}] = {d} out of range ({}..={})", DEPTHS.start(), DEPTHS.end());
            }
            if !WIDTHS.contains(&w) || w % 2 != 0 {
                bail!("AnyNet: ws[{st}] = {w} out of range (an even number in {}..={})", WIDTHS.start(), WIDTHS.end());
            }
            if !STRIDES.contains(&stride) {
                bail!("AnyNet: ss[{st}] = {stride} out of range (one of 1, 2, 4, 8)");
            }
            if kind != Kind::Bottleneck {
                continue;
            }
            let (b, g) = (self.bot_muls[st], self.num_gs[st]);
            if !(b.is_finite() && b > 0.0 && b <= 4.0) {
                bail!("AnyNet: bot_muls[{st}] = {b} out of range (0 < bot_mul <= 4; NDS uses 0.25, 0.5 and 1)");
            }
            if !GROUPS.contains(&g) {
                bail!("AnyNet: num_gs[{st}] = {g} out of range ({}..={})", GROUPS.start(), GROUPS.end());
            }
            let w_b = (w as f64 * b).round() as i64;
            if st > 0 && (w_b < 1 || w_b % g != 0) {
                bail!(
                    "AnyNet: stage {st}: bottleneck width {w_b} (ws {w} x bot_muls {b}) is not a positive multiple \
                     of num_gs {g}"
                );
            }
        }
        let stems: &[i64] = if imagenet { &[4, 8] } else { &[1] };
        if !stems.contains(&self.ss[0]) {
            bail!(
                "AnyNet: ss[0] = {} is no known stem stride for {} (expected {})",
                self.ss[0],
                if imagenet { "ImageNet" } else { "CIFAR" },
                if imagenet { "4 or 8" } else { "1" }
            );
        }
        let est = self.estimate_params(num_classes);
        if est > super::darts::MAX_PARAMS {
            bail!(
                "AnyNet: ds and ws make about {est} parameters ({:.1} GiB of float32), more than the limit of {} (4 GiB)",
                est as f64 * 4.0 / (1u64 << 30) as f64,
                super::darts::MAX_PARAMS
            );
        }
        Ok(())
    }

    /// About how many parameters the network has (saturating; meaningful
    /// once the lengths are checked).
    pub fn estimate_params(&self, num_classes: i64) -> u64 {
        let kind = Kind::parse(&self.block_type).unwrap_or(Kind::Basic);
        let u = |v: i64| v.clamp(0, 1 << 20) as u64;
        let mut prev = u(self.ws.first().copied().unwrap_or(0));
        let mut total = 49 * 3 * prev + 9 * prev * prev;
        for st in 1..self.ds.len().min(self.ws.len()) {
            let w = u(self.ws[st]);
            for b in 0..u(self.ds[st]) {
                let w_in = if b == 0 { prev } else { w };
                let block = match kind {
                    Kind::Basic | Kind::Plain => 9 * w_in * w + 9 * w * w,
                    Kind::Bottleneck => {
                        let mul = self.bot_muls.get(st).copied().unwrap_or(1.0).clamp(0.0, 4.0);
                        let w_b = (w as f64 * mul).round() as u64;
                        let g = u(self.num_gs.get(st).copied().unwrap_or(1)).max(1);
                        w_in * w_b + 9 * w_b * w_b / g + w_b * w
                    }
                };
                total = total.saturating_add(block + w_in * w + 4 * w);
            }
            prev = w;
        }
        total.saturating_add(prev * (u(num_classes) + 1))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Basic,
    Bottleneck,
    Plain,
}

impl Kind {
    fn parse(block_type: &str) -> Result<Kind> {
        Ok(match block_type {
            "res_basic_block" => Kind::Basic,
            "res_bottleneck_block" => Kind::Bottleneck,
            "double_plain_block" | "vanilla_block" => Kind::Plain,
            other => bail!(
                "AnyNet: unknown block_type '{}' (expected res_basic_block, res_bottleneck_block or double_plain_block)",
                crate::shown::shorten(other)
            ),
        })
    }
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
        let kind = Kind::parse(&s.block_type)?;
        s.validate(imagenet, num_classes)?;
        let n = s.ds.len();
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
                        let g = s.num_gs[st];
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
    fn forward(&self, x: &Tensor, stats: BnStats, sink: &mut dyn Sink) -> anyhow::Result<Tensor> {
        let mut y = x.shallow_clone();
        for (c, b) in &self.stem {
            y = b.forward(&c.forward(&y, stats), stats).relu();
            sink.activation(&y);
        }
        if self.pool {
            y = super::pool::max(&y, 3, 2, 1);
        }
        sink.feature(&y);
        for block in &self.blocks {
            y = block.forward(&y, stats, sink);
            sink.feature(&y);
        }
        sink.pre_pool(&y);
        let pooled = y.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        sink.last_input(&pooled);
        Ok(self.head.forward(&pooled))
    }

    fn params(&self) -> &Params {
        &self.params
    }
}
