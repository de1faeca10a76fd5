//! Input images: the embedded samples, a user's image folder or official
//! CIFAR binary batches, and the reference's seeded training transforms.

pub mod text;
pub mod transforms;

use crate::dataset::Dataset;
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
    /// Class label of each image (`images` then `any`), when known: the
    /// embedded samples' classes, a folder's class sub-folders
    /// (torchvision's ImageFolder layout) or CIFAR batches' label bytes.
    pub labels: Option<Vec<i64>>,
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
            // one image per class: its position stands for its class
            let labels = Some((0..images.len() as i64).collect());
            return Ok(ImagePool {
                size: (224, 224),
                images: Vec::new(),
                any: images,
                source: format!("embedded {d} sample"),
                labels,
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
            return Ok(ImagePool {
                size: (512, 512),
                images,
                any: Vec::new(),
                source: format!("embedded {d} sample"),
                labels: None,
            });
        }
        let (gz, files): (&[u8], &str) = match d {
            Dataset::Cifar10 => (
                include_bytes!("../../data/images/cifar10.rgb.gz"),
                include_str!("../../data/images/cifar10.files.txt"),
            ),
            Dataset::Cifar100 => (
                include_bytes!("../../data/images/cifar100.rgb.gz"),
                include_str!("../../data/images/cifar100.files.txt"),
            ),
            Dataset::ImageNet16 => (
                include_bytes!("../../data/images/imagenet16.rgb.gz"),
                include_str!("../../data/images/imagenet16.files.txt"),
            ),
            Dataset::Sst2 => bail!("{d} is a text dataset, not images"),
            Dataset::ImageNet | Dataset::Taskonomy => bail!("no fixed-size sample for {d}"),
        };
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(gz).read_to_end(&mut raw).context("embedded images are corrupt")?;
        let (h, w) = native_size(d).context("no image size")?;
        let images: Vec<Vec<u8>> = raw.chunks_exact(h * w * 3).map(|c| c.to_vec()).collect();
        let labels = embedded_labels(d, files);
        if labels.len() != images.len() {
            bail!("embedded {d} sample: {} images but {} file names", images.len(), labels.len());
        }
        Ok(ImagePool {
            size: (h, w),
            images,
            any: Vec::new(),
            source: format!("embedded {d} sample"),
            labels: Some(labels),
        })
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
            let any = pics.iter().map(|p| Ok(raw_with_size(open_image(p)?.to_rgb8()))).collect::<Result<Vec<_>>>()?;
            let labels = folder_labels(dir, &pics);
            return Ok(ImagePool { size, images: Vec::new(), any, source: canonical(dir), labels });
        }
        let (images, labels) = if !bins.is_empty() {
            let (mut all, mut labels) = (Vec::new(), Vec::new());
            for b in bins {
                for (label, img) in read_cifar_bin(b, size)? {
                    labels.push(label);
                    all.push(img);
                }
            }
            (all, Some(labels))
        } else {
            let pics: Vec<&PathBuf> = files.iter().filter(|p| has_ext(p, &["png", "jpg", "jpeg"])).collect();
            let labels = folder_labels(dir, &pics);
            let images =
                pics.iter().map(|p| read_image(p, size, d == Dataset::Taskonomy)).collect::<Result<Vec<_>>>()?;
            (images, labels)
        };
        if images.is_empty() {
            bail!("image folder {} holds no images (.png, .jpg, .jpeg or CIFAR .bin batches)", dir.display());
        }
        Ok(ImagePool { size, images, any: Vec::new(), source: canonical(dir), labels })
    }

    /// A batch of `n` distinct images chosen with `seed`, transformed as the
    /// reference's training loader does for `d`: `[n, 3, H, W]` float32.
    pub fn batch(&self, d: Dataset, n: usize, seed: u64) -> Result<Tensor> {
        Ok(self.labelled_batch(d, n, seed)?.0)
    }

    /// The same batch with its images' labels (`[n]` int64, taken modulo the
    /// dataset's classes) when the pool has labels.
    pub fn labelled_batch(&self, d: Dataset, n: usize, seed: u64) -> Result<(Tensor, Option<Tensor>)> {
        let count = self.images.len() + self.any.len();
        if n > count {
            bail!("asked for a batch of {n} images but {} holds only {count}", self.source);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let picks = sample(&mut rng, count, n).into_vec();
        let (h, w) = self.size;
        let mut data = Vec::with_capacity(n * 3 * h * w);
        let classes = d.num_classes().max(1);
        let labels = self.labels.as_ref().map(|l| {
            let v: Vec<i64> = picks.iter().map(|i| l.get(*i).copied().unwrap_or(0).rem_euclid(classes)).collect();
            Tensor::from_slice(&v)
        });
        for i in picks {
            if let Some((px, iw, ih)) = self.any.get(i) {
                data.extend(transforms::random_resized_crop(d, px, (*iw, *ih), self.size, &mut rng));
            } else {
                data.extend(transforms::train_transform(d, &self.images[i], self.size, &mut rng));
            }
        }
        Ok((Tensor::from_slice(&data).reshape([n as i64, 3, h as i64, w as i64]), labels))
    }
}

