//! NAFBee's two "spaces": one network, 11 activation functions. The
//! architecture string is the activation's name; the index is its position
//! in NAFBee's table (ReLU, GELU, SiLU, LeakyReLU, ReLU6, Mish, Hardswish,
//! CELU, ELU, Hardtanh, SELU).

use super::{Dataset, Space};
use crate::nets::activation::Activation;
use crate::nets::bert::{Bert, BertConfig};
use crate::nets::vgg::Vgg19;
use crate::nets::Net;
use anyhow::{Context, Result};

fn arch(index: usize) -> Result<String> {
    Activation::ALL
        .get(index)
        .map(|a| a.name().to_string())
        .with_context(|| format!("NAFBee index {index} out of range 0..11"))
}

fn index_of(arch: &str) -> Result<usize> {
    let a = Activation::parse(arch)?;
    Ok(Activation::ALL.iter().position(|x| *x == a).unwrap_or(0))
}

/// VGG-19 on CIFAR-10 with each activation.
#[derive(Debug, Clone, Copy, Default)]
pub struct NafbeeVgg19;

impl Space for NafbeeVgg19 {
    fn name(&self) -> &'static str {
        "nafbee-vgg19"
    }
    fn len(&self) -> usize {
        Activation::ALL.len()
    }
    fn arch(&self, index: usize) -> Result<String> {
        arch(index)
    }
    fn index_of(&self, arch: &str) -> Result<usize> {
        index_of(arch)
    }
    fn build(&self, arch: &str, dataset: Dataset) -> Result<Box<dyn Net>> {
        Ok(Box::new(Vgg19::new(Activation::parse(arch)?, dataset.num_classes())))
    }
    fn datasets(&self) -> &'static [Dataset] {
        &[Dataset::Cifar10]
    }
}

/// BERT-base on SST-2 with each activation in the feed-forward blocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct NafbeeBert;

impl Space for NafbeeBert {
    fn name(&self) -> &'static str {
        "nafbee-bert"
    }
    fn len(&self) -> usize {
        Activation::ALL.len()
    }
    fn arch(&self, index: usize) -> Result<String> {
        arch(index)
    }
    fn index_of(&self, arch: &str) -> Result<usize> {
        index_of(arch)
    }
    fn build(&self, arch: &str, _dataset: Dataset) -> Result<Box<dyn Net>> {
        Ok(Box::new(Bert::new(BertConfig::BASE, Activation::parse(arch)?)))
    }
    fn datasets(&self) -> &'static [Dataset] {
        &[Dataset::Sst2]
    }
}
