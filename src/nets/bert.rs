//! BERT-base-uncased for sequence classification (Hugging Face layout and
//! parameter names), with the chosen activation in every feed-forward block.
//!
//! Input: a float `[N, 2, L]` tensor holding each sentence's token ids (row
//! 0) and attention mask (row 1), so that text fits the image-shaped input
//! the scoring engine passes around (ids < 2^24 are exact in f32).

use super::activation::Activation;
use super::{BnStats, Net, Params, Sink};
use tch::{Kind, Tensor};

/// BERT-base hyper-parameters (`bert_base_uncased_config.json`).
#[derive(Debug, Clone, Copy)]
pub struct BertConfig {
    /// Vocabulary size.
    pub vocab: i64,
    /// Hidden size.
    pub hidden: i64,
    /// Encoder layers.
    pub layers: i64,
    /// Attention heads.
    pub heads: i64,
    /// Feed-forward size.
    pub ffn: i64,
    /// Position embeddings.
    pub positions: i64,
    /// Token types.
    pub types: i64,
    /// Classes of the classifier.
    pub labels: i64,
}

impl BertConfig {
    /// bert-base-uncased with a 2-way classifier (SST-2).
    pub const BASE: BertConfig =
        BertConfig { vocab: 30522, hidden: 768, layers: 12, heads: 12, ffn: 3072, positions: 512, types: 2, labels: 2 };
}

struct Lin {
    w: Tensor,
    b: Tensor,
}

impl Lin {
    fn new(p: &mut Params, names: &mut Vec<String>, prefix: &str, f_in: i64, f_out: i64) -> Self {
        let (w, b) = p.linear_xavier(prefix, f_in, f_out);
        names.push(format!("{prefix}.weight"));
        Self { w, b }
    }
    fn fwd(&self, x: &Tensor) -> Tensor {
        let y = x.linear(&self.w, Some(&self.b));
        super::layers::layer_outputs::record(&y, &self.w);
        y
    }
}

struct Norm {
    w: Tensor,
    b: Tensor,
}

impl Norm {
    fn new(p: &mut Params, prefix: &str, d: i64) -> Self {
        let (w, b) = p.norm_affine(prefix, d);
        Self { w, b }
    }
    fn fwd(&self, x: &Tensor) -> Tensor {
        let d = self.w.size()[0];
        x.layer_norm([d], Some(&self.w), Some(&self.b), 1e-12, false)
    }
}

struct Layer {
    q: Lin,
    k: Lin,
    v: Lin,
    attn_out: Lin,
    attn_norm: Norm,
    inter: Lin,
    out: Lin,
    out_norm: Norm,
}

/// BERT for sequence classification.
pub struct Bert {
    params: Params,
    cfg: BertConfig,
    act: Activation,
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    emb_norm: Norm,
    layers: Vec<Layer>,
    pooler: Lin,
    classifier: Lin,
    linear_weights: Vec<String>,
}

impl Bert {
    /// Builds the model: embeddings normal(0, 0.02) (padding row 0 zeroed),
    /// LayerNorms 1/0, every Linear weight xavier-uniform (the reference's
    /// re-initialisation) and bias 0, in Hugging Face's module order.
    pub fn new(cfg: BertConfig, act: Activation) -> Self {
        let mut p = Params::new();
        let mut names = Vec::new();
        let e = "bert.embeddings";
        let word = p.embedding(&format!("{e}.word_embeddings.weight"), cfg.vocab, cfg.hidden, 0.02, Some(0));
        let position = p.embedding(&format!("{e}.position_embeddings.weight"), cfg.positions, cfg.hidden, 0.02, None);
        let token_type = p.embedding(&format!("{e}.token_type_embeddings.weight"), cfg.types, cfg.hidden, 0.02, None);
        let emb_norm = Norm::new(&mut p, &format!("{e}.LayerNorm"), cfg.hidden);
        let h = cfg.hidden;
        let layers = (0..cfg.layers)
            .map(|i| {
                let l = format!("bert.encoder.layer.{i}");
                Layer {
                    q: Lin::new(&mut p, &mut names, &format!("{l}.attention.self.query"), h, h),
                    k: Lin::new(&mut p, &mut names, &format!("{l}.attention.self.key"), h, h),
                    v: Lin::new(&mut p, &mut names, &format!("{l}.attention.self.value"), h, h),
                    attn_out: Lin::new(&mut p, &mut names, &format!("{l}.attention.output.dense"), h, h),
                    attn_norm: Norm::new(&mut p, &format!("{l}.attention.output.LayerNorm"), h),
                    inter: Lin::new(&mut p, &mut names, &format!("{l}.intermediate.dense"), h, cfg.ffn),
                    out: Lin::new(&mut p, &mut names, &format!("{l}.output.dense"), cfg.ffn, h),
                    out_norm: Norm::new(&mut p, &format!("{l}.output.LayerNorm"), h),
                }
            })
            .collect();
        let pooler = Lin::new(&mut p, &mut names, "bert.pooler.dense", h, h);
        let classifier = Lin::new(&mut p, &mut names, "classifier", h, cfg.labels);
        Self {
            params: p,
            cfg,
            act,
            word,
            position,
            token_type,
            emb_norm,
            layers,
            pooler,
            classifier,
            linear_weights: names,
        }
    }

