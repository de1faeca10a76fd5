//! `rbflex._rbflex`: the engine behind `import rbflex`. A user's
//! `torch.nn.Module` is one more [`Net`] ([`PyNet`]): its Python side
//! (`rbflex/_probe.py`) runs the module with forward hooks and hands back
//! what they recorded, replayed here into the proxies' sink in firing order.
//! A user's design space is one more [`Space`] ([`UserSpace`]). Everything
//! else (proxies, seeds, run folders) is the engine's own code.

use anyhow::{anyhow, bail, Context, Result};
use pyo3::exceptions::{PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;
use pyo3_tch::PyTensor;
use rbflex::benchmarks::GroundTruth;
use rbflex::catalog::{Shared, SpaceOptions};
use rbflex::dataset::Dataset;
use rbflex::inputs::{InputOptions, Source};
use rbflex::nets::layers::{bn_stats, flops, layer_outputs};
use rbflex::nets::params::Role;
use rbflex::nets::{BnStats, Init, Net, Params, Sink};
use rbflex::proxies::{Options, Selection};
use rbflex::run::{Batch, Record, ScoreCache, Setting, Workers};
use rbflex::spaces::Space;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tch::{Device, Tensor};

/// What a hook recorded (codes shared with `_probe.py`).
const ACT: u8 = 0;
const BLOCK: u8 = 1;
const LAST: u8 = 2;
const FEATURE: u8 = 3;
const PRE_POOL: u8 = 4;
const LAYER: u8 = 5;
const BN: u8 = 6;

/// One hook record: kind, tensor, the layer's weight (LAYER), its multiply-adds.
type Event = (u8, PyTensor, Option<PyTensor>, f64);

/// Every column's value, and each proxy's note.
type Scored = (Vec<(String, f64)>, Vec<(String, String)>);

/// A Python exception as one line: its type and message.
fn py_message(py: Python, e: &PyErr) -> String {
    let ty = e.get_type(py).name().map(|n| n.to_string()).unwrap_or_else(|_| "Exception".into());
    format!("{ty}: {}", e.value(py))
}

/// A user's module, prepared by `_probe.Prepared` (a private copy on the
/// asked device, hooks registered); its parameters are shared with it.
struct PyNet {
    prepared: Py<PyAny>,
    params: Params,
}

impl PyNet {
    fn new(py: Python, prepared: Py<PyAny>) -> Result<Self> {
        let list: Vec<(String, PyTensor, u8)> = prepared
            .call_method0(py, "params")
            .and_then(|v| v.extract(py))
            .map_err(|e| anyhow!("reading the model's parameters: {}", py_message(py, &e)))?;
        let entries = list
            .into_iter()
            .map(|(n, t, r)| {
                let role = match r {
                    0 => Role::ConvWeight,
                    1 => Role::LinearWeight,
                    2 => Role::Bias,
                    3 => Role::Norm,
                    _ => Role::Embedding,
                };
                (n, t.0, role)
            })
            .collect();
        Ok(Self { prepared, params: Params::from_tensors(entries) })
    }
}

impl Net for PyNet {
    fn forward(&self, x: &Tensor, stats: BnStats, sink: &mut dyn Sink) -> Result<Tensor> {
        let mode = match stats {
            BnStats::PerImage => "per_image",
            BnStats::Batch => "batch",
            BnStats::Off => "off",
            BnStats::Eval => "eval",
        };
        Python::with_gil(|py| {
            let x = PyTensor(x.shallow_clone());
            let (out, events): (PyTensor, Vec<Event>) = self
                .prepared
                .call_method1(py, "forward", (x, mode))
                .and_then(|v| v.extract(py))
                .map_err(|e| anyhow!("{}", py_message(py, &e)))?;
            for (kind, t, w, macs) in &events {
                match *kind {
                    ACT => sink.activation(t),
                    BLOCK => sink.block_output(t),
                    LAST => sink.last_input(t),
                    FEATURE => sink.feature(t),
                    PRE_POOL => sink.pre_pool(t),
                    LAYER => {
                        flops::add(*macs);
                        if let Some(w) = w {
                            layer_outputs::record(t, w);
                        }
                    }
                    BN => bn_stats::record(t),
                    other => bail!("unknown probe kind {other}"),
                }
            }
            Ok(out.0)
        })
    }

    fn params(&self) -> &Params {
        &self.params
    }
}

/// A user's design space: `archs` and a Python `build(index)` that makes
/// (and prepares) the network of `archs[index]`; with `mutate(index, seed)`
/// (the Python side's check of the user's `mutate(arch, rng)`, returning
/// the child's name) evolution can search it.
struct UserSpace {
    name: String,
    archs: Vec<String>,
    index: HashMap<String, usize>,
    build: Py<PyAny>,
    mutate: Option<Py<PyAny>>,
}

impl UserSpace {
    fn new(name: String, archs: Vec<String>, build: Py<PyAny>, mutate: Option<Py<PyAny>>) -> Self {
        let index = archs.iter().enumerate().map(|(i, a)| (a.clone(), i)).collect();
        Self { name, archs, index, build, mutate }
    }
}

impl Space for UserSpace {
    fn name(&self) -> &str {
        &self.name
    }
    fn len(&self) -> usize {
        self.archs.len()
    }
    fn arch(&self, index: usize) -> Result<String> {
        self.archs.get(index).cloned().with_context(|| format!("index {index} is outside {}", self.name))
    }
    fn index_of(&self, arch: &str) -> Result<usize> {
        self.index.get(arch).copied().with_context(|| format!("'{arch}' is not one of {}'s", self.name))
    }
    fn build(&self, arch: &str, _dataset: Dataset) -> Result<Box<dyn Net>> {
        let index = self.index_of(arch)?;
        Python::with_gil(|py| {
            let prepared =
                self.build.call1(py, (index,)).map_err(|e| anyhow!("building '{arch}': {}", py_message(py, &e)))?;
            Ok(Box::new(PyNet::new(py, prepared)?) as Box<dyn Net>)
        })
    }
    fn reports_layer_calls(&self) -> bool {
        false // the Python hooks report outputs, not each call's input and parameters
    }
    fn datasets(&self) -> &'static [Dataset] {
        &[]
    }
    fn mutate(&self, arch: &str, rng: &mut dyn rand::RngCore) -> Option<Result<String>> {
        let mutate = self.mutate.as_ref()?;
        let seed = rng.next_u64();
        Some(self.index_of(arch).and_then(|index| {
            Python::with_gil(|py| {
                mutate.call1(py, (index, seed)).and_then(|v| v.extract::<String>(py)).map_err(|e| {
                    // the Python side's message names the arch; a Ctrl-C stays one
                    if e.is_instance_of::<PyKeyboardInterrupt>(py) {
                        anyhow!("{}", py_message(py, &e))
                    } else {
                        anyhow!("{}", e.value(py))
                    }
                })
            })
        }))
    }
}

