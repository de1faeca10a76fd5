//! Packs sample images from the shared data folder into the embedded
//! `data/images/<dataset>.rgb.gz` (raw HWC RGB, concatenated, in path order,
//! at most `per_class` images from each class folder).
//! Usage: cargo run --example pack_images -- ../shared/data/images
use std::io::Write;
use std::path::Path;

fn pack(src: &Path, name: &str, out: &str, per_class: usize, size: u32) -> anyhow::Result<()> {
    let mut classes: Vec<_> =
        std::fs::read_dir(src.join(name))?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    classes.sort();
    let mut raw = Vec::new();
    let mut list = String::new();
    for class in classes {
        let mut files: Vec<_> = std::fs::read_dir(&class)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
        files.sort();
        for f in files.into_iter().take(per_class) {
            let img = image::open(&f)?.to_rgb8();
            anyhow::ensure!(img.width() == size && img.height() == size, "{} has the wrong size", f.display());
            raw.extend_from_slice(img.as_raw());
            list.push_str(&format!("{}\n", f.strip_prefix(src)?.display()));
        }
    }
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(format!("data/images/{out}.rgb.gz"))?,
        flate2::Compression::best(),
    );
    gz.write_all(&raw)?;
    gz.finish()?;
    std::fs::write(format!("data/images/{out}.files.txt"), list)?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let src = std::env::args().nth(1).unwrap_or_else(|| "../shared/data/images".into());
    let src = Path::new(&src);
    pack(src, "cifar10", "cifar10", 20, 32)?;
    pack(src, "cifar100", "cifar100", 2, 32)?;
    pack(src, "imagenet16", "imagenet16", usize::MAX, 16)?;
    Ok(())
}
