//! The NDS design spaces: one space per NDS file, whose architectures are the
//! file's records (index = position in the file, arch = the record's `net`
//! as JSON). Cell spaces (DARTS, ENAS, PNAS, Amoeba, NASNet and their
//! variants) build `NetworkImageNet` / `NetworkCIFAR`; ResNet, ResNeXt and
//! Vanilla spaces build pycls `AnyNet`.

use super::{Dataset, Space};
use crate::benchmarks::nds::NdsTable;
use crate::nets::anynet::{AnyNet, AnyNetSpec};
use crate::nets::darts::{DartsNet, Genotype};
use crate::nets::Net;
use anyhow::{bail, Context, Result};

/// An NDS space over one table.
pub struct NdsSpace {
    name: &'static str,
    table: &'static NdsTable,
    datasets: &'static [Dataset],
}

impl NdsSpace {
    /// A space over `table`, called `name`.
    pub fn new(name: &'static str, table: &'static NdsTable) -> Self {
        let datasets: &'static [Dataset] = match table.dataset {
            Dataset::ImageNet => &[Dataset::ImageNet],
            _ => &[Dataset::Cifar10],
        };
        Self { name, table, datasets }
    }
}

/// Builds a network from an NDS `net` description.
pub fn build_net(net: &serde_json::Value, imagenet: bool, num_classes: i64) -> Result<Box<dyn Net>> {
    if let Some(g) = net.get("genotype") {
        let genotype: Genotype = serde_json::from_value(g.clone()).context("malformed genotype")?;
        let field = |f: &str| {
            net.get(f).and_then(|v| v.as_i64()).with_context(|| format!("NDS net has no integer field '{f}'"))
        };
        if net.get("aux").and_then(|v| v.as_bool()).unwrap_or(false) {
            // the auxiliary head only acts in training; it is not built
        }
        Ok(Box::new(DartsNet::new(&genotype, field("width")?, field("depth")? as usize, imagenet, num_classes)?))
    } else if net.get("block_type").is_some() {
        let spec: AnyNetSpec = serde_json::from_value(net.clone()).context("malformed AnyNet description")?;
        Ok(Box::new(AnyNet::new(&spec, imagenet, num_classes)?))
    } else {
        bail!("NDS net has neither 'genotype' nor 'block_type'")
    }
}

impl Space for NdsSpace {
    fn name(&self) -> &'static str {
        self.name
    }
    fn len(&self) -> usize {
        self.table.records.len()
    }
    fn arch(&self, index: usize) -> Result<String> {
        let r = self
            .table
            .records
            .get(index)
            .with_context(|| format!("{} index {index} out of range 0..{}", self.name, self.len()))?;
        Ok(serde_json::to_string(&r.net)?)
    }
    fn index_of(&self, arch: &str) -> Result<usize> {
        let v: serde_json::Value = serde_json::from_str(arch)
            .with_context(|| format!("{}: the arch must be a record's 'net' as JSON", self.name))?;
        self.table
            .records
            .iter()
            .position(|r| r.net == v)
            .with_context(|| format!("{}: no record has this net", self.name))
    }
    fn build(&self, arch: &str, dataset: Dataset) -> Result<Box<dyn Net>> {
        let v: serde_json::Value = serde_json::from_str(arch)
            .with_context(|| format!("{}: the arch must be a record's 'net' as JSON", self.name))?;
        build_net(&v, dataset == Dataset::ImageNet, dataset.num_classes())
    }
    fn datasets(&self) -> &'static [Dataset] {
        self.datasets
    }
}