/// Labels of an embedded sample from its file list (`<dataset>/<class>/<file>`):
/// CIFAR-10's class names in sorted order (the dataset's own order), CIFAR-100's
/// fine-label numbers, ImageNet16's class numbers from 1 made 0-based.
fn embedded_labels(d: Dataset, files: &str) -> Vec<i64> {
    let classes: Vec<&str> = files.lines().filter_map(|l| l.split('/').nth(1)).collect();
    let mut names: Vec<&str> = classes.clone();
    names.sort_unstable();
    names.dedup();
    classes
        .iter()
        .map(|c| match (d, c.parse::<i64>()) {
            (Dataset::ImageNet16, Ok(k)) => k - 1,
            (Dataset::Cifar100, Ok(k)) => k,
            _ => names.iter().position(|n| n == c).unwrap_or(0) as i64,
        })
        .collect()
}

/// ImageFolder labels: the index of each file's parent folder among the
/// sorted distinct parent folders; `None` when every file sits in one folder
/// (no classes).
fn folder_labels(root: &Path, files: &[&PathBuf]) -> Option<Vec<i64>> {
    let parents: Vec<&Path> = files.iter().map(|p| p.parent().unwrap_or(root)).collect();
    let mut names = parents.clone();
    names.sort_unstable();
    names.dedup();
    (names.len() > 1).then(|| parents.iter().map(|p| names.iter().position(|n| n == p).unwrap_or(0) as i64).collect())
}

fn raw_with_size(rgb: image::RgbImage) -> (Vec<u8>, u32, u32) {
    let (w, h) = rgb.dimensions();
    (rgb.into_raw(), w, h)
}

/// The folder's canonical path (so `./imgs`, `imgs/` and its absolute path
/// name one folder), or the path as given when it cannot be resolved.
fn canonical(dir: &Path) -> String {
    dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()).display().to_string()
}

fn has_ext(p: &Path, exts: &[&str]) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| exts.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// Deepest sub-folder an image folder is searched to.
pub const MAX_DEPTH: usize = 16;
/// Most files an image folder may hold.
pub const MAX_FILES: usize = 1_000_000;
/// Largest CIFAR binary batch read (the official ones are 30 MB).
pub const MAX_BIN_BYTES: u64 = 1 << 30;

/// Collects the regular files under `dir`, recursively. Symbolic links to
/// folders are not followed (no cycles, e.g. `/dev/fd -> /proc/self/fd`),
/// the walk stops at [`MAX_DEPTH`] levels and [`MAX_FILES`] files, and
/// anything that is not a regular file (devices, FIFOs, sockets) is skipped.
fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    walk(dir, 0, out)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for e in entries {
        let e = e.with_context(|| format!("cannot list {}", dir.display()))?;
        let p = e.path();
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            if depth + 1 > MAX_DEPTH {
                bail!("image folder is nested more than {MAX_DEPTH} levels deep at {}", p.display());
            }
            walk(&p, depth + 1, out)?;
        } else if kind.is_file() || (kind.is_symlink() && std::fs::metadata(&p).is_ok_and(|m| m.is_file())) {
            if out.len() >= MAX_FILES {
                bail!("image folder holds more than {MAX_FILES} files (at {})", p.display());
            }
            out.push(p);
        }
    }
    Ok(())
}

