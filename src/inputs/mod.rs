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

/// One image of a pool: its pixels in memory (the embedded samples, CIFAR
/// batches) or a file decoded only when a batch draws it (a user's folder:
/// memory independent of the folder's size).
#[derive(Debug, Clone)]
pub enum Image {
    /// 8-bit RGB pixels, HWC, with the width and height.
    Pixels(Vec<u8>, u32, u32),
    /// A file whose header gave its width and height.
    File(PathBuf, u32, u32),
}

impl Image {
    /// Width and height.
    pub fn dimensions(&self) -> (u32, u32) {
        match self {
            Image::Pixels(_, w, h) | Image::File(_, w, h) => (*w, *h),
        }
    }

    /// The 8-bit RGB pixels (HWC), decoding a file now.
    fn pixels(&self) -> Result<std::borrow::Cow<'_, [u8]>> {
        match self {
            Image::Pixels(px, ..) => Ok(std::borrow::Cow::Borrowed(px)),
            Image::File(p, w, h) => {
                let img = open_image(p)?;
                if (img.width(), img.height()) != (*w, *h) {
                    bail!("image {} changed while in use: it is now {}x{}", p.display(), img.width(), img.height());
                }
                Ok(std::borrow::Cow::Owned(img.to_rgb8().into_raw()))
            }
        }
    }
}

