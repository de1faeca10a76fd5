//! Weights drawn from the global tch RNG, seeded: PyTorch's
//! `torch.manual_seed(s)` then the module's construction, so that the
//! reference's weights are reproduced bit for bit, from any thread; and
//! [`signs_like`], a draw of that generator replayed without it.

use tch::Tensor;

/// Serialises "seed the global tch RNG, then draw a network's parameters", so
/// that networks built on several threads keep the weights their seed gives.
static INIT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` right after `tch::manual_seed(seed)`, holding the lock that keeps
/// other threads from drawing from the global RNG meanwhile.
pub fn seeded<T>(seed: i64, f: impl FnOnce() -> T) -> T {
    let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(seed);
    f()
}

/// A seed for a stream of its own, derived from `seed` and `salt`.
///
/// libtorch's CPU generator keeps only a seed's low 32 bits (`manual_seed(s)`
/// restarts MT19937 from `s & 0xffffffff`), so a salt XORed into the high
/// bits gives the very stream of the unsalted seed. This hashes both into the
/// low bits (SplitMix64's finaliser).
pub fn salted(seed: i64, salt: u64) -> i64 {
    let mut z = (seed as u64) ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) & 0xffff_ffff) as i64
}

/// The +-1 tensor shaped and laid out like `like` that
/// `seeded(seed, || (like.empty_like().bernoulli_(0.5) - 0.5) * 2)` gives,
/// drawn without the global generator or its lock.
///
/// On the CPU it replays libtorch's generator in Rust, bit for bit:
/// `manual_seed` restarts its MT19937 from the seed's low 32 bits, and
/// `bernoulli_(p)` draws one `random64` per element in memory order (two
/// 32-bit outputs, the first the high word) and yields 1 when
/// `(r & (2^53 - 1)) * 2^-53 < 0.5`, i.e. when bit 52 (the first output's bit
/// 20) is clear. libtorch's serial kernel takes ~20 ns per element behind
/// the generator's lock, which AZ-NAS' 10^7 draws per NB201 network felt. On
/// another device the draw stays libtorch's (its generators differ).
pub fn signs_like(seed: i64, like: &Tensor) -> Tensor {
    let u = like.detach().empty_like();
    if u.device() != tch::Device::Cpu {
        return seeded(seed, || {
            let mut u = u;
            let _ = u.bernoulli_float_(0.5);
            (u - 0.5) * 2.0
        });
    }
    // the truncation is libtorch's: mt19937 keeps the seed's low 32 bits
    let mut mt = rand_mt::Mt::new(seed as u32);
    let v: Vec<f32> = (0..u.numel())
        .map(|_| {
            let hi = mt.next_u32();
            let _lo = mt.next_u32();
            if hi & (1 << 20) == 0 {
                1.0
            } else {
                -1.0
            }
        })
        .collect();
    // empty_like is dense, so its strides address every element once and
    // the memory order above is the order the kernel fills
    Tensor::from_slice(&v).as_strided(u.size(), u.stride(), 0).to_kind(u.kind())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    fn by_libtorch(seed: i64, like: &Tensor) -> Tensor {
        seeded(seed, || {
            let mut u = like.empty_like();
            let _ = u.bernoulli_float_(0.5);
            (u - 0.5) * 2.0
        })
    }

    #[test]
    fn a_salt_in_the_high_bits_is_ignored_by_libtorch_and_salted_is_not() {
        let draw = |s: i64| seeded(s, || Tensor::randn([64], (Kind::Float, tch::Device::Cpu)));
        assert!(draw(5 ^ 0x2eed_0000_0000).equal(&draw(5)));
        assert!(!draw(salted(5, 0x2eed)).equal(&draw(5)));
        // fixed: a stream once chosen stays the same
        assert_eq!(salted(5, 0x2eed), salted(5, 0x2eed));
        assert_ne!(salted(5, 0x2eed), salted(6, 0x2eed));
        assert!((0..=u32::MAX as i64).contains(&salted(-1, 7)));
    }

    #[test]
    fn signs_are_libtorchs_bernoulli_bit_for_bit() {
        let nchw = Tensor::zeros([3, 5, 7, 4], (Kind::Float, tch::Device::Cpu));
        let cl = super::super::layout::channels_last(&nchw);
        assert!(super::super::layout::is_channels_last(&cl));
        let tokens = Tensor::zeros([2, 9, 6], (Kind::Float, tch::Device::Cpu));
        // seeds whose high bits differ only (as AZ-NAS' per-stage seeds do), negative ones
        for seed in [0i64, 1, 7, 0x7a00_0000_0003, -5, i64::MAX] {
            for like in [&nchw, &cl, &tokens] {
                let (a, b) = (signs_like(seed, like), by_libtorch(seed, like));
                assert_eq!(a.stride(), b.stride(), "seed {seed}");
                assert!(a.equal(&b), "seed {seed}, shape {:?}, strides {:?}", like.size(), like.stride());
            }
        }
        // both signs occur, about half each
        let s = signs_like(3, &Tensor::zeros([10_000], (Kind::Float, tch::Device::Cpu)));
        let plus = s.eq(1.0).sum(Kind::Int64).int64_value(&[]);
        assert!((4_800..5_200).contains(&plus), "{plus} of 10000 positive");
        assert_eq!(s.abs().eq(1.0).all().int64_value(&[]), 1);
    }
}
