//! The reference's training transforms, seeded: random crop with zero
//! padding, horizontal flip, (CIFAR-100) rotation within +-15 degrees, then
//! ToTensor and per-channel normalisation. The draws come from our own RNG, so
//! the same seed gives the same batch on every machine.

use crate::spaces::Dataset;
use rand::Rng;

/// Per-channel mean and std the reference normalises with.
pub fn mean_std(d: Dataset) -> ([f32; 3], [f32; 3]) {
    match d {
        Dataset::Cifar10 => ([0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010]),
        Dataset::Cifar100 => ([0.507_075_2, 0.486_548_87, 0.440_917_84], [0.267_334_28, 0.256_438_46, 0.276_150_47]),
        Dataset::ImageNet16 | Dataset::Sst2 => {
            ([122.68 / 255.0, 116.66 / 255.0, 104.01 / 255.0], [63.22 / 255.0, 61.26 / 255.0, 65.09 / 255.0])
        }
    }
}

/// Transforms one HWC RGB image into normalised CHW floats.
pub fn train_transform(d: Dataset, img: &[u8], (h, w): (usize, usize), rng: &mut impl Rng) -> Vec<f32> {
    let pad = match d {
        Dataset::ImageNet16 => 2,
        _ => 4,
    };
    // RandomCrop(size, padding=pad): offsets into the zero-padded image.
    let dy = rng.random_range(0..=2 * pad) as isize - pad as isize;
    let dx = rng.random_range(0..=2 * pad) as isize - pad as isize;
    let flip = rng.random_bool(0.5);
    let angle = match d {
        Dataset::Cifar100 => rng.random_range(-15.0f64..=15.0).to_radians(),
        _ => 0.0,
    };
    let (mean, std) = mean_std(d);
    let pixel = |y: isize, x: isize, c: usize| -> f32 {
        if y < 0 || x < 0 || y >= h as isize || x >= w as isize {
            0.0
        } else {
            f32::from(img[(y as usize * w + x as usize) * 3 + c])
        }
    };
    let (sin, cos) = angle.sin_cos();
    let (cy, cx) = ((h as f64 - 1.0) / 2.0, (w as f64 - 1.0) / 2.0);
    let mut out = vec![0f32; 3 * h * w];
    for y in 0..h {
        for x in 0..w {
            // crop, then flip, then rotate (nearest, fill 0), as composed.
            let (mut sy, mut sx) = (y as f64, if flip { (w - 1 - x) as f64 } else { x as f64 });
            if angle != 0.0 {
                let (ry, rx) = (sy - cy, sx - cx);
                sy = cy + rx * sin + ry * cos;
                sx = cx + rx * cos - ry * sin;
            }
            let (iy, ix) = (sy.round() as isize + dy, sx.round() as isize + dx);
            let inside = sy.round() >= 0.0 && sx.round() >= 0.0 && sy.round() < h as f64 && sx.round() < w as f64;
            for c in 0..3 {
                let v = if inside { pixel(iy, ix, c) } else { 0.0 };
                out[c * h * w + y * w + x] = (v / 255.0 - mean[c]) / std[c];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn transform_is_seeded_and_normalised() {
        let img: Vec<u8> = (0..32 * 32 * 3).map(|i| (i % 251) as u8).collect();
        let a = train_transform(Dataset::Cifar10, &img, (32, 32), &mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
        let b = train_transform(Dataset::Cifar10, &img, (32, 32), &mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
        assert_eq!(a, b);
        assert_eq!(a.len(), 3 * 32 * 32);
        // a zero (padding) pixel normalises to -mean/std
        let (m, s) = mean_std(Dataset::Cifar10);
        let zero_r = -m[0] / s[0];
        let all_black =
            train_transform(Dataset::Cifar10, &[0; 3072], (32, 32), &mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
        assert!(all_black[..1024].iter().all(|v| (*v - zero_r).abs() < 1e-6));
    }
}