/// 8-bit RGB images, of the dataset's size or (ImageNet) of any size.
#[derive(Debug, Clone)]
pub struct ImagePool {
    /// Height and width the networks take.
    pub size: (usize, usize),
    /// The images, in pool order.
    pub images: Vec<Image>,
    /// Whether the images are of any size and cropped to `size` by
    /// RandomResizedCrop (ImageNet); else each is `size` already.
    pub crop: bool,
    /// Where the images came from (shown in reports).
    pub source: String,
    /// Class label of each image, when known: the embedded samples'
    /// classes, a folder's class sub-folders (torchvision's ImageFolder
    /// layout) or CIFAR batches' label bytes.
    pub labels: Option<Vec<i64>>,
    /// Why a folder's images have no labels (shown when a proxy needs them).
    pub unlabelled: Option<String>,
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
                    Ok(in_memory(img.to_rgb8()))
                })
                .collect::<Result<Vec<_>>>()?;
            // one image per class: its position stands for its class
            let labels = Some((0..images.len() as i64).collect());
            return Ok(ImagePool {
                size: (224, 224),
                images,
                crop: true,
                source: format!("embedded {d} sample"),
                labels,
                unlabelled: None,
            });
        }
        if d == Dataset::Taskonomy {
            let images = TASKONOMY
                .iter()
                .map(|(name, bytes)| {
                    let img =
                        image::load_from_memory(bytes).with_context(|| format!("embedded image {name} is corrupt"))?;
                    Ok(in_memory(img.to_rgb8()))
                })
                .collect::<Result<Vec<_>>>()?;
            return Ok(ImagePool {
                size: (512, 512),
                images,
                crop: false,
                source: format!("embedded {d} sample"),
                labels: None,
                unlabelled: Some("the embedded Taskonomy sample has no class labels".into()),
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
        let images: Vec<Image> =
            raw.chunks_exact(h * w * 3).map(|c| Image::Pixels(c.to_vec(), w as u32, h as u32)).collect();
        let labels = embedded_labels(d, files);
        if labels.len() != images.len() {
            bail!("embedded {d} sample: {} images but {} file names", images.len(), labels.len());
        }
        Ok(ImagePool {
            size: (h, w),
            images,
            crop: false,
            source: format!("embedded {d} sample"),
            labels: Some(labels),
            unlabelled: None,
        })
    }

    /// Reads a folder of images (PNG/JPEG, searched recursively, in path
    /// order) or of official CIFAR-10/100 binary batches (`*.bin`). Every image
    /// must be `size` (any size for ImageNet); anything else is an error
    /// naming the file. Only the image files' headers are read here: an
    /// image is decoded when a batch draws it, so memory does not grow with
    /// the folder.
    pub fn from_dir(dir: &Path, d: Dataset) -> Result<ImagePool> {
        let size = native_size(d).with_context(|| format!("{d} takes sentences, not images"))?;
        if !dir.is_dir() {
            bail!("image folder {} does not exist or is not a folder", dir.display());
        }
        let mut files = Vec::new();
        collect_files(dir, &mut files)?;
        files.sort();
        let bins: Vec<&PathBuf> = files.iter().filter(|p| has_ext(p, &["bin"])).collect();
        let pics: Vec<&PathBuf> = files.iter().filter(|p| has_ext(p, &["png", "jpg", "jpeg"])).collect();
        if !bins.is_empty() && !pics.is_empty() {
            bail!(
                "image folder {} holds both CIFAR .bin batches ({}) and image files ({}): use one kind per folder",
                dir.display(),
                bins.len(),
                pics.len()
            );
        }
        let crop = any_size(d);
        let (images, (labels, unlabelled)) = if !bins.is_empty() {
            let (mut all, mut labels) = (Vec::new(), Vec::new());
            for b in bins {
                for (label, img) in read_cifar_bin(b, size)? {
                    labels.push(label);
                    all.push(Image::Pixels(img, 32, 32));
                }
            }
            (all, (Some(labels), None))
        } else {
            let images = pics
                .iter()
                .map(|p| {
                    let (w, h, channels) = image_header(p)?;
                    if !crop && (h as usize, w as usize) != size {
                        bail!("image {} is {w}x{h}, expected {}x{}", p.display(), size.1, size.0);
                    }
                    if d == Dataset::Taskonomy && channels != 3 {
                        bail!("image {} is not RGB ({channels} channels)", p.display());
                    }
                    Ok(Image::File(p.to_path_buf(), w, h))
                })
                .collect::<Result<Vec<_>>>()?;
            (images, folder_labels(dir, &pics))
        };
        if images.is_empty() {
            let kinds = if crop { ".png, .jpg, .jpeg" } else { ".png, .jpg, .jpeg or CIFAR .bin batches" };
            bail!("image folder {} holds no images ({kinds})", dir.display());
        }
        Ok(ImagePool { size, images, crop, source: canonical(dir), labels, unlabelled })
    }

    /// A batch of `n` distinct images chosen with `seed`, transformed as the
    /// reference's training loader does for `d`: `[n, 3, H, W]` float32.
    pub fn batch(&self, d: Dataset, n: usize, seed: u64) -> Result<Tensor> {
        Ok(self.labelled_batch(d, n, seed)?.0)
    }

    /// The same batch with its images' labels (`[n]` int64, taken modulo the
    /// dataset's classes) when the pool has labels.
    pub fn labelled_batch(&self, d: Dataset, n: usize, seed: u64) -> Result<(Tensor, Option<Tensor>)> {
        let count = self.images.len();
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
            let img = &self.images[i];
            let px = img.pixels()?;
            if self.crop {
                data.extend(transforms::random_resized_crop(d, &px, img.dimensions(), self.size, &mut rng));
            } else {
                data.extend(transforms::train_transform(d, &px, self.size, &mut rng));
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
fn folder_labels(root: &Path, files: &[&PathBuf]) -> (Option<Vec<i64>>, Option<String>) {
    let parents: Vec<&Path> = files.iter().map(|p| p.parent().unwrap_or(root)).collect();
    let mut names = parents.clone();
    names.sort_unstable();
    names.dedup();
    match names.as_slice() {
        [_, _, ..] => {
            (Some(parents.iter().map(|p| names.iter().position(|n| n == p).unwrap_or(0) as i64).collect()), None)
        }
        [one] if *one != root => {
            (None, Some(format!("every image of the folder is in one class folder ({})", one.display())))
        }
        _ => (None, Some("the image folder has no class sub-folders".into())),
    }
}

fn in_memory(rgb: image::RgbImage) -> Image {
    let (w, h) = rgb.dimensions();
    Image::Pixels(rgb.into_raw(), w, h)
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

/// Largest image file read.
pub const MAX_IMAGE_BYTES: u64 = 1 << 30;

/// A reader of the image file `p` (its format from the extension, else
/// guessed from its first bytes).
fn image_reader(p: &Path) -> Result<image::ImageReader<std::io::BufReader<std::fs::File>>> {
    let (file, _) = crate::files::open_regular(p, "image", MAX_IMAGE_BYTES)?;
    let mut reader = image::ImageReader::new(std::io::BufReader::new(file));
    match image::ImageFormat::from_path(p) {
        Ok(f) => reader.set_format(f),
        Err(_) => reader = reader.with_guessed_format().map_err(|e| bad_image(p, e.into()))?,
    }
    Ok(reader)
}

/// One message naming the file (the image crate's errors repeat their
/// cause in their source chain).
fn bad_image(p: &Path, e: image::ImageError) -> anyhow::Error {
    anyhow::anyhow!("cannot decode image {}: {e}", p.display())
}

/// Width, height and channels of an image file, from its header alone.
fn image_header(p: &Path) -> Result<(u32, u32, u8)> {
    use image::ImageDecoder;
    let decoder = image_reader(p)?.into_decoder().map_err(|e| bad_image(p, e))?;
    let (w, h) = decoder.dimensions();
    Ok((w, h, decoder.color_type().channel_count()))
}

/// Adds an image file's length and bytes to `h`, streamed (as
/// [`Source::digest`]'s fields: the length, then the bytes).
fn file_field(h: &mut sha2::Sha256, p: &Path) -> Result<()> {
    use sha2::Digest;
    let (file, len) = crate::files::open_regular(p, "image", MAX_IMAGE_BYTES)?;
    h.update(len.to_le_bytes());
    let mut reader = std::io::BufReader::new(file.take(len));
    let mut buf = [0u8; 1 << 16];
    let mut read = 0u64;
    loop {
        let k = reader.read(&mut buf).with_context(|| format!("cannot read image {}", p.display()))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        read += k as u64;
    }
    if read != len {
        bail!("image {} changed while in use: {read} bytes read, {len} expected", p.display());
    }
    Ok(())
}

/// Decodes an image.
fn open_image(p: &Path) -> Result<image::DynamicImage> {
    image_reader(p)?.decode().map_err(|e| bad_image(p, e))
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
    ///
    /// A folder's image files are hashed as stored (their bytes, streamed),
    /// never decoded here.
    pub fn digest(&self) -> Result<String> {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        fn field(h: &mut Sha256, bytes: &[u8]) {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        }
        let h = &mut hash;
        match self {
            Source::Images(pool, d) => {
                field(h, d.key().as_bytes());
                field(h, &[pool.size.0 as u64, pool.size.1 as u64].map(u64::to_le_bytes).concat());
                for img in &pool.images {
                    match img {
                        Image::Pixels(px, width, height) => {
                            if pool.crop {
                                field(h, &[*width, *height].map(u32::to_le_bytes).concat());
                            }
                            field(h, px);
                        }
                        // a file's bytes as stored: nothing is decoded
                        Image::File(p, ..) => file_field(h, p)?,
                    }
                }
                for l in pool.labels.iter().flatten() {
                    field(h, &l.to_le_bytes());
                }
            }
            Source::Text(pool, sep) => {
                field(h, &[u8::from(*sep)]);
                for item in &pool.items {
                    field(h, item.as_bytes());
                }
            }
        }
        let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok(format!("sha256:{hex}"))
    }

    /// Whether the inputs carry class labels.
    pub fn has_labels(&self) -> bool {
        matches!(self, Source::Images(p, _) if p.labels.is_some())
    }

    /// Why the inputs carry no class labels.
    pub fn unlabelled_reason(&self) -> String {
        match self {
            Source::Images(p, _) => {
                p.unlabelled.clone().unwrap_or_else(|| "the image folder has no class sub-folders".into())
            }
            Source::Text(..) => "the inputs are sentences".into(),
        }
    }
}