/// A user's accuracies (`accuracy=`), one per arch, or none: a search
/// without them picks by the proxies and reports no accuracy.
struct UserTruth {
    accuracy: Option<Vec<f64>>,
}

impl GroundTruth for UserTruth {
    fn accuracy(&self, index: usize, _dataset: Dataset) -> Option<f64> {
        self.accuracy.as_ref().and_then(|a| a.get(index).copied())
    }
    fn datasets(&self) -> &'static [Dataset] {
        if self.accuracy.is_some() {
            &[Dataset::Cifar10]
        } else {
            &[]
        }
    }
    fn describe(&self) -> &'static str {
        "the accuracies given (accuracy=)"
    }
    fn require(&self, _indices: &[usize], _dataset: Dataset) -> Result<()> {
        Ok(()) // given for every arch (checked in Python), or none at all
    }
    fn label(&self, _dataset: Dataset) -> String {
        "accuracy".into()
    }
}

fn parse_device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        _ => match name.strip_prefix("cuda:").and_then(|i| i.parse().ok()) {
            Some(i) => Ok(Device::Cuda(i)),
            None => bail!("unknown device '{name}' (cpu, cuda or cuda:N)"),
        },
    }
}

fn selection(proxies: &str, gamma_k: f64, gamma_q: f64, channels_last: bool) -> Result<Selection> {
    let gammas = rbflex::proxies::rbflex::Gammas { gamma_k, gamma_q };
    gammas.check()?;
    Selection::parse(proxies, &Options { gammas, batch: None, channels_last })
}

