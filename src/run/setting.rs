//! What determines a run's values besides the architecture: the space, the
//! dataset, the seed, the proxies and their input batches, the device.

use super::score::Record;
use super::seeds::{check_run_seed, MAX_SPACE_LEN};
use crate::catalog::Shared;
use crate::dataset::Dataset;
use crate::proxies::{Proxy, Selection};
use crate::spaces::Space;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use tch::Tensor;

/// An input batch kept as raw values, so that every worker thread can make
/// its own tensors.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[N, ...]` float32 values and their shape; no values for a batch that
    /// only gives its shape (see [`Batch::shape_only`]).
    pub x: (Vec<f32>, Vec<i64>),
    /// Class labels, when known.
    pub labels: Option<Vec<i64>>,
}

impl Batch {
    /// Keeps `x` (and its labels) for the workers.
    pub fn new(x: &Tensor, labels: Option<&Tensor>) -> Result<Self> {
        let x = x.to_kind(tch::Kind::Float).contiguous();
        let v = Vec::<f32>::try_from(x.reshape([-1])).context("input batch is not float data")?;
        let labels = labels.map(|l| Vec::<i64>::try_from(l.to_kind(tch::Kind::Int64))).transpose()?;
        Ok(Self { x: (v, x.size()), labels })
    }

    /// A batch of `shape` whose values nobody reads (zeros): for proxies
    /// that make their own inputs (noise, ones) and read only the shape, so
    /// that no image is drawn for them.
    pub fn shape_only(shape: &[i64]) -> Self {
        Self { x: (Vec::new(), shape.to_vec()), labels: None }
    }

    pub(crate) fn tensors(&self) -> (Tensor, Option<Tensor>) {
        let x = if self.x.0.is_empty() {
            Tensor::zeros(self.x.1.as_slice(), (tch::Kind::Float, tch::Device::Cpu))
        } else {
            Tensor::from_slice(&self.x.0).reshape(self.x.1.as_slice())
        };
        (x, self.labels.as_ref().map(|l| Tensor::from_slice(l)))
    }