/// Decodes an image, with one message naming the file (the image crate's
/// errors repeat their cause in their source chain).
fn open_image(p: &Path) -> Result<image::DynamicImage> {
    let (file, _) = crate::files::open_regular(p, "image", 1 << 30)?;
    let bad = |e: image::ImageError| anyhow::anyhow!("cannot decode image {}: {e}", p.display());
    let mut reader = image::ImageReader::new(std::io::BufReader::new(file));
    match image::ImageFormat::from_path(p) {
        Ok(f) => reader.set_format(f),
        Err(_) => reader = reader.with_guessed_format().map_err(|e| bad(e.into()))?,
    }
    reader.decode().map_err(bad)
}

fn read_image(p: &Path, size: (usize, usize), rgb_only: bool) -> Result<Vec<u8>> {
    let img = open_image(p)?;
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
fn read_cifar_bin(p: &Path, size: (usize, usize)) -> Result<Vec<(i64, Vec<u8>)>> {
    if size != (32, 32) {
        bail!("CIFAR batch {} holds 32x32 images, this dataset needs {}x{}", p.display(), size.1, size.0);
    }
    let bytes = crate::files::read_capped(p, "CIFAR batch", MAX_BIN_BYTES)?;
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
            // CIFAR-100 records hold the coarse then the fine label
            let class = i64::from(rec[label - 1]);
            (class, (0..1024).flat_map(|px| [planar[px], planar[1024 + px], planar[2048 + px]]).collect())
        })
        .collect())
}

/// Most bytes an input tensor `x` may hold (1 GiB of float32).
pub const MAX_INPUT_BYTES: u64 = 1 << 30;

/// Reads the float32 tensor `x` (`[N, 3, H, W]`) from a safetensors file,
/// used as-is (no transforms). Any other dtype is an error (no silent
/// conversion); its shape and size are checked from the header before its
/// bytes are read.
pub fn load_input(path: &Path) -> Result<Tensor> {
    let mut file = crate::files::SafetensorsFile::open(path, "input file")?;
    let shown = path.display();
    let x = file.info("x").cloned().with_context(|| format!("input file {shown}: no tensor named 'x'"))?;
    if x.dtype != "F32" {
        bail!("input file {shown}: tensor 'x' is {}, expected float32 (F32)", x.dtype);
    }
    if x.shape.len() != 4 || x.shape[1] != 3 || x.shape[2] < 1 || x.shape[3] < 1 {
        bail!("input file {shown}: 'x' has shape {:?}, expected [N, 3, H, W]", x.shape);
    }
    if x.shape[0] < 2 {
        bail!("input file {shown}: 'x' holds {} image(s); a kernel needs at least 2", x.shape[0]);
    }
    if x.end - x.start > MAX_INPUT_BYTES {
        bail!(
            "input file {shown}: 'x' {:?} holds {} bytes, more than the limit of {MAX_INPUT_BYTES} (1 GiB)",
            x.shape,
            x.end - x.start
        );
    }
    file.read(&x)
}

/// Checks that `net` runs on `x` (with per-image statistics, on its first
/// image alone, as RBFleX forwards them), so that a user's input too small
/// for the network's strides is an error naming it, not a failure inside a
/// proxy. `source` names `x` ("input file F").
pub fn check_runs(net: &dyn crate::nets::Net, x: &Tensor, stats: crate::nets::BnStats, source: &str) -> Result<()> {
    let part = if stats == crate::nets::BnStats::PerImage { x.narrow(0, 0, 1) } else { x.shallow_clone() };
    let run = std::panic::AssertUnwindSafe(|| {
        let _guard = tch::no_grad_guard();
        let mut sink = crate::nets::Counter::default();
        net.forward(&part, stats, &mut sink).map(|_| ())
    });
    let why = match std::panic::catch_unwind(run) {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => format!("{e:#}"),
        Err(payload) => crate::files::panic_message(payload.as_ref()),
    };
    bail!(
        "{source} of shape {:?} does not fit this network (too small, or a size its strides cannot halve): {why}",
        x.size()
    )
}

/// Longest sentence (tokens) fed to text networks, as the reference.
pub const MAX_SEQ_LEN: usize = 50;