/// An engine error as a one-line Python exception (a Ctrl-C inside the
/// model's forward stays a KeyboardInterrupt).
fn to_py(e: anyhow::Error) -> PyErr {
    // libtorch's messages carry a C++ backtrace after their first line
    let full = format!("{e:#}");
    let msg = full.lines().next().unwrap_or_default().trim_end().to_string();
    if msg.contains("KeyboardInterrupt") || msg.contains(rbflex::progress::CANCELLED_MESSAGE) {
        return PyKeyboardInterrupt::new_err(msg);
    }
    PyValueError::new_err(msg)
}

/// Runs engine work `f` as the CLI runs it: without the GIL (libtorch_python's
/// autograd engine refuses to run while this thread holds it) and with one
/// libtorch intra-op thread, restored afterwards. One thread makes the values
/// the CLI's, bit for bit, on any machine: libtorch splits its reductions
/// (BatchNorm's statistics, matrix products) by thread, so torch's default
/// of one thread per core moves the last digits with the core count.
fn on_engine<T: Send>(py: Python, f: impl FnOnce() -> Result<T> + Send) -> PyResult<T> {
    struct Restore(i32);
    impl Drop for Restore {
        fn drop(&mut self) {
            tch::set_num_threads(self.0);
        }
    }
    let _restore = Restore(tch::get_num_threads());
    tch::set_num_threads(1);
    py.allow_threads(f).map_err(to_py)
}

/// Scores one model: `factory(init)` returns a fresh `Prepared` copy
/// (`init` 0 default, else the proxy's re-draw follows). Returns every
/// column's value and each proxy's note.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (factory, x, labels, proxies, gamma_k, gamma_q, seed, classes, device, channels_last=false))]
fn score(
    py: Python,
    factory: Py<PyAny>,
    x: PyTensor,
    labels: Option<PyTensor>,
    proxies: &str,
    gamma_k: f64,
    gamma_q: f64,
    seed: u64,
    classes: i64,
    device: &str,
    channels_last: bool,
) -> PyResult<Scored> {
    let run = move || -> Result<_> {
        let device = parse_device(device)?;
        let sel = selection(proxies, gamma_k, gamma_q, channels_last)?;
        let batch =
            Batch::new(&x.0.to_device(Device::Cpu), labels.as_ref().map(|l| l.0.to_device(Device::Cpu)).as_ref())?;
        let build = Python::with_gil(|py| factory.clone_ref(py));
        let space = UserSpace::new("model".into(), vec!["model".into()], build, None);
        let space: Shared<dyn Space> = Shared::Owned(Arc::new(space));
        let mut s = Setting::with_batch(space, Dataset::Cifar10, seed, sel, batch, "inputs".into())?.on(device);
        s.classes = Some(classes);
        let build = |init: Init| -> Result<Box<dyn Net>> {
            let code = match init {
                Init::Default => 0,
                Init::KaimingNormalFanIn => 1,
                Init::Gaussian => 2,
            };
            let net = Python::with_gil(|py| {
                let prepared = factory.call1(py, (code,)).map_err(|e| anyhow!("{}", py_message(py, &e)))?;
                PyNet::new(py, prepared)
            })?;
            net.reinit(init)?;
            Ok(Box::new(net))
        };
        let results = rbflex::run::score_with(&s, &build, seed as i64)?;
        let mut values = Vec::new();
        let mut notes = Vec::new();
        for (name, m, cols) in results {
            values.push((cols.value.clone(), m.value));
            for (c, v) in cols.parts.iter().zip(&m.parts) {
                values.push((c.clone(), *v));
            }
            if let Some(n) = m.note {
                notes.push((name.to_string(), n));
            }
        }
        Ok((values, notes))
    };
    on_engine(py, run)
}

/// A run over a user's design space (`build(index)` prepares
/// `archs[index]`), scored network by network (Python checks Ctrl-C
/// between them) through the engine's worker pool, into a results folder
/// (`out`) or memory.
#[pyclass(unsendable)]
struct Run {
    setting: Setting,
    cache: ScoreCache,
    /// A shard's share of the networks (`shard=`).
    share: Option<Vec<usize>>,
}

