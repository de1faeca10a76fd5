//! The NDS design spaces: one space per NDS file, whose architectures are the
//! file's records (index = position in the file, arch = the record's `net`
//! as JSON). Cell spaces (DARTS, ENAS, PNAS, Amoeba, NASNet and their
//! variants) build `NetworkImageNet` / `NetworkCIFAR`; ResNet, ResNeXt and
//! Vanilla spaces build pycls `AnyNet`.

use super::Space;
use crate::dataset::Dataset;
use crate::nets::anynet::{AnyNet, AnyNetSpec};
use crate::nets::darts::{self, DartsNet, Genotype};
use crate::nets::Net;
use crate::shown::shorten;
use anyhow::{bail, Context, Result};

/// An NDS space over one file's records.
pub struct NdsSpace {
    name: String,
    nets: Vec<serde_json::Value>,
    datasets: &'static [Dataset],
}

impl NdsSpace {
    /// A space called `name` over the records' `nets` (index = position),
    /// from `source` (named in errors), of ImageNet or CIFAR-10 networks.
    /// Every net is checked now, so that a bad record is named when the
    /// file is read, not when its network is scored.
    pub fn new(name: &str, source: &str, nets: Vec<serde_json::Value>, dataset: Dataset) -> Result<Self> {
        let imagenet = dataset == Dataset::ImageNet;
        for (i, net) in nets.iter().enumerate() {
            parse_net(net, imagenet, dataset.num_classes()).with_context(|| format!("{source}: record {i}"))?;
        }
        let datasets: &'static [Dataset] = if imagenet { &[Dataset::ImageNet] } else { &[Dataset::Cifar10] };
        Ok(Self { name: name.to_string(), nets, datasets })
    }
}

/// An NDS `net` description, checked.
#[derive(Debug, Clone)]
pub enum NdsNet {
    /// A cell network (`genotype`, `width`, `depth`).
    Cell {
        /// The cells' genotype.
        genotype: Genotype,
        /// Channels of the first cells.
        width: i64,
        /// Cells.
        depth: i64,
        /// Whether the record asks for training-only parts (`aux: true` or
        /// `drop_prob` > 0), which are not built.
        training_only: bool,
    },
    /// A pycls AnyNet.
    AnyNet(AnyNetSpec),
}

/// Parses and checks an NDS `net` description: every field against the
/// space's ranges (see `nets::darts` and `nets::anynet`), and the estimated
/// parameter count against the limit, before anything is built.
pub fn parse_net(net: &serde_json::Value, imagenet: bool, num_classes: i64) -> Result<NdsNet> {
    if !net.is_object() {
        bail!("NDS net must be a JSON object, got {}", shorten(&net.to_string()));
    }
    if let Some(g) = net.get("genotype") {
        let genotype: Genotype = serde_json::from_value(g.clone())
            .map_err(|e| anyhow::anyhow!("NDS net: malformed genotype: {}", shorten(&e.to_string())))?;
        genotype.validate().context("NDS net")?;
        let field = |f: &str, range: std::ops::RangeInclusive<i64>| -> Result<i64> {
            let v = net.get(f).with_context(|| format!("NDS net has no field '{f}'"))?;
            v.as_i64().with_context(|| {
                format!(
                    "NDS net: {f} {} is not an integer in {}..={}",
                    shorten(&v.to_string()),
                    range.start(),
                    range.end()
                )
            })
        };
        let width = field("width", darts::WIDTHS)?;
        let depth = field("depth", darts::DEPTHS)?;
        let aux = match net.get("aux") {
            None => false,
            Some(v) => {
                v.as_bool().with_context(|| format!("NDS net: aux {} is not true or false", shorten(&v.to_string())))?
            }
        };
        let drop_prob = match net.get("drop_prob") {
            None => 0.0,
            Some(v) => v.as_f64().filter(|p| (0.0..=1.0).contains(p)).with_context(|| {
                format!("NDS net: drop_prob {} out of range (a number in 0..=1)", shorten(&v.to_string()))
            })?,
        };
        darts::check_size(&genotype, width, depth, imagenet, num_classes)?;
        Ok(NdsNet::Cell { genotype, width, depth, training_only: aux || drop_prob > 0.0 })
    } else if net.get("block_type").is_some() {
        let spec: AnyNetSpec = serde_json::from_value(net.clone())
            .map_err(|e| anyhow::anyhow!("NDS net: malformed AnyNet description: {}", shorten(&e.to_string())))?;
        spec.validate(imagenet, num_classes)?;
        Ok(NdsNet::AnyNet(spec))
    } else {
        bail!("NDS net has neither 'genotype' nor 'block_type'")
    }
}