    /// Batch size N.
    pub fn len(&self) -> i64 {
        self.x.1.first().copied().unwrap_or(0)
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Everything that determines a run's values besides the architecture.
pub struct Setting {
    /// The design space.
    pub space: Shared<dyn Space>,
    /// Dataset (classifier size and images).
    pub dataset: Dataset,
    /// Run seed: network inits and image choice.
    pub seed: u64,
    /// The proxies scored.
    pub selection: Selection,
    /// The run's `--batch` (RBFleX's N).
    pub batch: usize,
    /// Input batches by size: the run's `--batch` and each proxy's own.
    pub batches: BTreeMap<usize, Batch>,
    /// Where the `--batch` images came from.
    pub images: String,
    /// Digest of every input the batches are drawn from (`None` for a
    /// given `--input` batch, which no results folder records).
    pub inputs_digest: Option<String>,
    /// Where the networks run (built on the CPU, then moved).
    pub device: tch::Device,
    /// The shard of a sharded run this process scores, as `run.json`
    /// records it (see [`crate::shard`]); `None` for a whole run.
    pub shard: Option<serde_json::Value>,
    /// Classes of the networks' classifier when not the dataset's (a
    /// user's model); `None`: the dataset's.
    pub classes: Option<i64>,
}

impl Setting {
    /// A run of `selection` on `space`; every proxy's input batch is drawn
    /// from `source` with `seed` now. A proxy that needs what the space or
    /// the inputs cannot give is refused here, before anything is scored.
    pub fn new(
        space: Shared<dyn Space>,
        dataset: Dataset,
        seed: u64,
        selection: Selection,
        source: &crate::inputs::Source,
        batch: usize,
    ) -> Result<Self> {
        check_run_seed(seed)?;
        if space.len() > MAX_SPACE_LEN {
            bail!(
                "{} holds {} networks; at most {MAX_SPACE_LEN} are supported (each index needs its own init seed)",
                space.name(),
                space.len()
            );
        }
        let selection = served(selection, &*space, dataset, |p| check_support(p, &*space, dataset, source))?;
        // images are drawn only for the batch sizes of proxies that read
        // them; the others get the shape of one drawn input (each size is
        // drawn from its own seeded generator, so skipping one changes none)
        let read: Vec<usize> = selection
            .proxies
            .iter()
            .filter(|p| p.reads_inputs())
            .map(|p| selection.batch_of(p.as_ref(), batch))
            .collect();
        let free = crate::memory::available();
        // the shape of one input (drawn once; decodes one image of a folder)
        let one = source.batch(1, seed)?.0.size();
        let mut batches = BTreeMap::new();
        for p in std::iter::once(None).chain(selection.proxies.iter().map(|p| Some(p.as_ref()))) {
            let n = p.map_or(batch, |p| selection.batch_of(p, batch));
            if let std::collections::btree_map::Entry::Vacant(slot) = batches.entry(n) {
                if read.contains(&n) {
                    // the drawn values are held three times while the batch is made
                    let per_item = 3 * 4 * one.iter().product::<i64>().max(0) as u64;
                    let option = if p.is_some() { "--proxy-batch" } else { "--batch" };
                    crate::memory::check_fits(
                        per_item.saturating_mul(n as u64),
                        free,
                        &format!("an input batch of {n} ({option} {n})"),
                        &format!("use {option} {} or less", crate::memory::fitting(free, 1, per_item)),
                    )?;
                    let (x, labels) = source.batch(n, seed)?;
                    slot.insert(Batch::new(&x, labels.as_ref())?);
                } else {
                    let mut shape = one.clone();
                    shape[0] = n as i64;
                    slot.insert(Batch::shape_only(&shape));
                }
            }
        }
        let s = Self {
            space,
            dataset,
            seed,
            selection,
            batch,
            batches,
            images: source.describe(batch, seed),
            inputs_digest: Some(source.digest()?),
            device: tch::Device::Cpu,
            shard: None,
            classes: None,
        };
        // before any results folder is written (the first network stands
        // for the space; each run checks its own first network again)
        if !s.space.is_empty() {
            s.check_memory(&s.space.arch(0)?, None)?;
        }
        Ok(s)
    }

    /// A setting around one given batch (`score --input`, a user's model):
    /// every proxy sees it, whatever its protocol's batch. A proxy that
    /// reads layer calls the space's networks do not report is refused
    /// (skipped under `all`), as [`Setting::new`] refuses its own.
    pub fn with_batch(
        space: Shared<dyn Space>,
        dataset: Dataset,
        seed: u64,
        selection: Selection,
        batch: Batch,
        images: String,
    ) -> Result<Self> {
        let selection = served(selection, &*space, dataset, |p| check_layer_calls(p, &*space))?;
        let n = batch.len() as usize;
        let mut batches: BTreeMap<usize, Batch> =
            selection.proxies.iter().map(|p| (selection.batch_of(p.as_ref(), n), batch.clone())).collect();
        batches.insert(n, batch);
        Ok(Self {
            space,
            dataset,
            seed,
            selection,
            batch: n,
            batches,
            images,
            inputs_digest: None,
            device: tch::Device::Cpu,
            shard: None,
            classes: None,
        })
    }

    /// The same setting with its networks and inputs on `device`.
    pub fn on(self, device: tch::Device) -> Self {
        Self { device, ..self }
    }

    /// The classes the proxies see (random labels): the override, else the dataset's.
    pub fn classes(&self) -> i64 {
        self.classes.unwrap_or_else(|| self.dataset.num_classes())
    }

    /// The batch proxy `p` is fed.
    pub(crate) fn batch_for(&self, p: &dyn Proxy) -> Result<&Batch> {
        let n = self.selection.batch_of(p, self.batch);
        self.batches.get(&n).with_context(|| format!("no input batch of {n} for proxy {}", p.name()))
    }

    /// Estimated bytes that scoring `arch` with the proxies not yet in
    /// `known` holds at once: the space's estimate for the `--batch` input,
    /// or the largest proxy's (they run one after another), whichever is
    /// larger.
    pub(crate) fn working_set(&self, arch: &str, known: Option<&Record>) -> Result<u64> {
        let own = self.space.working_set(arch, self.input_shape())?;
        Ok(self.proxy_estimates(arch, known)?.into_iter().map(|e| e.bytes).fold(own, u64::max))
    }

    /// Each proxy not yet in `known`, the batch it is fed and the bytes it
    /// is estimated to hold on it: its bytes per input value times the
    /// batch's values (measured on NB201, where activations are large beside
    /// the input), or, where the space models its networks' activations
    /// (TransNAS: few channels at 512x512, where the per-value figure is 20x
    /// too high), [`PASS_FACTOR`] times that model at the proxy's batch,
    /// whichever is smaller: both are upper bounds.
    fn proxy_estimates(&self, arch: &str, known: Option<&Record>) -> Result<Vec<ProxyEstimate<'_>>> {
        let mut out = Vec::new();
        for p in &self.selection.proxies {
            if known.is_some_and(|r| r.values.contains_key(&p.columns().value)) {
                continue;
            }
            let batch = self.batch_for(p.as_ref())?;
            let values: i64 = batch.x.1.iter().product();
            let per_value = p.memory_per_input_value().saturating_mul(values.max(0) as u64);
            let modelled = PASS_FACTOR.saturating_mul(self.space.working_set(arch, &batch.x.1)?);
            let from_model = modelled > 0 && modelled < per_value;
            let bytes = if from_model { modelled } else { per_value };
            out.push(ProxyEstimate { proxy: p.as_ref(), batch, bytes, from_model });
        }
        Ok(out)
    }

    /// Refuses to score `arch` when what a proxy (or the space's own pass
    /// at `--batch`) is estimated to hold does not fit in the memory this
    /// process can still allocate: one line naming the proxy, the estimate
    /// and the batch that would fit (the estimates are upper bounds
    /// measured on NB201, see [`Proxy::memory_per_input_value`]).
    pub fn check_memory(&self, arch: &str, known: Option<&Record>) -> Result<()> {
        use crate::memory::{check_fits, fitting};
        let free = crate::memory::available();
        let own = self.space.working_set(arch, self.input_shape())?;
        check_fits(
            own,
            free,
            &format!("a network of {} at --batch {}", self.space.name(), self.batch),
            &format!("use --batch {} or less", fitting(free, self.batch as u64, own)),
        )?;
        for ProxyEstimate { proxy: p, batch, bytes: need, from_model } in self.proxy_estimates(arch, known)? {
            let n = batch.len() as u64;
            let option = if p.needs().batch.is_some() { "--proxy-batch" } else { "--batch" };
            let basis = if from_model {
                format!("{PASS_FACTOR} times the space's estimate of a network's activations")
            } else {
                format!("{} bytes per input value", p.memory_per_input_value())
            };
            check_fits(
                need,
                free,
                &format!("proxy {} at {option} {n} (an estimate: {basis})", p.name()),
                &format!("use {option} {} or less", fitting(free, n, need)),
            )?;
        }
        Ok(())
    }

    /// The shape of the `--batch` input (`[N, C, H, W]`).
    pub fn input_shape(&self) -> &[i64] {
        self.batches.get(&self.batch).map_or(&[], |b| b.x.1.as_slice())
    }
}

/// What one proxy is estimated to hold on one network.
struct ProxyEstimate<'a> {
    proxy: &'a dyn Proxy,
    /// The batch it is fed.
    batch: &'a Batch,
    /// Estimated bytes.
    bytes: u64,
    /// Whether the bound is the space's model of its activations (times
    /// [`PASS_FACTOR`]) rather than the proxy's bytes per input value.
    from_model: bool,
}