#[pymethods]
impl Run {
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (name, archs, build, x, labels, images, proxies, gamma_k, gamma_q, seed, classes, device, out, shard=None, candidates=None, channels_last=false))]
    fn new(
        name: String,
        archs: Vec<String>,
        build: Py<PyAny>,
        x: PyTensor,
        labels: Option<PyTensor>,
        images: String,
        proxies: &str,
        gamma_k: f64,
        gamma_q: f64,
        seed: u64,
        classes: i64,
        device: &str,
        out: Option<PathBuf>,
        shard: Option<(usize, usize)>,
        candidates: Option<Vec<usize>>,
        channels_last: bool,
    ) -> PyResult<Self> {
        let make = || -> Result<Self> {
            rbflex::run::check_run_seed(seed)?;
            let device = parse_device(device)?;
            let sel = selection(proxies, gamma_k, gamma_q, channels_last)?;
            let batch =
                Batch::new(&x.0.to_device(Device::Cpu), labels.as_ref().map(|l| l.0.to_device(Device::Cpu)).as_ref())?;
            let len = archs.len();
            let space: Shared<dyn Space> = Shared::Owned(Arc::new(UserSpace::new(name, archs, build, None)));
            let mut setting = Setting::with_batch(space, Dataset::Cifar10, seed, sel, batch, images)?.on(device);
            setting.classes = Some(classes);
            if let Some((k, n)) = shard {
                let k = rbflex::shard::Shard::new(k, n)?;
                let out = out.as_ref().context("shard= needs out=DIR (each shard writes DIR/shard-K-of-N)")?;
                let (what, indices) = match candidates {
                    Some(c) => (format!("indices ({} networks)", c.len()), c),
                    None => (format!("all {len} archs"), (0..len).collect()),
                };
                let plan = rbflex::shard::Plan { command: "score_many", candidates: what, indices };
                let (_, share, _, cache) = rbflex::shard::open(&mut setting, &plan, k, out)?;
                return Ok(Self { setting, cache, share: Some(share) });
            }
            let cache = match &out {
                Some(dir) => ScoreCache::open(dir, &setting)?,
                None => ScoreCache::in_memory(),
            };
            Ok(Self { setting, cache, share: None })
        };
        make().map_err(to_py)
    }

    /// The shard's share of the networks (None: not sharded).
    fn share(&self) -> Option<Vec<usize>> {
        self.share.clone()
    }

    /// Whether every proxy of the run has a value for `index` already.
    fn done(&self, index: usize) -> bool {
        self.cache
            .get(index)
            .is_some_and(|r| self.setting.selection.proxies.iter().all(|p| r.values.contains_key(&p.columns().value)))
    }

    /// Scores `index` (what is not yet known of it), appended to the folder.
    fn score(&mut self, py: Python, index: usize) -> PyResult<()> {
        let (s, cache) = (&self.setting, &mut self.cache);
        let workers = Workers { jobs: 1, memory_budget_mb: 0 };
        on_engine(py, || rbflex::run::score_many(s, &[index], workers, cache, true))?;
        Ok(())
    }

    /// The known networks of `indices`: (index, arch, init seed, {column:
    /// value}), then the asked proxies' and aggregations' values over them.
    #[allow(clippy::type_complexity)]
    fn table(
        &self,
        indices: Vec<usize>,
    ) -> (Vec<(usize, String, i64, BTreeMap<String, f64>)>, Vec<(String, Vec<f64>)>) {
        let recs: Vec<&Record> = indices.iter().filter_map(|i| self.cache.get(*i)).collect();
        let rows = recs.iter().map(|r| (r.index, r.arch.clone(), r.init_seed, r.values.clone())).collect();
        let values = self.setting.selection.values(recs.len(), |p, i| recs[i].value(p));
        (rows, values.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }
}