/// Says once per process that a record's training-only parts are ignored.
fn note_training_only() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        eprintln!(
            "note: NDS 'aux: true' and 'drop_prob' > 0 only act in training; rbflex scores untrained networks, so it \
             builds no auxiliary head and drops no path"
        );
    });
}

/// Builds a network from an NDS `net` description (checked by [`parse_net`]).
pub fn build_net(net: &serde_json::Value, imagenet: bool, num_classes: i64) -> Result<Box<dyn Net>> {
    match parse_net(net, imagenet, num_classes)? {
        NdsNet::Cell { genotype, width, depth, training_only } => {
            if training_only {
                note_training_only();
            }
            Ok(Box::new(DartsNet::new(&genotype, width, depth, imagenet, num_classes)?))
        }
        NdsNet::AnyNet(spec) => Ok(Box::new(AnyNet::new(&spec, imagenet, num_classes)?)),
    }
}

impl Space for NdsSpace {
    fn name(&self) -> &str {
        &self.name
    }
    fn len(&self) -> usize {
        self.nets.len()
    }
    fn arch(&self, index: usize) -> Result<String> {
        let net = self
            .nets
            .get(index)
            .with_context(|| format!("{} index {index} out of range 0..{}", self.name, self.len()))?;
        Ok(serde_json::to_string(net)?)
    }
    fn index_of(&self, arch: &str) -> Result<usize> {
        let v: serde_json::Value = serde_json::from_str(arch)
            .with_context(|| format!("{}: the arch must be a record's 'net' as JSON", self.name))?;
        self.nets.iter().position(|n| *n == v).with_context(|| format!("{}: no record has this net", self.name))
    }
    fn build(&self, arch: &str, dataset: Dataset) -> Result<Box<dyn Net>> {
        let v: serde_json::Value = serde_json::from_str(arch)
            .with_context(|| format!("{}: the arch must be a record's 'net' as JSON", self.name))?;
        build_net(&v, dataset == Dataset::ImageNet, dataset.num_classes())
    }
    fn datasets(&self) -> &'static [Dataset] {
        self.datasets
    }
    fn mutate(&self, arch: &str, rng: &mut dyn rand::RngCore) -> Option<Result<String>> {
        Some(super::mutation::nds::mutate(&self.nets, &self.name, arch, rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: &str = r#"{"aux": false, "depth": 3, "width": 8, "genotype": {"normal": [["sep_conv_3x3", 0], ["skip_connect", 1]], "normal_concat": [2], "reduce": [["max_pool_3x3", 0], ["dil_conv_3x3", 1]], "reduce_concat": [2]}}"#;

    fn one(net: &str) -> Result<NdsSpace> {
        NdsSpace::new("nds-x", "f.json", vec![serde_json::from_str(net)?], Dataset::Cifar10)
    }

    #[test]
    fn every_net_is_checked_when_the_space_is_opened_naming_its_record() {
        for (bad, want) in [
            (NET.replace(r#""depth": 3"#, r#""depth": -1"#), "NDS net: depth -1 out of range (1..=64)"),
            (NET.replace(r#""depth": 3"#, r#""depth": 100000"#), "NDS net: depth 100000 out of range (1..=64)"),
            (
                NET.replace(r#""width": 8"#, r#""width": 1"#),
                "NDS net: width 1 out of range (an even number in 8..=512)",
            ),
            (
                NET.replace(r#""width": 8"#, r#""width": 9"#),
                "NDS net: width 9 out of range (an even number in 8..=512)",
            ),
            (
                NET.replace(r#""normal_concat": [2]"#, r#""normal_concat": []"#),
                "NDS net: genotype normal_concat has 0 states; expected 1 to 3 (the cell's states)",
            ),
            (
                NET.replace(r#""reduce_concat": [2]"#, r#""reduce_concat": [0]"#),
                "NDS net: genotype reduce_concat holds state 0; expected states 2..=2",
            ),
            (NET.replace(r#""aux": false"#, r#""aux": 3"#), "NDS net: aux 3 is not true or false"),
            (
                NET.replace(r#""aux": false"#, r#""drop_prob": 2"#),
                "NDS net: drop_prob 2 out of range (a number in 0..=1)",
            ),
        ] {
            let e = format!("{:#}", one(&bad).err().unwrap());
            assert_eq!(e, format!("f.json: record 0: {want}"), "{bad}");
        }
        assert_eq!(one(NET).unwrap().len(), 1);
    }
}
