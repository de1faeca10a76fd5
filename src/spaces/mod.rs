//! Design spaces: architecture encodings, their official index order, and how
//! each architecture becomes a network. A new space is one module here that
//! implements [`Space`] plus one entry in [`crate::catalog::REGISTRY`].

pub mod mutation;
pub mod nafbee;
pub mod nats_sss;
pub mod nb201;
pub mod nds;
pub mod transnas;

use crate::dataset::Dataset;
use crate::nets::{seeded, Net};
use anyhow::Result;

/// A design space.
pub trait Space: Send + Sync {
    /// Short name used on the command line (`--space`).
    fn name(&self) -> &str;
    /// Number of architectures.
    fn len(&self) -> usize;
    /// Whether the space is empty (never, for a real space).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The architecture string at an official index.
    fn arch(&self, index: usize) -> Result<String>;
    /// The official index of an architecture string.
    fn index_of(&self, arch: &str) -> Result<usize>;
    /// Builds a freshly initialised network (draws from the global tch RNG in
    /// PyTorch's construction order).
    fn build(&self, arch: &str, dataset: Dataset) -> Result<Box<dyn Net>>;
    /// The datasets with ground truth for this space.
    fn datasets(&self) -> &'static [Dataset];
    /// Whether its networks report every Conv2d, BatchNorm and Linear call
    /// to `nets::layers::sites` (the built-in networks do; a user's
    /// nn.Module does not yet), which [`Proxy::reads_layer_calls`]
    /// proxies need.
    ///
    /// [`Proxy::reads_layer_calls`]: crate::proxies::Proxy::reads_layer_calls
    fn reports_layer_calls(&self) -> bool {
        true
    }
    /// Estimated bytes a network's scoring holds at once for an input of
    /// `input` shape (`[N, C, H, W]`), used to bound memory across parallel
    /// workers; 0 for spaces whose networks are small.
    fn working_set(&self, _arch: &str, _input: &[i64]) -> Result<u64> {
        Ok(0)
    }
    /// A valid, different network of the space one mutation from `arch`
    /// (guided search, see `mutation`), drawn from `rng` alone; `None`: this
    /// space has no mutation (evolution is refused on it).
    fn mutate(&self, _arch: &str, _rng: &mut dyn rand::RngCore) -> Option<Result<String>> {
        None
    }
    /// A network of the space that mixes the genes of `a` and `b`
    /// (`search --crossover`), drawn from `rng` alone; `None`: this space's
    /// encoding has no crossover (the evolution then only mutates).
    fn crossover(&self, _a: &str, _b: &str, _rng: &mut dyn rand::RngCore) -> Option<Result<String>> {
        None
    }
}

/// Builds `arch` right after `tch::manual_seed(seed)`, as the reference does
/// after `torch.manual_seed(seed)`; safe to call from many threads at once.
pub fn build_seeded(space: &dyn Space, arch: &str, dataset: Dataset, seed: i64) -> Result<Box<dyn Net>> {
    seeded(seed, || space.build(arch, dataset))
}