/// The proxies: (name, needs labels, protocol batch or None, needs a
/// classifier, description or ""), then the aggregations.
#[pyfunction]
fn proxies() -> Vec<(String, bool, Option<usize>, bool, String)> {
    let o = Options::default();
    let mut out: Vec<_> = rbflex::proxies::REGISTRY
        .iter()
        .map(|make| {
            let p = make(&o);
            let n = p.needs();
            (p.name().to_string(), n.labels, n.batch, n.classifier, String::new())
        })
        .collect();
    for a in rbflex::proxies::AGGREGATES {
        out.push((a.name.to_string(), false, None, false, a.describe.to_string()));
    }
    out
}

/// The engine's correlations of `scores` with `truth` (non-finite scores
/// rank lowest): (n, non-finite, Kendall tau-b, Spearman, Pearson).
#[pyfunction]
fn correlation(scores: Vec<f64>, truth: Vec<f64>) -> PyResult<(usize, usize, f64, f64, f64)> {
    if scores.len() != truth.len() {
        return Err(PyValueError::new_err(format!("{} scores but {} accuracies", scores.len(), truth.len())));
    }
    let c = rbflex::stats::correlate(&scores, &truth);
    Ok((c.n, c.n_nonfinite, c.kendall, c.spearman, c.pearson))
}

/// A dataset by its CLI or key name.
fn dataset_by_name(n: &str) -> Result<Dataset> {
    use clap::ValueEnum;
    let all = Dataset::value_variants();
    all.iter().copied().find(|d| d.key() == n || d.cli_name() == n).with_context(|| {
        let names: Vec<&str> = all.iter().map(|d| d.cli_name()).collect();
        format!("unknown dataset '{n}' (known: {})", names.join(", "))
    })
}

/// A dataset by name, or the space's first.
fn dataset_named(name: Option<&str>, space: &dyn Space) -> Result<Dataset> {
    match name {
        None => space.datasets().first().copied().with_context(|| format!("{} has no dataset", space.name())),
        Some(n) => dataset_by_name(n),
    }
}

fn no_input_options() -> InputOptions<'static> {
    InputOptions { images: None, sentences: None, no_sep: false }
}

/// Built-in space `space` opened for a run as the CLI opens it: the run's
/// setting (the dataset's embedded images, `batch` of them) and the space's
/// ground truth.
fn builtin_run(
    space: &str,
    proxies: &str,
    seed: u64,
    batch: usize,
    (gamma_k, gamma_q): (f64, f64),
    channels_last: bool,
    dataset: Option<&str>,
) -> Result<(Setting, Shared<dyn GroundTruth>)> {
    let opened = rbflex::catalog::open(space, &SpaceOptions::default(), true)?;
    let truth = opened.truth()?;
    let ds = dataset_named(dataset, &*opened.space)?;
    let src = Source::for_run(ds, &no_input_options())?;
    let s = Setting::new(
        opened.space.clone(),
        ds,
        seed,
        selection(proxies, gamma_k, gamma_q, channels_last)?,
        &src,
        batch,
    )?;
    Ok((s, truth))
}

/// `correlate` on a built-in space, as the CLI's (its report as JSON; the
/// results folder, `correlate.csv` and `.png` in `out`).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (space, sample, proxies, seed, batch, gamma_k, gamma_q, dataset, jobs, out, quiet=true, channels_last=false))]
fn correlate_space(
    py: Python,
    space: &str,
    sample: Option<usize>,
    proxies: &str,
    seed: u64,
    batch: usize,
    gamma_k: f64,
    gamma_q: f64,
    dataset: Option<&str>,
    jobs: usize,
    out: PathBuf,
    quiet: bool,
    channels_last: bool,
) -> PyResult<String> {
    let run = move || -> Result<String> {
        let (s, truth) = builtin_run(space, proxies, seed, batch, (gamma_k, gamma_q), channels_last, dataset)?;
        let idx = rbflex::correlate::sample_indices(s.space.len(), sample, seed)?;
        truth.require(&idx, s.dataset)?;
        let mut cache = ScoreCache::open(&out, &s)?;
        let workers = Workers { jobs: jobs.max(1), memory_budget_mb: 0 };
        let rep = rbflex::correlate::run(&s, &*truth, &idx, workers, &mut cache, &out, quiet)?;
        Ok(serde_json::to_string(&rep)?)
    };
    on_engine(py, run)
}

