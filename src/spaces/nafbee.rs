//! NAFBee's two "spaces": one network, 11 activation functions. The
//! architecture string is the activation's name; the index is its position
//! in NAFBee's table (ReLU, GELU, SiLU, LeakyReLU, ReLU6, Mish, Hardswish,
//! CELU, ELU, Hardtanh, SELU).

use super::Space;
use crate::dataset::Dataset;
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

/// Which network a NAFBee space varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NafbeeNet {
    /// VGG-19 on CIFAR-10.
    Vgg19,
    /// BERT-base on SST-2 (the activation in the feed-forward blocks).
    Bert,
}

/// One network with each of the 11 activations.
#[derive(Debug, Clone, Copy)]
pub struct Nafbee(pub NafbeeNet);

/// VGG-19 on CIFAR-10.
pub static NAFBEE_VGG19: Nafbee = Nafbee(NafbeeNet::Vgg19);
/// BERT-base on SST-2.
pub static NAFBEE_BERT: Nafbee = Nafbee(NafbeeNet::Bert);

impl Space for Nafbee {
    fn name(&self) -> &str {
        match self.0 {
            NafbeeNet::Vgg19 => "nafbee-vgg19",
            NafbeeNet::Bert => "nafbee-bert",
        }
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
        let act = Activation::parse(arch)?;
        Ok(match self.0 {
            NafbeeNet::Vgg19 => Box::new(Vgg19::new(act, dataset.num_classes())),
            NafbeeNet::Bert => Box::new(Bert::new(BertConfig::BASE, act)),
        })
    }
    fn datasets(&self) -> &'static [Dataset] {
        match self.0 {
            NafbeeNet::Vgg19 => &[Dataset::Cifar10],
            NafbeeNet::Bert => &[Dataset::Sst2],
        }
    }
    fn mutate(&self, arch: &str, rng: &mut dyn rand::RngCore) -> Option<Result<String>> {
        Some(super::mutation::nafbee::mutate(arch, rng))
    }
}
