//! NDS (Radosavovic et al. 2019) records: each network's description and its
//! top-1 error. The ImageNet files are embedded (compact copies made by
//! `tools/pack_nds.py`); users pass the CIFAR-10 files, in the same format,
//! with `--benchmark FILE`.

use super::GroundTruth;
use crate::dataset::Dataset;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::io::Read;
use std::path::Path;

/// Which NDS accuracy to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Convention {
    /// `100 - min_test_top1` (the RBFleX code's choice).
    #[default]
    Rbflex,
    /// `100 - test_ep_top1[-1]`, the last epoch (NASWOT's choice).
    Naswot,
}

/// One NDS record.
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    /// The network description (`genotype, width, depth` or AnyNet fields).
    pub net: serde_json::Value,
    /// Parameter count.
    pub params: i64,
    /// Best test top-1 error (%).
    pub min_test_top1: f64,
    /// Last epoch's test top-1 error (%).
    pub last_test_top1: f64,
}

/// The embedded NDS files: (family, file name, gzipped compact JSON).
pub const EMBEDDED: &[(&str, &str, &[u8])] = &[
    ("amoeba", "Amoeba_in.json", include_bytes!("../../data/nds/Amoeba_in.json.gz")),
    ("darts", "DARTS_in.json", include_bytes!("../../data/nds/DARTS_in.json.gz")),
    ("darts-fix-w-d", "DARTS_fix-w-d_in.json", include_bytes!("../../data/nds/DARTS_fix-w-d_in.json.gz")),
    ("darts-lr-wd", "DARTS_lr-wd_in.json", include_bytes!("../../data/nds/DARTS_lr-wd_in.json.gz")),
    ("enas", "ENAS_in.json", include_bytes!("../../data/nds/ENAS_in.json.gz")),
    ("nasnet", "NASNet_in.json", include_bytes!("../../data/nds/NASNet_in.json.gz")),
    ("pnas", "PNAS_in.json", include_bytes!("../../data/nds/PNAS_in.json.gz")),
    ("resnext-a", "ResNeXt-A_in.json", include_bytes!("../../data/nds/ResNeXt-A_in.json.gz")),
    ("resnext-b", "ResNeXt-B_in.json", include_bytes!("../../data/nds/ResNeXt-B_in.json.gz")),
    ("resnet-lr-wd", "ResNet_lr-wd_in.json", include_bytes!("../../data/nds/ResNet_lr-wd_in.json.gz")),
    ("vanilla-lr-wd", "Vanilla_lr-wd_in.json", include_bytes!("../../data/nds/Vanilla_lr-wd_in.json.gz")),
    ("resnet-reruns", "ResNet_reruns.json", include_bytes!("../../data/nds/ResNet_reruns.json.gz")),
    ("vanilla-reruns", "Vanilla_reruns.json", include_bytes!("../../data/nds/Vanilla_reruns.json.gz")),
];

/// A loaded NDS file.
#[derive(Debug, Clone)]
pub struct NdsTable {
    /// Where the records came from.
    pub source: String,
    /// The records, in file order (the index of a network).
    pub records: Vec<Record>,
    /// ImageNet (`_in` files) or CIFAR-10.
    pub dataset: Dataset,
    /// Accuracy convention.
    pub convention: Convention,
}

#[derive(Deserialize)]
struct RawRecord {
    net: Option<serde_json::Value>,
    params: Option<i64>,
    min_test_top1: Option<f64>,
    test_ep_top1: Option<Vec<f64>>,
    last_test_top1: Option<f64>,
}

/// Largest NDS file read (the NDS CIFAR files are tens of MB).
pub const MAX_FILE_BYTES: u64 = 2 << 30;

/// An error rate (%) of a record, checked to be in 0..=100.
fn top1(source: &str, i: usize, field: &str, v: f64) -> Result<f64> {
    if !(0.0..=100.0).contains(&v) {
        bail!("{source}: record {i}: {field} {v} out of range (a top-1 error in 0..=100 %)");
    }
    Ok(v)
}

fn parse(text: &str, source: &str) -> Result<Vec<Record>> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| anyhow::anyhow!("{source} is not valid JSON {}", crate::files::json_error(&e)))?;
    let list = match v {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(mut m) => {
            let mut all = Vec::new();
            for key in ["top", "mid"] {
                if let Some(serde_json::Value::Array(a)) = m.remove(key) {
                    all.extend(a);
                }
            }
            all
        }
        _ => bail!("{source}: expected a list of records (or an object with 'top' and 'mid' lists)"),
    };
    if list.is_empty() {
        bail!("{source} holds no records");
    }
    list.into_iter()
        .enumerate()
        .map(|(i, item)| {
            let r: RawRecord = serde_json::from_value(item).map_err(|e| {
                anyhow::anyhow!("{source}: record {i} is malformed: {}", crate::shown::shorten(&e.to_string()))
            })?;
            let missing = |f: &str| anyhow::anyhow!("{source}: record {i} has no field '{f}'");
            // fields in the order the files hold them
            let net = r.net.ok_or_else(|| missing("net"))?;
            let params = r.params.ok_or_else(|| missing("params"))?;
            if params < 0 {
                bail!("{source}: record {i}: params {params} is negative");
            }
            let min_test_top1 =
                top1(source, i, "min_test_top1", r.min_test_top1.ok_or_else(|| missing("min_test_top1"))?)?;
            let last = match (r.last_test_top1, r.test_ep_top1) {
                (Some(l), _) => top1(source, i, "last_test_top1", l)?,
                (None, Some(v)) => {
                    for (e, x) in v.iter().enumerate() {
                        top1(source, i, &format!("test_ep_top1[{e}]"), *x)?;
                    }
                    *v.last().ok_or_else(|| anyhow::anyhow!("{source}: record {i}: test_ep_top1 is empty"))?
                }
                _ => return Err(missing("test_ep_top1")),
            };
            Ok(Record { net, params, min_test_top1, last_test_top1: last })
        })
        .collect()
}