/// `n` images of `dataset`'s embedded sample chosen with `seed`, with the
/// dataset's transforms (as the CLI's runs draw them), and their labels.
#[pyfunction]
fn images(dataset: &str, n: usize, seed: u64) -> PyResult<(PyTensor, Option<PyTensor>)> {
    let run = || -> Result<_> {
        let ds = dataset_named(
            Some(dataset),
            &UserSpace::new(String::new(), vec![], Python::with_gil(|py| py.None()), None),
        )?;
        let (x, y) = Source::for_run(ds, &no_input_options())?.batch(n, seed)?;
        Ok((PyTensor(x), y.map(PyTensor)))
    };
    run().map_err(to_py)
}

/// HDA (the paper's kernel-width detection) over a user's space:
/// `networks` archs drawn as search trial 0 draws them (all when equal to
/// the space's size), each built with its init seed; the smallest positive
/// (gamma_k, gamma_q) candidates.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (name, archs, build, x, seed, networks, device))]
fn hda(
    py: Python,
    name: String,
    archs: Vec<String>,
    build: Py<PyAny>,
    x: PyTensor,
    seed: u64,
    networks: usize,
    device: &str,
) -> PyResult<(f64, f64, Vec<usize>)> {
    let run = move || -> Result<_> {
        let space = UserSpace::new(name, archs, build, None);
        let d = rbflex::hda::detect(&space, Dataset::Cifar10, seed, networks, &x.0, parse_device(device)?)?;
        Ok((d.gamma_k, d.gamma_q, d.networks.iter().map(|n| n.0).collect()))
    };
    on_engine(py, run)
}

/// Every architecture of built-in space `name`, in its official index order.
#[pyfunction]
fn space_archs(name: &str) -> PyResult<Vec<String>> {
    let run = || -> Result<Vec<String>> {
        let space = rbflex::catalog::space(name)?;
        (0..space.len()).map(|i| space.arch(i)).collect()
    };
    run().map_err(to_py)
}

/// The built-in design spaces' names.
#[pyfunction]
fn spaces() -> Vec<String> {
    rbflex::catalog::names()
}

/// Expands a proxy list (`all`, aggregations) into the per-network proxies
/// and the names asked for, or says what is unknown.
#[pyfunction]
fn selection_names(proxies: &str) -> PyResult<(Vec<String>, Vec<String>)> {
    let sel = Selection::parse(proxies, &Options::default()).map_err(to_py)?;
    Ok((sel.proxies.iter().map(|p| p.name().to_string()).collect(), sel.asked.iter().map(|s| s.to_string()).collect()))
}

/// RBFleX's default (gamma_k, gamma_q), as the CLI's.
#[pyfunction]
fn default_gammas() -> (f64, f64) {
    let g = rbflex::proxies::rbflex::Gammas::default();
    (g.gamma_k, g.gamma_q)
}

/// `--shard K/N` or `auto` (Slurm's array variables, as the CLI reads
/// them): (K, N).
#[pyfunction]
fn parse_shard(spec: &str) -> PyResult<(usize, usize)> {
    let spec = spec.trim();
    // the engine's messages name the CLI's option
    let k = rbflex::shard::Shard::parse(spec, None, &|v| std::env::var(v).ok())
        .map_err(|e| to_py(anyhow!("{}", format!("{e:#}").replacen("--shard ", "shard=", 1))))?;
    Ok((k.k, k.n))
}

/// `rbflex merge` of a user space's shards (`dirs`, default: every
/// `out/shard-K-of-N`) into `out`, checking rows against `archs`; the
/// report as JSON.
#[pyfunction]
#[pyo3(signature = (out, dirs, allow_missing, name, archs))]
fn merge(out: PathBuf, dirs: Vec<PathBuf>, allow_missing: bool, name: String, archs: Vec<String>) -> PyResult<String> {
    let run = || -> Result<String> {
        let space = UserSpace::new(name, archs, Python::with_gil(|py| py.None()), None);
        let rep = rbflex::merge::run_with(&out, &dirs, allow_missing, Some(Shared::Owned(Arc::new(space))))?;
        Ok(serde_json::to_string(&rep)?)
    };
    run().map_err(to_py)
}