/// A proxy's pass holds at most this many times what a space models as its
/// network's working set (the space's forward pass): backward passes keep
/// the maps, synflow doubles them in float64. Measured: GraSP on TransNAS
/// macro's widest network at 4 images held 6.4 GB beside the model's 0.94 GB
/// (6.8x).
pub const PASS_FACTOR: u64 = 8;

/// What `run.json` records of a device: `cpu` or `cuda` (GPU and CPU
/// scores differ in the last digits; GPUs of one kind agree).
pub(crate) fn device_kind(d: tch::Device) -> &'static str {
    if d.is_cuda() {
        "cuda"
    } else {
        "cpu"
    }
}

/// A proxy's settings as recorded in `run.json`: its own and its batch.
pub(crate) fn proxy_settings(p: &dyn Proxy, sel: &Selection) -> serde_json::Value {
    let mut v = p.settings();
    if let (Some(obj), true) = (v.as_object_mut(), p.needs().batch.is_some()) {
        obj.insert("batch".into(), sel.batch_of(p, 0).into());
        if sel.channels_last_for(p) {
            // recorded only when set: folders written before it stay valid
            obj.insert("layout".into(), "channels_last".into());
        }
    }
    v
}

/// The selection less what `--proxy all` brought and `check` refuses
/// (skipped with a note); a named proxy that `check` refuses is an error.
fn served(
    selection: Selection,
    space: &dyn Space,
    dataset: Dataset,
    check: impl Fn(&dyn Proxy) -> Result<()>,
) -> Result<Selection> {
    let mut skipped = Vec::new();
    for p in &selection.proxies {
        if let Err(e) = check(p.as_ref()) {
            if !selection.implied.contains(&p.name()) {
                return Err(e);
            }
            skipped.push(p.name());
        }
    }
    let selection = if skipped.is_empty() {
        selection
    } else {
        eprintln!(
            "note: --proxy all on {} ({dataset}) skips {}: they need what its networks or inputs cannot give \
             (a classifier network, labelled images, or every layer call reported)",
            space.name(),
            skipped.join(", ")
        );
        selection.without(&skipped)
    };
    if selection.proxies.is_empty() {
        bail!("no proxy asked for can run on {} ({dataset})", space.name());
    }
    Ok(selection)
}