impl NdsTable {
    /// An embedded family (`darts`, `resnet-lr-wd`, ...).
    pub fn embedded(family: &str, convention: Convention) -> Result<NdsTable> {
        let Some((_, file, gz)) = EMBEDDED.iter().find(|(f, _, _)| *f == family) else {
            let names: Vec<_> = EMBEDDED.iter().map(|(f, _, _)| *f).collect();
            bail!(
                "no embedded NDS family '{family}' (embedded: {}); pass --benchmark FILE for others",
                names.join(", ")
            );
        };
        let mut text = String::new();
        flate2::read::GzDecoder::new(*gz).read_to_string(&mut text).context("embedded NDS table is corrupt")?;
        let dataset = if file.contains("_in") { Dataset::ImageNet } else { Dataset::Cifar10 };
        Ok(NdsTable { source: format!("embedded {file}"), records: parse(&text, file)?, dataset, convention })
    }

    /// A user's NDS file; `_in` in its name means ImageNet, else CIFAR-10.
    pub fn from_file(path: &Path, convention: Convention) -> Result<NdsTable> {
        let text = crate::files::read_text_capped(path, "NDS file", MAX_FILE_BYTES)?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let dataset = if name.contains("_in") { Dataset::ImageNet } else { Dataset::Cifar10 };
        let source = path.display().to_string();
        Ok(NdsTable { records: parse(&text, &source)?, source, dataset, convention })
    }
}

impl GroundTruth for NdsTable {
    fn accuracy(&self, index: usize, dataset: Dataset) -> Option<f64> {
        if dataset != self.dataset {
            return None;
        }
        let r = self.records.get(index)?;
        Some(100.0 - if self.convention == Convention::Rbflex { r.min_test_top1 } else { r.last_test_top1 })
    }
    fn datasets(&self) -> &'static [Dataset] {
        match self.dataset {
            Dataset::ImageNet => &[Dataset::ImageNet],
            _ => &[Dataset::Cifar10],
        }
    }
    fn describe(&self) -> &'static str {
        match self.convention {
            Convention::Rbflex => "NDS test accuracy (%) = 100 - min_test_top1 (RBFleX convention)",
            Convention::Naswot => "NDS test accuracy (%) = 100 - test_ep_top1[-1] (NASWOT convention)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: &str = r#"{"aux": false, "depth": 3, "width": 8, "genotype": {"normal": [["sep_conv_3x3", 0], ["skip_connect", 1]], "normal_concat": [2], "reduce": [["max_pool_3x3", 0], ["dil_conv_3x3", 1]], "reduce_concat": [2]}}"#;

    fn one(net: &str, rest: &str) -> Result<Vec<Record>> {
        parse(&format!(r#"[{{"net": {net}{rest}}}]"#), "f.json")
    }

    #[test]
    fn bad_records_are_named() {
        let e = one(NET, r#", "params": 1, "min_test_top1": 3.0"#).unwrap_err().to_string();
        assert!(e.contains("record 0 has no field 'test_ep_top1'"), "{e}");
        let e = one(NET, r#", "min_test_top1": 3.0, "test_ep_top1": [4.0]"#).unwrap_err().to_string();
        assert!(e.contains("record 0 has no field 'params'"), "{e}");
        let e = parse(r#"[{"net": {}, "params": 1, "#, "f.json").unwrap_err().to_string();
        assert!(e.contains("f.json is not valid JSON at line 1 column 26") && e.contains("truncated?"), "{e}");
        let t = NdsTable::embedded("darts", Convention::Rbflex).unwrap();
        assert_eq!(t.records.len(), 121);
        assert_eq!(t.dataset, Dataset::ImageNet);
        assert!((t.accuracy(0, Dataset::ImageNet).unwrap() - (100.0 - 33.03)).abs() < 1e-9);
    }

    #[test]
    fn fields_are_checked_in_order_and_in_range() {
        // a record without its net is named for the net, not for a later field
        let e = parse(r#"[{"params": 1, "min_test_top1": 3.0}]"#, "f.json").unwrap_err();
        assert_eq!(e.to_string(), "f.json: record 0 has no field 'net'");
        // NaN is not JSON: said where, not "truncated"
        let e = parse(r#"[{"net": 1, "params": NaN}]"#, "f.json").unwrap_err().to_string();
        assert_eq!(e, "f.json is not valid JSON at line 1 column 23: expected value");
        for (field, rest) in [
            ("min_test_top1 101", r#", "params": 1, "min_test_top1": 101, "test_ep_top1": [4.0]"#),
            ("min_test_top1 -1", r#", "params": 1, "min_test_top1": -1, "test_ep_top1": [4.0]"#),
            ("test_ep_top1[1] 250", r#", "params": 1, "min_test_top1": 3, "test_ep_top1": [4.0, 250]"#),
        ] {
            let e = format!("{:#}", one(NET, rest).unwrap_err());
            assert_eq!(e, format!("f.json: record 0: {field} out of range (a top-1 error in 0..=100 %)"));
        }
        let ok = r#", "params": 1, "min_test_top1": 3, "test_ep_top1": [4.0]"#;
        assert_eq!(one(NET, ok).unwrap().len(), 1);
    }
}
