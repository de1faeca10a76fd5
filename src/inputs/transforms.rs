//! The reference's training transforms, seeded: random crop with zero
//! padding, horizontal flip, (CIFAR-100) rotation within +-15 degrees, then
//! ToTensor and per-channel normalisation. The draws come from our own RNG, so
//! the same seed gives the same batch on every machine.

use crate::dataset::Dataset;
use rand::Rng;

/// Per-channel mean and std the reference normalises with.
pub fn mean_std(d: Dataset) -> ([f32; 3], [f32; 3]) {
    match d {
        Dataset::Cifar10 => ([0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010]),
        Dataset::Cifar100 => ([0.507_075_2, 0.486_548_87, 0.440_917_84], [0.267_334_28, 0.256_438_46, 0.276_150_47]),
        Dataset::ImageNet => ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        // ToTensor only
        Dataset::Taskonomy => ([0.0; 3], [1.0; 3]),
        Dataset::ImageNet16 | Dataset::Sst2 => {
            ([122.68 / 255.0, 116.66 / 255.0, 104.01 / 255.0], [63.22 / 255.0, 61.26 / 255.0, 65.09 / 255.0])
        }
    }
}

/// Transforms one HWC RGB image into normalised CHW floats.
pub fn train_transform(d: Dataset, img: &[u8], (h, w): (usize, usize), rng: &mut impl Rng) -> Vec<f32> {
    if d == Dataset::Taskonomy {
        // the reference feeds Taskonomy images with ToTensor only
        let mut out = vec![0f32; 3 * h * w];
        for (i, px) in img.chunks_exact(3).enumerate() {
            for c in 0..3 {
                out[c * h * w + i] = f32::from(px[c]) / 255.0;
            }
        }
        return out;
    }
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

/// torchvision's `RandomResizedCrop(size)` (scale 0.08-1, ratio 3/4-4/3,
/// bilinear), then ToTensor and normalisation: an RGB image of any size
/// (`px`, width x height) to normalised CHW floats of `size`.
pub fn random_resized_crop(
    d: Dataset,
    px: &[u8],
    (w, h): (u32, u32),
    (oh, ow): (usize, usize),
    rng: &mut impl Rng,
) -> Vec<f32> {
    let (wf, hf) = (f64::from(w), f64::from(h));
    let area = wf * hf;
    let (lo, hi) = ((3f64 / 4.0).ln(), (4f64 / 3.0).ln());
    let mut crop = None;
    for _ in 0..10 {
        let target = area * rng.random_range(0.08..=1.0);
        let aspect = rng.random_range(lo..=hi).exp();
        let cw = (target * aspect).sqrt().round();
        let ch = (target / aspect).sqrt().round();
        if cw > 0.0 && ch > 0.0 && cw <= wf && ch <= hf {
            let top = rng.random_range(0..=(hf - ch) as u32);
            let left = rng.random_range(0..=(wf - cw) as u32);
            crop = Some((left, top, cw as u32, ch as u32));
            break;
        }
    }
    // fallback: a centre crop with the ratio clamped to the range
    let (left, top, cw, ch) = crop.unwrap_or_else(|| {
        let ratio = wf / hf;
        let (cw, ch) = if ratio < 3.0 / 4.0 {
            (wf, (wf / (3.0 / 4.0)).round())
        } else if ratio > 4.0 / 3.0 {
            ((hf * 4.0 / 3.0).round(), hf)
        } else {
            (wf, hf)
        };
        (((wf - cw) / 2.0) as u32, ((hf - ch) / 2.0) as u32, cw as u32, ch as u32)
    });
    let img = image::RgbImage::from_raw(w, h, px.to_vec()).unwrap_or_else(|| image::RgbImage::new(w.max(1), h.max(1)));
    let cropped = image::imageops::crop_imm(&img, left, top, cw.max(1), ch.max(1)).to_image();
    let resized = image::imageops::resize(&cropped, ow as u32, oh as u32, image::imageops::FilterType::Triangle);
    let (mean, std) = mean_std(d);
    let mut out = vec![0f32; 3 * oh * ow];
    for (x, y, p) in resized.enumerate_pixels() {
        for c in 0..3 {
            out[c * oh * ow + y as usize * ow + x as usize] = (f32::from(p[c]) / 255.0 - mean[c]) / std[c];
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

    #[test]
    fn crop_then_flip_moves_each_channel_as_torchvision_does() {
        // a distinct value per pixel and channel; the crop offsets and the
        // flip drawn as the transform draws them (two offsets in 0..=8, then
        // a coin): out[c][y][x] = img[y + dy][x' + dx][c], x' = x or 31 - x,
        // 0 (normalised) outside
        let img: Vec<u8> = (0..32 * 32 * 3).map(|i| (i * 7 % 256) as u8).collect();
        let (m, s) = mean_std(Dataset::Cifar10);
        let mut flips = [false; 2];
        for seed in 0..12u64 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut twin = rng.clone();
            let out = train_transform(Dataset::Cifar10, &img, (32, 32), &mut rng);
            let (dy, dx) = (twin.random_range(0..=8) as isize - 4, twin.random_range(0..=8) as isize - 4);
            let flip = twin.random_bool(0.5);
            flips[usize::from(flip)] = true;
            for (c, y, x) in (0..3).flat_map(|c| (0..32).flat_map(move |y| (0..32).map(move |x| (c, y, x)))) {
                let (sy, sx) = (y as isize + dy, if flip { 31 - x as isize } else { x as isize } + dx);
                let inside = (0..32).contains(&sy) && (0..32).contains(&sx);
                let v = if inside { f32::from(img[(sy as usize * 32 + sx as usize) * 3 + c]) } else { 0.0 };
                assert_eq!(out[c * 1024 + y * 32 + x], (v / 255.0 - m[c]) / s[c], "seed {seed} c {c} y {y} x {x}");
            }
        }
        assert_eq!(flips, [true, true], "both flips drawn over the seeds");
    }
}