/// Refuses a proxy that reads every layer call on networks that do not report them.
fn check_layer_calls(p: &dyn Proxy, space: &dyn Space) -> Result<()> {
    if p.reads_layer_calls() && !space.reports_layer_calls() {
        bail!(
            "proxy {} reads every Conv2d, BatchNorm and Linear call of the network, which {}'s networks do not report \
             (a user's nn.Module does not yet)",
            p.name(),
            space.name()
        );
    }
    Ok(())
}

/// Refuses a proxy that the space's networks or the inputs cannot serve.
fn check_support(p: &dyn Proxy, space: &dyn Space, dataset: Dataset, source: &crate::inputs::Source) -> Result<()> {
    check_layer_calls(p, space)?;
    let needs = p.needs();
    if needs.classifier && dataset.num_classes() == 0 {
        bail!(
            "proxy {} needs a classifier network (class logits, or the map its global pooling reads), but {}'s networks on {dataset} have none",
            p.name(),
            space.name()
        );
    }
    if needs.labels && !source.has_labels() {
        bail!(
            "proxy {} needs labelled images of two classes or more: {} (put each class in its own folder, as torchvision's ImageFolder) or use CIFAR .bin batches",
            p.name(),
            source.unlabelled_reason()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxies::{Options, Selection};
    use crate::run::score::Record;

    #[test]
    fn the_memory_gate_reserves_the_largest_proxy_not_yet_scored() {
        let sel = Selection::parse("rbflex,grasp,snip", &Options::default()).unwrap();
        let src = crate::inputs::Source::open(Dataset::Cifar10, None, None, true).unwrap();
        let s = Setting::new(Shared::Static(&crate::spaces::nb201::Nb201), Dataset::Cifar10, 1, sel, &src, 3).unwrap();
        let arch = s.space.arch(7).unwrap();
        // NB201's own estimate is 0; GraSP holds 6000 bytes per input value of its 64 x 3 x 32 x 32 batch
        assert_eq!(s.working_set(&arch, None).unwrap(), 6000 * 64 * 3 * 32 * 32);
        let mut known = Record { index: 7, arch: arch.clone(), init_seed: 0, values: BTreeMap::new() };
        known.values.insert("grasp".into(), 1.0);
        assert_eq!(s.working_set(&arch, Some(&known)).unwrap(), 2300 * 64 * 3 * 32 * 32);
        known.values.insert("snip".into(), 1.0);
        assert_eq!(s.working_set(&arch, Some(&known)).unwrap(), 0);
    }

    #[test]
    fn on_transnas_a_proxy_is_bounded_by_the_spaces_model_of_its_activations() {
        // synflow's NB201 figure (10,000 bytes per input value) would ask
        // 31.5 GB for 4 images of 512x512; the space models a micro network's
        // largest map (the stem's 32 x 256 x 256) and the pass holds at most
        // PASS_FACTOR times that
        let opts = Options { batch: Some(4), ..Options::default() };
        let sel = Selection::parse("synflow", &opts).unwrap();
        let src = crate::inputs::Source::open(Dataset::Taskonomy, None, None, true).unwrap();
        let s =
            Setting::new(Shared::Static(&crate::spaces::transnas::MICRO), Dataset::Taskonomy, 1, sel, &src, 3).unwrap();
        let arch = s.space.arch(0).unwrap();
        let modelled = 7 * 4 * 4 * 32 * 256 * 256;
        assert_eq!(s.working_set(&arch, None).unwrap(), PASS_FACTOR * modelled);
        assert!(PASS_FACTOR * modelled < 10_000 * 4 * 3 * 512 * 512);
    }
}
