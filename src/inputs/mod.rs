//! Input images: the embedded samples, a user's image folder or official
//! CIFAR binary batches, and the reference's seeded training transforms.

pub mod text;
pub mod transforms;

use crate::spaces::Dataset;
use anyhow::{bail, Context, Result};
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::io::Read;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// 8-bit RGB images of one size, stored HWC.
#[derive(Debug, Clone)]
pub struct ImagePool {
    /// Height and width.
    pub size: (usize, usize),
    /// Pixels, `h * w * 3` bytes each.
    pub images: Vec<Vec<u8>>,
    /// Images of any size (ImageNet), as (pixels, width, height); cropped to
    /// `size` by the transform.
    pub any: Vec<(Vec<u8>, u32, u32)>,
    /// Where the images came from (shown in reports).
    pub source: String,
}

/// Height and width the dataset's networks are benchmarked at (`None` for
/// text).
pub fn native_size(d: Dataset) -> Option<(usize, usize)> {
    match d {
        Dataset::Cifar10 | Dataset::Cifar100 => Some((32, 32)),
        Dataset::ImageNet16 => Some((16, 16)),
        Dataset::ImageNet => Some((224, 224)),
        Dataset::Taskonomy => Some((512, 512)),
        Dataset::Sst2 => None,
    }
}

/// Whether images of any size are accepted (and cropped to the native size).
fn any_size(d: Dataset) -> bool {
    d == Dataset::ImageNet
}

/// The embedded Taskonomy RGB sample (8 images, 512x512).
const TASKONOMY: &[(&str, &[u8])] = &include!("taskonomy_files.rs");

/// The embedded full-size ImageNet sample (24 JPEGs, one per class shown).
const IMAGENET: &[(&str, &[u8])] = &include!("imagenet_files.rs");

impl ImagePool {
    /// The embedded sample for a dataset (see `data/README.md`).
    pub fn embedded(d: Dataset) -> Result<ImagePool> {
        if any_size(d) {
            let images = IMAGENET
                .iter()
                .map(|(name, bytes)| {
                    let img =
                        image::load_from_memory(bytes).with_context(|| format!("embedded image {name} is corrupt"))?;
                    Ok(raw_with_size(img.to_rgb8()))
                })
                .collect::<Result<Vec<_>>>()?;
            return Ok(ImagePool {
                size: (224, 224),
                images: Vec::new(),
                any: images,
                source: format!("embedded {d} sample"),
            });
        }
        if d == Dataset::Taskonomy {
            let images = TASKONOMY
                .iter()
                .map(|(name, bytes)| {
                    let img =
                        image::load_from_memory(bytes).with_context(|| format!("embedded image {name} is corrupt"))?;
                    Ok(img.to_rgb8().into_raw())
                })
                .collect::<Result<Vec<_>>>()?;
            return Ok(ImagePool { size: (512, 512), images, any: Vec::new(), source: format!("embedded {d} sample") });
        }
        let gz: &[u8] = match d {
            Dataset::Cifar10 => include_bytes!("../../data/images/cifar10.rgb.gz"),
            Dataset::Cifar100 => include_bytes!("../../data/images/cifar100.rgb.gz"),
            Dataset::ImageNet16 => include_bytes!("../../data/images/imagenet16.rgb.gz"),
            Dataset::Sst2 => bail!("{d} is a text dataset, not images"),
            Dataset::ImageNet | Dataset::Taskonomy => bail!("no fixed-size sample for {d}"),
        };
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(gz).read_to_end(&mut raw).context("embedded images are corrupt")?;
        let (h, w) = native_size(d).context("no image size")?;
        let images = raw.chunks_exact(h * w * 3).map(|c| c.to_vec()).collect();
        Ok(ImagePool { size: (h, w), images, any: Vec::new(), source: format!("embedded {d} sample") })
    }

    /// Reads a folder of images (PNG/JPEG, searched recursively, in path
    /// order) or of official CIFAR-10/100 binary batches (`*.bin`). Every image
    /// must be `size`; anything else is an error naming the file.
    pub fn from_dir(dir: &Path, d: Dataset) -> Result<ImagePool> {
        let size = native_size(d).with_context(|| format!("{d} takes sentences, not images"))?;
        if !dir.is_dir() {
            bail!("image folder {} does not exist or is not a folder", dir.display());
        }
        let mut files = Vec::new();
        collect_files(dir, &mut files)?;
        files.sort();
        let bins: Vec<&PathBuf> = files.iter().filter(|p| has_ext(p, &["bin"])).collect();
        if any_size(d) {
            let pics: Vec<&PathBuf> = files.iter().filter(|p| has_ext(p, &["png", "jpg", "jpeg"])).collect();
            if pics.is_empty() {
                bail!("image folder {} holds no images (.png, .jpg, .jpeg)", dir.display());
            }
            let any = pics
                .iter()
                .map(|p| {
                    let img = image::open(p).with_context(|| format!("cannot decode image {}", p.display()))?;
                    Ok(raw_with_size(img.to_rgb8()))
                })
                .collect::<Result<Vec<_>>>()?;
            return Ok(ImagePool { size, images: Vec::new(), any, source: dir.display().to_string() });
        }
        let images = if !bins.is_empty() {
            let mut all = Vec::new();
            for b in bins {
                all.extend(read_cifar_bin(b, size)?);
            }
            all
        } else {
            let pics: Vec<&PathBuf> = files.iter().filter(|p| has_ext(p, &["png", "jpg", "jpeg"])).collect();
            pics.iter().map(|p| read_image(p, size, d == Dataset::Taskonomy)).collect::<Result<Vec<_>>>()?
        };
        if images.is_empty() {
            bail!("image folder {} holds no images (.png, .jpg, .jpeg or CIFAR .bin batches)", dir.display());
        }
        Ok(ImagePool { size, images, any: Vec::new(), source: dir.display().to_string() })
    }

