//! Sentences for the NLP networks: the embedded SST-2 training sentences or a
//! user's file, tokenised with bert-base-uncased's WordPiece vocabulary by the
//! Hugging Face `tokenizers` crate.

use anyhow::{bail, Context, Result};
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::io::Read;
use std::path::Path;
use tch::Tensor;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::Tokenizer;

/// `[CLS]`'s id in the bert-base-uncased vocabulary.
pub const CLS: u32 = 101;
/// `[SEP]`'s id.
pub const SEP: u32 = 102;

fn gunzip(gz: &[u8], what: &str) -> Result<String> {
    let mut s = String::new();
    flate2::read::GzDecoder::new(gz).read_to_string(&mut s).with_context(|| format!("embedded {what} is corrupt"))?;
    Ok(s)
}

/// The bert-base-uncased tokenizer (lower-casing BERT normaliser, BERT
/// pre-tokeniser, WordPiece with `[UNK]`), from the embedded vocabulary.
pub fn bert_tokenizer() -> Result<Tokenizer> {
    let text = gunzip(include_bytes!("../../data/bert/vocab.txt.gz"), "BERT vocabulary")?;
    let vocab: ahash::AHashMap<String, u32> =
        text.lines().enumerate().map(|(i, t)| (t.to_string(), i as u32)).collect();
    let wp = WordPiece::builder()
        .vocab(vocab)
        .unk_token("[UNK]".into())
        .build()
        .map_err(|e| anyhow::anyhow!("cannot build the WordPiece model: {e}"))?;
    let mut tk = Tokenizer::new(wp);
    tk.with_normalizer(Some(BertNormalizer::new(true, true, None, true)));
    tk.with_pre_tokenizer(Some(BertPreTokenizer));
    Ok(tk)
}

/// A pool of sentences.
#[derive(Debug, Clone)]
pub struct Sentences {
    /// The sentences.
    pub items: Vec<String>,
    /// Where they came from.
    pub source: String,
}

/// Reads `label<TAB>sentence` lines (SST-2 TSV) or plain one-sentence lines.
fn parse(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_once('\t').map(|(_, s)| s).unwrap_or(l).trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Largest sentence file read (SST-2's train split is 4 MB).
pub const MAX_SENTENCE_FILE: u64 = 1 << 30;

impl Sentences {
    /// The embedded SST-2 training sentences (6,920).
    pub fn embedded() -> Result<Sentences> {
        let text = gunzip(include_bytes!("../../data/sst2/train.tsv.gz"), "SST-2 sentences")?;
        Ok(Sentences { items: parse(&text), source: "embedded SST-2 train sentences".into() })
    }

    /// A file of sentences (SST-2 TSV or one per line); empty is an error.
    pub fn from_file(path: &Path) -> Result<Sentences> {
        let text = crate::files::read_text_capped(path, "sentence file", MAX_SENTENCE_FILE)?;
        let items = parse(&text);
        if items.is_empty() {
            bail!("sentence file {} holds no sentences", path.display());
        }
        Ok(Sentences { items, source: path.display().to_string() })
    }

    /// `n` distinct sentences chosen with `seed`, tokenised as the reference
    /// does (`[CLS]` + WordPiece tokens, truncated to `max_len`, zero-padded;
    /// `[SEP]` appended before padding when `sep`): a float `[n, 2, max_len]`
    /// tensor of ids and attention mask.
    pub fn batch(&self, n: usize, seed: u64, max_len: usize, sep: bool) -> Result<Tensor> {
        if n > self.items.len() {
            bail!("asked for {n} sentences but {} holds only {}", self.source, self.items.len());
        }
        let tk = bert_tokenizer()?;
        let picks = sample(&mut ChaCha8Rng::seed_from_u64(seed), self.items.len(), n).into_vec();
        let mut data = Vec::with_capacity(n * 2 * max_len);
        for i in picks {
            let ids = encode(&tk, &self.items[i], max_len, sep)?;
            let mut row: Vec<f32> = ids.iter().map(|&t| t as f32).collect();
            let real = row.len();
            row.resize(max_len, 0.0);
            data.extend(&row);
            data.extend((0..max_len).map(|j| if j < real { 1.0f32 } else { 0.0 }));
        }
        Ok(Tensor::from_slice(&data).reshape([n as i64, 2, max_len as i64]))
    }
}

/// Token ids of one sentence: `[CLS]` + WordPiece ids (+ `[SEP]`), at most
/// `max_len`, unpadded.
pub fn encode(tk: &Tokenizer, sentence: &str, max_len: usize, sep: bool) -> Result<Vec<u32>> {
    let enc = tk.encode(sentence, false).map_err(|e| anyhow::anyhow!("cannot tokenise '{sentence}': {e}"))?;
    let mut ids = vec![CLS];
    ids.extend(enc.get_ids());
    if sep {
        ids.truncate(max_len.saturating_sub(1));
        ids.push(SEP);
    }
    ids.truncate(max_len);
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_token_ids() {
        let tk = bert_tokenizer().unwrap();
        let ids = encode(&tk, "The movie is UNBELIEVABLY good!", 50, true).unwrap();
        assert_eq!(ids[0], 101);
        assert_eq!(ids[1], 1996); // "the"
        assert_eq!(*ids.last().unwrap(), 102);
        let words: Vec<String> = ids.iter().map(|i| tk.id_to_token(*i).unwrap()).collect();
        // WordPiece splits an out-of-vocabulary word into the longest pieces
        assert_eq!(
            words,
            ["[CLS]", "the", "movie", "is", "un", "##bel", "##ie", "##va", "##bly", "good", "!", "[SEP]"]
        );
        let trunc = encode(&tk, &"word ".repeat(100), 50, false).unwrap();
        assert_eq!(trunc.len(), 50);
        let s = Sentences::embedded().unwrap();
        assert_eq!(s.items.len(), 6920);
        let b = s.batch(3, 1, 50, false).unwrap();
        assert_eq!(b.size(), [3, 2, 50]);
        assert_eq!(f64::try_from(b.get(0).get(0).get(0)).unwrap(), 101.0);
    }
}
