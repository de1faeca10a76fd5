//! Mutations for guided search (`search --strategy evolution`): one module
//! per space, each turning an architecture into a valid, different network
//! of the same space (one that has an official index), reached through
//! [`super::Space::mutate`].
//!
//! A mutation draws only from the generator it is given, so a seeded
//! search reproduces its whole history.
//!
//! Spaces whose encoding is a fixed list of genes (NB201's six edges,
//! NATS-SSS' five channel counts, TransNAS micro's six operations) also have
//! a uniform crossover ([`uniform`]), which any combination of two parents'
//! genes keeps in the space.

pub mod nafbee;
pub mod nats_sss;
pub mod nb201;
pub mod nds;
pub mod transnas;

use rand::{Rng, RngCore};

/// One of `choices` uniformly (`None` when there is none).
pub fn pick<T: Clone>(choices: &[T], rng: &mut dyn RngCore) -> Option<T> {
    if choices.is_empty() {
        return None;
    }
    Some(choices[rng.random_range(0..choices.len())].clone())
}

/// Uniform crossover: each gene from `a` or `b` with probability 1/2 (one
/// draw per gene, in order). `a` and `b` have the same length.
pub fn uniform<T: Clone>(a: &[T], b: &[T], rng: &mut dyn RngCore) -> Vec<T> {
    a.iter().zip(b).map(|(x, y)| if rng.random_bool(0.5) { x.clone() } else { y.clone() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn uniform_crossover_takes_each_gene_from_one_parent_and_mixes_them() {
        let (a, b) = ([0u8; 6], [1u8; 6]);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let kids: Vec<Vec<u8>> = (0..200).map(|_| uniform(&a, &b, &mut rng)).collect();
        let ones: usize = kids.iter().flatten().map(|g| *g as usize).sum();
        // 1,200 fair draws: 600 +- 5 sigma (87)
        assert!((513..=687).contains(&ones), "{ones} genes of 1,200 from b");
        assert!(kids.iter().any(|k| k.contains(&0) && k.contains(&1)), "no child mixes its parents");
    }
}