/// Where a run's inputs come from: images, or sentences for text networks.
pub enum Source {
    /// An image pool and the dataset whose transforms apply.
    Images(ImagePool, Dataset),
    /// Sentences, tokenised with a closing `[SEP]` when `sep`.
    Text(text::Sentences, bool),
}

/// Where a run's inputs come from, as the user gave it: an image folder or a
/// sentence file instead of the embedded sample, and BERT's tokenisation.
#[derive(Debug, Clone, Copy, Default)]
pub struct InputOptions<'a> {
    /// A folder of images (PNG/JPEG, or CIFAR binary batches).
    pub images: Option<&'a Path>,
    /// A file of sentences.
    pub sentences: Option<&'a Path>,
    /// Tokenise without the closing `[SEP]` (the reference's data_sst2.py).
    pub no_sep: bool,
}

impl Source {
    /// The source of a run on `dataset`; an input option the dataset does
    /// not take is an error (never silently ignored).
    pub fn for_run(dataset: Dataset, o: &InputOptions) -> Result<Source> {
        let text = native_size(dataset).is_none();
        if text && o.images.is_some() {
            bail!("--images is for image networks; {dataset} takes sentences (--sentences)");
        }
        if !text && o.sentences.is_some() {
            bail!("--sentences is for text networks (BERT); {dataset} takes images (--images)");
        }
        if !text && o.no_sep {
            bail!("--no-sep is for text networks (BERT); {dataset} takes images");
        }
        Source::open(dataset, o.images, o.sentences, !o.no_sep)
    }

    /// The embedded sample of `dataset`, or the user's image folder or
    /// sentence file.
    pub fn open(dataset: Dataset, images: Option<&Path>, sentences: Option<&Path>, sep: bool) -> Result<Source> {
        if native_size(dataset).is_none() {
            let pool = match sentences {
                Some(p) => text::Sentences::from_file(p)?,
                None => text::Sentences::embedded()?,
            };
            return Ok(Source::Text(pool, sep));
        }
        let pool = match images {
            Some(dir) => ImagePool::from_dir(dir, dataset)?,
            None => ImagePool::embedded(dataset)?,
        };
        Ok(Source::Images(pool, dataset))
    }

    /// A batch of `n` inputs chosen with `seed` (images through the
    /// dataset's training transforms), with labels when known.
    pub fn batch(&self, n: usize, seed: u64) -> Result<(Tensor, Option<Tensor>)> {
        match self {
            Source::Images(pool, d) => pool.labelled_batch(*d, n, seed),
            Source::Text(pool, sep) => Ok((pool.batch(n, seed, MAX_SEQ_LEN, *sep)?, None)),
        }
    }

    /// What a batch of `n` chosen with `seed` is (recorded in `run.json`).
    pub fn describe(&self, n: usize, seed: u64) -> String {
        match self {
            Source::Images(pool, _) => format!("{} (batch {n}, image seed {seed})", pool.source),
            Source::Text(pool, _) => format!("{} (batch {n}, seed {seed})", pool.source),
        }
    }

    /// SHA-256 of everything batches are drawn from (`sha256:<hex>`): each
    /// image's size and pixels and the labels, in pool order, or each
    /// sentence, with the tokenisation flag. A results folder records it, so
    /// that other images under the same path are never scored as the same
    /// inputs (and the same images under another path are).
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        match self {
            Source::Images(pool, d) => {
                field(d.key().as_bytes());
                field(&[pool.size.0 as u64, pool.size.1 as u64].map(u64::to_le_bytes).concat());
                for px in &pool.images {
                    field(px);
                }
                for (px, w, h) in &pool.any {
                    field(&[*w, *h].map(u32::to_le_bytes).concat());
                    field(px);
                }
                for l in pool.labels.iter().flatten() {
                    field(&l.to_le_bytes());
                }
            }
            Source::Text(pool, sep) => {
                field(&[u8::from(*sep)]);
                for item in &pool.items {
                    field(item.as_bytes());
                }
            }
        }
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }

    /// Whether the inputs carry class labels.
    pub fn has_labels(&self) -> bool {
        matches!(self, Source::Images(p, _) if p.labels.is_some())
    }
}