/// Sets the engine's progress observer: `progress.engine(what, done, len)`
/// at every step (None: the engine's own bar). A Ctrl-C that surfaces there
/// sets `progress.interrupted` (the Python side then stops at the next
/// build), so that it is never lost in the engine.
#[pyfunction]
#[pyo3(signature = (progress))]
fn set_progress(progress: Option<Py<PyAny>>) {
    let observer = progress.map(|p| {
        Arc::new(move |what: &str, done: u64, len: u64| {
            Python::with_gil(|py| {
                if let Err(e) = p.call_method1(py, "engine", (what, done, len)) {
                    if e.is_instance_of::<PyKeyboardInterrupt>(py) {
                        let _ = p.setattr(py, "interrupted", true);
                        rbflex::progress::cancel();
                    } else {
                        e.print(py);
                    }
                }
            })
        }) as rbflex::progress::Observer
    });
    rbflex::progress::set_observer(observer);
}

/// A search's plan, as the Python side passes it (a dict with these keys):
/// the CLI's `--strategy`, `--trials`, `--networks` and the evolution's
/// settings (None: the CLI's defaults).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct Plan {
    strategy: String,
    trials: usize,
    networks: usize,
    population: Option<usize>,
    tournament: Option<usize>,
    children: Option<usize>,
    crossover: Option<f64>,
    quiet: bool,
}

impl Plan {
    /// The evolution's settings, defaults filled in.
    fn evolution(&self) -> rbflex::evolution::Config {
        let d = rbflex::evolution::Config::default();
        rbflex::evolution::Config {
            population: self.population.unwrap_or(d.population),
            tournament: self.tournament.unwrap_or(d.tournament),
            children: self.children.unwrap_or(d.children),
            crossover: self.crossover.unwrap_or(d.crossover),
        }
    }
}

/// A search (`strategy` as the CLI's `--strategy`) into `out`: writes
/// `search.json` (and `search.png` when there are accuracies) and returns
/// the report as JSON. A user's space (`user`) reports its accuracies under
/// `accuracy` instead of the nominal dataset's key.
fn run_search(
    s: &Setting,
    truth: &dyn GroundTruth,
    plan: &Plan,
    jobs: usize,
    out: &Path,
    user: bool,
) -> Result<String> {
    let (strategy, trials, networks, quiet) = (plan.strategy.as_str(), plan.trials, plan.networks, plan.quiet);
    let cfg = plan.evolution();
    let (random, evolution) = rbflex::guided::strategies(strategy)?;
    let len = s.space.len();
    let workers = Workers { jobs: jobs.max(1), memory_budget_mb: 0 };
    let mut rep = if evolution {
        cfg.check()?;
        rbflex::evolution::check_space(&*s.space)?;
        rbflex::search::check_counts(len, trials, networks.min(len))?;
        truth.require(&(0..len).collect::<Vec<_>>(), s.dataset)?;
        let mut cache = ScoreCache::open(out, s)?;
        let rep = rbflex::guided::run(s, truth, trials, networks, random, &cfg, workers, &mut cache, out, quiet)?;
        serde_json::to_value(&rep)?
    } else {
        rbflex::search::check_counts(len, trials, networks)?;
        truth.require(&rbflex::search::candidates(len, trials, networks, s.seed)?, s.dataset)?;
        let mut cache = ScoreCache::open(out, s)?;
        let rep = rbflex::search::run(s, truth, trials, networks, workers, &mut cache, quiet)?;
        let mut v = serde_json::to_value(&rep)?;
        if !truth.datasets().is_empty() {
            let (curve, _) = rbflex::evolution::random_extras(s, truth, &cache, &rep, None);
            let plot = out.join("search.png");
            let title = format!("{} {}, {}: {} trials", rep.space, rep.dataset, rep.proxy, rep.trials.len());
            rbflex::search_plot::plot(&plot, &[("random", &curve)], None, &title, &truth.label(s.dataset))?;
            v["strategy"] = "random".into();
            v["curve"] = serde_json::to_value(&curve)?;
            v["plot"] = plot.display().to_string().into();
        }
        v
    };
    if user {
        rename_keys(&mut rep, s.dataset.key(), "accuracy");
    }
    let text = serde_json::to_string_pretty(&rep)?;
    rbflex::files::write_atomic(&out.join("search.json"), text.as_bytes())?;
    Ok(text)
}