    /// Re-draws every Linear weight with xavier-uniform, as the reference does
    /// right after loading its pretrained checkpoint.
    pub fn reinit_linear(&self) {
        self.params.redraw_xavier(&self.linear_weights);
    }

    fn encode(&self, ids: &Tensor, mask: &Tensor, sink: &mut dyn Sink) -> Tensor {
        let (n, len) = (ids.size()[0], ids.size()[1]);
        let h = self.cfg.hidden;
        let heads = self.cfg.heads;
        let dh = h / heads;
        let pos = Tensor::arange(len, (Kind::Int64, ids.device()));
        let types = Tensor::zeros([n, len], (Kind::Int64, ids.device()));
        let emb = Tensor::embedding(&self.word, ids, 0, false, false)
            + Tensor::embedding(&self.token_type, &types, -1, false, false);
        let emb = emb + Tensor::embedding(&self.position, &pos, -1, false, false);
        let mut x = self.emb_norm.fwd(&emb);
        // (1 - mask) * finfo(float32).min, broadcast over heads and queries
        let ext = (Tensor::ones_like(mask) - mask).view([n, 1, 1, len]) * f64::from(f32::MIN);
        let split = |t: Tensor| t.view([n, len, heads, dh]).permute([0, 2, 1, 3]);
        for l in &self.layers {
            let (q, k, v) = (split(l.q.fwd(&x)), split(l.k.fwd(&x)), split(l.v.fwd(&x)));
            let scores = q.matmul(&k.transpose(-1, -2)) / (dh as f64).sqrt() + &ext;
            let probs = scores.softmax(-1, Kind::Float);
            let ctx = probs.matmul(&v).permute([0, 2, 1, 3]).contiguous().view([n, len, h]);
            let a = l.attn_norm.fwd(&(l.attn_out.fwd(&ctx) + &x));
            let inter = self.act.apply(&l.inter.fwd(&a));
            sink.activation(&inter);
            x = l.out_norm.fwd(&(l.out.fwd(&inter) + &a));
        }
        let pooled = self.pooler.fwd(&x.select(1, 0)).tanh();
        sink.last_input(&pooled);
        self.classifier.fwd(&pooled)
    }
}

impl Net for Bert {
    /// `x` is `[N, 2, L]` (ids, mask). Per image (sentence), each goes alone.
    fn forward(&self, x: &Tensor, stats: BnStats, sink: &mut dyn Sink) -> anyhow::Result<Tensor> {
        let ids = x.select(1, 0).to_kind(Kind::Int64);
        let mask = x.select(1, 1).to_kind(Kind::Float);
        Ok(match stats {
            BnStats::Batch | BnStats::Off | BnStats::Eval => self.encode(&ids, &mask, sink),
            BnStats::PerImage => {
                let mut rows = RowCollector::default();
                let mut logits = Vec::new();
                for i in 0..ids.size()[0] {
                    rows.start();
                    logits.push(self.encode(&ids.narrow(0, i, 1), &mask.narrow(0, i, 1), &mut rows));
                }
                rows.replay(sink);
                Tensor::cat(&logits, 0)
            }
        })
    }

    fn params(&self) -> &Params {
        &self.params
    }
}

/// Collects each sentence's reports so that they reach the real sink as one
/// `[N, ...]` tensor per capture point (each sentence runs alone).
#[derive(Default)]
struct RowCollector {
    acts: Vec<Vec<Tensor>>,
    lasts: Vec<Vec<Tensor>>,
    pos: usize,
    sentence: usize,
}

impl RowCollector {
    fn start(&mut self) {
        self.pos = 0;
        self.sentence += 1;
    }

    fn replay(self, sink: &mut dyn Sink) {
        for group in self.acts {
            sink.activation(&Tensor::cat(&group, 0));
        }
        for group in self.lasts {
            sink.last_input(&Tensor::cat(&group, 0));
        }
    }
}

impl Sink for RowCollector {
    fn activation(&mut self, out: &Tensor) {
        if self.sentence == 1 {
            self.acts.push(Vec::new());
        }
        if let Some(g) = self.acts.get_mut(self.pos) {
            g.push(out.shallow_clone());
        }
        self.pos += 1;
    }
    fn last_input(&mut self, out: &Tensor) {
        if self.sentence == 1 {
            self.lasts.push(Vec::new());
        }
        if let Some(g) = self.lasts.last_mut() {
            g.push(out.shallow_clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_count_is_bert_base_plus_classifier() {
        let cfg = BertConfig { layers: 1, ..BertConfig::BASE };
        let one = Bert::new(cfg, Activation::GELU).params().count();
        // embeddings 23,837,184 + one layer 7,087,872 + pooler 590,592 + classifier 1,538
        assert_eq!(one, 23_837_184 + 7_087_872 + 590_592 + 1_538);
        // the full model: 109,482,240 (bert-base-uncased) + 1,538
        assert_eq!(one + 11 * 7_087_872, 109_483_778);
    }
}