    /// A batch of `n` distinct images chosen with `seed`, transformed as the
    /// reference's training loader does for `d`: `[n, 3, H, W]` float32.
    pub fn batch(&self, d: Dataset, n: usize, seed: u64) -> Result<Tensor> {
        let count = self.images.len() + self.any.len();
        if n > count {
            bail!("asked for a batch of {n} images but {} holds only {count}", self.source);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let picks = sample(&mut rng, count, n).into_vec();
        let (h, w) = self.size;
        let mut data = Vec::with_capacity(n * 3 * h * w);
        for i in picks {
            if let Some((px, iw, ih)) = self.any.get(i) {
                data.extend(transforms::random_resized_crop(d, px, (*iw, *ih), self.size, &mut rng));
            } else {
                data.extend(transforms::train_transform(d, &self.images[i], self.size, &mut rng));
            }
        }
        Ok(Tensor::from_slice(&data).reshape([n as i64, 3, h as i64, w as i64]))
    }
}

fn raw_with_size(rgb: image::RgbImage) -> (Vec<u8>, u32, u32) {
    let (w, h) = rgb.dimensions();
    (rgb.into_raw(), w, h)
}

fn has_ext(p: &Path, exts: &[&str]) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| exts.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for e in entries {
        let p = e.with_context(|| format!("cannot list {}", dir.display()))?.path();
        if p.is_dir() {
            collect_files(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

fn read_image(p: &Path, size: (usize, usize), rgb_only: bool) -> Result<Vec<u8>> {
    let img = image::open(p).with_context(|| format!("cannot decode image {}", p.display()))?;
    if rgb_only && img.color().channel_count() != 3 {
        bail!("image {} is not RGB ({} channels, {:?})", p.display(), img.color().channel_count(), img.color());
    }
    let (w, h) = (img.width() as usize, img.height() as usize);
    if (h, w) != size {
        bail!("image {} is {w}x{h}, expected {}x{}", p.display(), size.1, size.0);
    }
    Ok(img.to_rgb8().into_raw())
}

/// Reads a CIFAR binary batch: records of 1 (CIFAR-10) or 2 (CIFAR-100) label
/// bytes then 3072 bytes of planar RGB.
fn read_cifar_bin(p: &Path, size: (usize, usize)) -> Result<Vec<Vec<u8>>> {
    if size != (32, 32) {
        bail!("CIFAR batch {} holds 32x32 images, this dataset needs {}x{}", p.display(), size.1, size.0);
    }
    let bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
    let label = if bytes.len() % 3073 == 0 {
        1
    } else if bytes.len() % 3074 == 0 {
        2
    } else {
        bail!(
            "{} is not a CIFAR binary batch: {} bytes is not a whole number of 3073- or 3074-byte records (truncated?)",
            p.display(),
            bytes.len()
        );
    };
    Ok(bytes
        .chunks_exact(3072 + label)
        .map(|rec| {
            let planar = &rec[label..];
            (0..1024).flat_map(|px| [planar[px], planar[1024 + px], planar[2048 + px]]).collect()
        })
        .collect())
}

/// Reads the float32 tensor `x` (`[N, C, H, W]`) from a safetensors file, used
/// as-is (no transforms).
pub fn load_input(path: &Path) -> Result<Tensor> {
    let tensors =
        Tensor::read_safetensors(path).with_context(|| format!("cannot read input file {}", path.display()))?;
    let x = tensors
        .into_iter()
        .find(|(n, _)| n == "x")
        .map(|(_, t)| t)
        .with_context(|| format!("input file {}: no tensor named 'x'", path.display()))?;
    if x.dim() != 4 || x.size()[1] != 3 {
        bail!("input file {}: 'x' has shape {:?}, expected [N, 3, H, W]", path.display(), x.size());
    }
    if x.size()[0] < 2 {
        bail!("input file {}: 'x' holds {} image(s); a kernel needs at least 2", path.display(), x.size()[0]);
    }
    Ok(x.to_kind(tch::Kind::Float))
}