/// Renames every object key `from` to `to` (a `dataset` field `from`
/// becomes `given`).
fn rename_keys(v: &mut serde_json::Value, from: &str, to: &str) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(x) = m.remove(from) {
                m.insert(to.to_string(), x);
            }
            if m.get("dataset").and_then(|d| d.as_str()) == Some(from) {
                m.insert("dataset".into(), "given".into());
            }
            m.values_mut().for_each(|x| rename_keys(x, from, to));
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| rename_keys(x, from, to)),
        _ => {}
    }
}

/// A search over a user's design space (`build(index)` prepares
/// `archs[index]`, `mutate(index, seed)` names a child; `accuracy` one per
/// arch or none) into `out`; the report as JSON.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (name, archs, build, mutate, accuracy, x, labels, images, proxies, gamma_k, gamma_q, seed, classes, device, out, plan, channels_last=false))]
fn search_user(
    py: Python,
    name: String,
    archs: Vec<String>,
    build: Py<PyAny>,
    mutate: Option<Py<PyAny>>,
    accuracy: Option<Vec<f64>>,
    x: PyTensor,
    labels: Option<PyTensor>,
    images: String,
    proxies: &str,
    gamma_k: f64,
    gamma_q: f64,
    seed: u64,
    classes: i64,
    device: &str,
    out: PathBuf,
    plan: Plan,
    channels_last: bool,
) -> PyResult<String> {
    let run = move || -> Result<String> {
        rbflex::run::check_run_seed(seed)?;
        let device = parse_device(device)?;
        let sel = selection(proxies, gamma_k, gamma_q, channels_last)?;
        let batch =
            Batch::new(&x.0.to_device(Device::Cpu), labels.as_ref().map(|l| l.0.to_device(Device::Cpu)).as_ref())?;
        let space: Shared<dyn Space> = Shared::Owned(Arc::new(UserSpace::new(name, archs, build, mutate)));
        let mut s = Setting::with_batch(space, Dataset::Cifar10, seed, sel, batch, images)?.on(device);
        s.classes = Some(classes);
        let truth = UserTruth { accuracy };
        run_search(&s, &truth, &plan, 1, &out, true)
    };
    on_engine(py, run)
}

/// The CLI's `search` on a built-in space into `out`; the report as JSON.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (space, proxies, seed, batch, gamma_k, gamma_q, dataset, jobs, out, plan, channels_last=false))]
fn search_space(
    py: Python,
    space: &str,
    proxies: &str,
    seed: u64,
    batch: usize,
    gamma_k: f64,
    gamma_q: f64,
    dataset: Option<&str>,
    jobs: usize,
    out: PathBuf,
    plan: Plan,
    channels_last: bool,
) -> PyResult<String> {
    let run = move || -> Result<String> {
        let (s, truth) = builtin_run(space, proxies, seed, batch, (gamma_k, gamma_q), channels_last, dataset)?;
        run_search(&s, &*truth, &plan, jobs, &out, false)
    };
    on_engine(py, run)
}

#[pymodule]
fn _rbflex(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(score, m)?)?;
    m.add_function(wrap_pyfunction!(proxies, m)?)?;
    m.add_function(wrap_pyfunction!(spaces, m)?)?;
    m.add_function(wrap_pyfunction!(selection_names, m)?)?;
    m.add_function(wrap_pyfunction!(default_gammas, m)?)?;
    m.add_function(wrap_pyfunction!(correlation, m)?)?;
    m.add_function(wrap_pyfunction!(correlate_space, m)?)?;
    m.add_function(wrap_pyfunction!(images, m)?)?;
    m.add_function(wrap_pyfunction!(space_archs, m)?)?;
    m.add_function(wrap_pyfunction!(hda, m)?)?;
    m.add_function(wrap_pyfunction!(parse_shard, m)?)?;
    m.add_function(wrap_pyfunction!(merge, m)?)?;
    m.add_function(wrap_pyfunction!(set_progress, m)?)?;
    m.add_function(wrap_pyfunction!(search_user, m)?)?;
    m.add_function(wrap_pyfunction!(search_space, m)?)?;
    m.add_class::<Run>()?;
    Ok(())
}
