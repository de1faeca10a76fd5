//! The command line's options and commands (`main.rs` parses and calls
//! [`run`]). Each command opens what it needs, calls the protocol and prints
//! or writes its report.

#![allow(missing_docs)] // clap turns the doc comments into the help text

use crate::benchmarks::nats_archive::NatsArchive;
use crate::benchmarks::nds::Convention;
use crate::benchmarks::GroundTruth;
use crate::catalog::{self, Opened, SpaceOptions};
use crate::dataset::Dataset;
use crate::device::DeviceArg;
use crate::inputs::{load_input, InputOptions, Source};
use crate::proxies::rbflex::{Gammas, GAMMA_K, GAMMA_Q};
use crate::proxies::{self, Selection};
use crate::run::{ScoreCache, Setting, Workers};
use crate::shard::{self, Shard};
use crate::{bench, correlate, merge, nafbee, score, search};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use std::path::PathBuf;
use tch::Tensor;

/// Training-free neural architecture search with RBFleX-NAS.
#[derive(Parser)]
#[command(version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Score one network.
    Score(ScoreArgs),
    /// Detect the kernel gammas from random networks (HDA).
    Hda(HdaArgs),
    /// Run the paper's search protocol (trials x sampled networks).
    Search(SearchArgs),
    /// Correlate scores with benchmark accuracy over a sample of the space.
    Correlate(CorrelateArgs),
    /// Measure networks scored per second and peak memory.
    Bench(BenchArgs),
    /// NAFBee: rank 11 activation functions on VGG-19 or BERT-base.
    Nafbee(NafbeeArgs),
    /// Show what an official NATS-Bench archive holds for one network.
    Archive(ArchiveArgs),
    /// Merge the shards of a sharded run (`--shard`) into its results folder.
    Merge(MergeArgs),
}

#[derive(Args)]
struct MergeArgs {
    /// The run's results folder (the shards' --out): the merged scores.csv and
    /// run.json go here.
    #[arg(long)]
    out: PathBuf,
    /// Shard folders (default: every <out>/shard-K-of-N).
    shards: Vec<PathBuf>,
    /// Merge even when shards or networks are missing (the ordinary command
    /// then scores them).
    #[arg(long)]
    allow_missing: bool,
    /// Emit JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Splitting a run over array-job tasks.
#[derive(Args)]
struct ShardArgs {
    /// Score only shard K of N of the run's networks (positions K, K+N, ... of
    /// its sorted candidates) into <out>/shard-K-of-N; `auto`: K and N from a
    /// Slurm array job or Kubernetes Indexed Job. Then `rbflex merge`.
    #[arg(long)]
    shard: Option<String>,
    /// Number of shards for `--shard auto` (Kubernetes; Slurm: with K =
    /// SLURM_ARRAY_TASK_ID, instead of the array's size).
    #[arg(long, requires = "shard")]
    shards: Option<usize>,
}

impl ShardArgs {
    fn get(&self) -> Result<Option<Shard>> {
        self.shard.as_deref().map(|s| Shard::parse(s, self.shards, &|v: &str| std::env::var(v).ok())).transpose()
    }
}

#[derive(Args)]
struct ArchiveArgs {
    /// The archive folder (NATS-tss-v1_0-3ffb9-simple or NATS-sss-v1_0-50262-simple).
    #[arg(long)]
    benchmark: PathBuf,
    /// Network index.
    #[arg(long, default_value_t = 0)]
    index: usize,
    /// Emit JSON (every trial, epoch and set) instead of a summary.
    #[arg(long)]
    json: bool,
}

/// What a run feeds its networks.
#[derive(Args, Clone)]
struct InputArgs {
    /// Folder of images (PNG/JPEG, or official CIFAR binary batches) instead of
    /// the embedded sample.
    #[arg(long)]
    images: Option<PathBuf>,
    /// File of sentences (SST-2 TSV `label<TAB>sentence`, or one per line)
    /// instead of the embedded SST-2 sample, for text networks.
    #[arg(long)]
    sentences: Option<PathBuf>,
    /// Tokenise as the reference's data_sst2.py does: [CLS] + tokens with no
    /// closing [SEP] (default: [CLS] ... [SEP], standard BERT input).
    #[arg(long)]
    no_sep: bool,
    /// Images (or sentences) per kernel (N) [default: 3].
    #[arg(long, value_parser = count::<2, 10_000>)]
    batch: Option<usize>,
}

impl InputArgs {
    /// `--batch`, or the paper's 3.
    fn batch(&self) -> usize {
        self.batch.unwrap_or(3)
    }
}

/// A count option within `MIN..=MAX`: bounds every option that sizes a run,
/// so that no typo allocates terabytes or runs for years.
fn count<const MIN: usize, const MAX: usize>(text: &str) -> std::result::Result<usize, String> {
    let n: usize = text.trim().parse().map_err(|_| format!("'{text}' is not a whole number"))?;
    if !(MIN..=MAX).contains(&n) {
        return Err(format!("must be between {MIN} and {MAX}, got {n}"));
    }
    Ok(n)
}

/// Options every command shares.
#[derive(Args, Clone)]
struct Common {
    /// Design space.
    #[arg(long, default_value = "nb201")]
    space: String,
    /// Dataset: classifier size, image transforms and ground truth (default:
    /// the space's first: cifar10, imagenet for nds-*_in, sst2 for BERT).
    #[arg(long = "dataset", value_enum)]
    dataset_arg: Option<Dataset>,
    /// The dataset in use (resolved from --dataset and the space).
    #[arg(skip)]
    dataset: Dataset,
    /// NDS file (same format as the embedded ones, e.g. a CIFAR-10 file) for
    /// an nds-* space.
    #[arg(long)]
    benchmark: Option<PathBuf>,
    /// Which NDS accuracy is the ground truth (nds-* spaces) [default: rbflex].
    #[arg(long, value_enum)]
    nds_accuracy: Option<Convention>,
    /// TransNAS task for the ground truth (class_scene, class_object, jigsaw,
    /// room_layout, segmentsemantic, normal, autoencoder; `correlate` also takes
    /// `all`) [default: segmentsemantic].
    #[arg(long)]
    task: Option<String>,
    #[command(flatten)]
    input: InputArgs,
    /// Run seed: image choice and network initialisation (networks are
    /// built with seed * 1000000 + index; `score` builds with the seed itself).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Emit JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Where networks run: auto (the first CUDA GPU when one is usable, else
    /// the CPU), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: DeviceArg,
}

#[derive(Args, Clone)]
struct GammaArgs {
    /// Proxies to score: NAME[,NAME...], `all`, or an aggregation (`ensemble`,
    /// `consensus`, `az`, `vkdnw_agg`). An unknown name lists the known ones.
    #[arg(long, default_value = "rbflex")]
    proxy: String,
    /// Inputs per batch for every proxy except RBFleX (which takes --batch),
    /// instead of each protocol's own (64 for most; needed where images are
    /// few or large, e.g. TransNAS at 512x512).
    #[arg(long, value_parser = count::<2, 10_000>)]
    proxy_batch: Option<usize>,
    /// Run every proxy but RBFleX on channels-last inputs: 1.3-1.5x faster on
    /// the CPU for most proxies (not GraSP), values differ from the reference's in float32
    /// rounding (the default keeps them bit for bit).
    #[arg(long)]
    channels_last: bool,
    /// Gamma of the activation kernel K.
    #[arg(long, default_value_t = GAMMA_K)]
    gamma_k: f64,
    /// Gamma of the final-layer kernel Q.
    #[arg(long, default_value_t = GAMMA_Q)]
    gamma_q: f64,
}

impl GammaArgs {
    fn gammas(&self) -> Result<Gammas> {
        let g = Gammas { gamma_k: self.gamma_k, gamma_q: self.gamma_q };
        g.check()?;
        Ok(g)
    }

    fn selection(&self) -> Result<Selection> {
        let opts =
            proxies::Options { gammas: self.gammas()?, batch: self.proxy_batch, channels_last: self.channels_last };
        let sel = Selection::parse(&self.proxy, &opts)?;
        let own_batch = sel.proxies.iter().any(|p| p.needs().batch.is_some());
        if self.proxy_batch.is_some() && !own_batch {
            bail!("--proxy-batch is for proxies with a batch of their own; {} takes --batch", self.proxy);
        }
        Ok(sel)
    }
}

#[derive(Args)]
struct ScoreArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    gammas: GammaArgs,
    /// Architecture string (e.g. `|nor_conv_3x3~0|+|...|`).
    #[arg(long, required_unless_present = "index", conflicts_with = "index")]
    arch: Option<String>,
    /// Official index of the architecture instead of its string.
    #[arg(long)]
    index: Option<usize>,
    /// The network is built right after `manual_seed(S)` with S = --seed;
    /// images are chosen with --image-seed (default: --seed).
    #[arg(long)]
    image_seed: Option<u64>,
    /// PyTorch state dict (safetensors) to load into the network.
    #[arg(long)]
    params: Option<PathBuf>,
    /// Safetensors file with a float32 NCHW tensor `x`, used as-is.
    #[arg(long)]
    input: Option<PathBuf>,
}

#[derive(Args)]
struct HdaArgs {
    #[command(flatten)]
    common: Common,
    /// Random networks to detect from.
    #[arg(long, default_value_t = 10, value_parser = count::<1, 10_000>)]
    networks: usize,
    /// Safetensors file with a float32 NCHW tensor `x`, used as-is.
    #[arg(long)]
    input: Option<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    gammas: GammaArgs,
    #[command(flatten)]
    workers: WorkerArgs,
    /// Results folder (scores are appended as they finish; a rerun resumes).
    /// Default: rbflex-out/<space>-<dataset>-seed<S>.
    #[arg(long)]
    out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    shard: ShardArgs,
}

#[derive(Args)]
struct SearchArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Independent trials.
    #[arg(long, default_value_t = 10, value_parser = count::<1, 10_000>)]
    trials: usize,
    /// Architectures sampled per trial (evolution: distinct networks scored
    /// per trial, capped at the space's size).
    #[arg(long, default_value_t = 1000, value_parser = count::<1, { crate::run::MAX_SPACE_LEN }>)]
    networks: usize,
    /// random (the paper's protocol), evolution (regularized evolution with
    /// the proxy as fitness), or random,evolution (both, same seeds and
    /// budget, side by side).
    #[arg(long, default_value = "random")]
    strategy: String,
    /// Evolution: population size [default: 10].
    #[arg(long, value_parser = count::<2, 100_000>)]
    population: Option<usize>,
    /// Evolution: tournament size [default: 5].
    #[arg(long, value_parser = count::<1, 100_000>)]
    tournament: Option<usize>,
    /// Evolution: children per step of a trial, scored together [default: 8].
    #[arg(long, value_parser = count::<1, 10_000>)]
    children: Option<usize>,
    /// Evolution: share of children that are the mutation of a crossover of
    /// two tournaments' winners, 0 to 1 (nb201, nats-sss, transnas-micro)
    /// [default: 0].
    #[arg(long)]
    crossover: Option<f64>,
}

#[derive(Args)]
struct CorrelateArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Architectures to sample.
    #[arg(long, default_value_t = 1000, conflicts_with_all = ["all", "indices"], value_parser = count::<2, { crate::run::MAX_SPACE_LEN }>)]
    sample: usize,
    /// Every architecture of the space.
    #[arg(long, conflicts_with = "indices")]
    all: bool,
    /// These architectures: a file of official indices, one per line (`#`
    /// comments and blank lines skipped), e.g. another benchmark's sample.
    #[arg(long)]
    indices: Option<PathBuf>,
}

impl CorrelateArgs {
    fn networks(&self, len: usize, seed: u64) -> Result<Vec<usize>> {
        match &self.indices {
            Some(p) => correlate::read_indices(p, len),
            None => correlate::sample_indices(len, (!self.all).then_some(self.sample), seed),
        }
    }

    /// How the networks are chosen, as a shard records it.
    fn chosen(&self) -> String {
        match &self.indices {
            Some(p) => format!("--indices {}", p.display()),
            None if self.all => "--all".into(),
            None => format!("--sample {}", self.sample),
        }
    }
}

#[derive(Args)]
struct BenchArgs {
    #[command(flatten)]
    common: Common,
    /// Networks to score.
    #[arg(long, default_value_t = 200, value_parser = count::<1, { crate::run::MAX_SPACE_LEN }>)]
    networks: usize,
    /// Score these indices instead of random ones (repeatable).
    #[arg(long = "index")]
    indices: Vec<usize>,
    #[command(flatten)]
    gammas: GammaArgs,
    #[command(flatten)]
    workers: WorkerArgs,
    #[command(flatten)]
    shard: ShardArgs,
}

/// Parallelism and memory of a scoring run.
#[derive(Args)]
struct WorkerArgs {
    /// Worker threads (networks scored at once, one libtorch thread each).
    #[arg(long, default_value_t = default_jobs(), value_parser = count::<1, 1024>)]
    jobs: usize,
    /// Working memory (MB) the networks scored at once may hold together, as
    /// their space or proxies estimate it; a network waits until it fits.
    /// 0: no limit. Default: half the memory available when the run starts
    /// (the machine's, or its Slurm job's or container's limit), at least 1536.
    #[arg(long)]
    memory_budget: Option<u64>,
}

impl WorkerArgs {
    fn workers(&self) -> Workers {
        let memory_budget_mb =
            self.memory_budget.unwrap_or_else(|| crate::memory::default_budget_mb(crate::memory::available()));
        Workers { jobs: self.jobs, memory_budget_mb }
    }
}

#[derive(Args)]
struct NafbeeArgs {
    /// The network.
    #[arg(long, value_enum)]
    model: nafbee::Model,
    /// Random initialisations (and input batches): mean and spread per variant.
    #[arg(long, default_value_t = 1, value_parser = count::<1, 1000>)]
    repeats: usize,
    /// Run seed; repeat r uses seed + r.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    input: InputArgs,
    /// Pretrained BERT checkpoint (safetensors, Hugging Face names), as the
    /// reference starts from.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Fixed gamma_k instead of HDA (give --gamma-q too).
    #[arg(long, requires = "gamma_q")]
    gamma_k: Option<f64>,
    /// Fixed gamma_q instead of HDA.
    #[arg(long, requires = "gamma_k")]
    gamma_q: Option<f64>,
    /// Worker threads.
    #[arg(long, default_value_t = default_jobs(), value_parser = count::<1, 1024>)]
    jobs: usize,
    /// Results folder. Default: rbflex-out/nafbee-<model>-seed<S>.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Emit JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Where networks run: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: DeviceArg,
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// The run's input source; an input option the dataset does not take is an
/// error (never silently ignored).
fn source(c: &Common) -> Result<Source> {
    let o = InputOptions {
        images: c.input.images.as_deref(),
        sentences: c.input.sentences.as_deref(),
        no_sep: c.input.no_sep,
    };
    Source::for_run(c.dataset, &o)
}

/// Refuses the input options a given `--input` tensor makes meaningless.
fn check_given_input(c: &Common, image_seed: Option<u64>) -> Result<()> {
    for (given, name) in [
        (c.input.batch.is_some(), "--batch"),
        (c.input.images.is_some(), "--images"),
        (c.input.sentences.is_some(), "--sentences"),
        (c.input.no_sep, "--no-sep"),
        (image_seed.is_some(), "--image-seed"),
    ] {
        if given {
            bail!("{name} does not apply with --input: the input file is the batch, used as-is");
        }
    }
    Ok(())
}

/// The `--batch` inputs chosen with `seed` and where they came from.
fn input_batch(c: &Common, seed: u64) -> Result<(Tensor, String)> {
    let src = source(c)?;
    Ok((src.batch(c.input.batch(), seed)?.0, src.describe(c.input.batch(), seed)))
}

/// Opens `--space` (with `--benchmark`; its ground truth only when
/// `truth`) and settles the dataset. Options the space does not take are
/// refused, and `--task all` unless `all_tasks` (correlate).
fn open_space(c: &mut Common, all_tasks: bool, truth: bool) -> Result<Opened> {
    let opts =
        SpaceOptions { benchmark: c.benchmark.as_deref(), task: c.task.as_deref(), nds_accuracy: c.nds_accuracy };
    catalog::check_options(&c.space, &opts)?;
    let all = opts.task == Some("all");
    if all && !all_tasks {
        bail!("--task all is for correlate (one scoring pass against the seven tasks); give one task here");
    }
    let opts = SpaceOptions { task: if all { None } else { opts.task }, ..opts };
    let opened = catalog::open(&c.space, &opts, truth)?;
    let ds = opened.space.datasets();
    c.dataset = c.dataset_arg.unwrap_or(ds[0]);
    if !ds.contains(&c.dataset) {
        let names: Vec<_> = ds.iter().map(|d| d.cli_name()).collect();
        bail!("space '{}' has no dataset {} (it has: {})", c.space, c.dataset.cli_name(), names.join(", "));
    }
    Ok(opened)
}

/// The run's setting and, when `truth`, its ground truth.
fn setting(r: &mut RunArgs, all_tasks: bool, truth: bool) -> Result<(Setting, Opened)> {
    let opened = open_space(&mut r.common, all_tasks, truth)?;
    let c = &r.common;
    let s = Setting::new(opened.space.clone(), c.dataset, c.seed, r.gammas.selection()?, &source(c)?, c.input.batch())?
        .on(crate::device::resolve(c.device)?.0);
    Ok((s, opened))
}

/// The results folder: `--out`, or the default; never inside the inputs
/// (its reports would become inputs of the next run) nor holding them.
fn out_dir(r: &RunArgs) -> Result<PathBuf> {
    let c = &r.common;
    let out = r
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("rbflex-out/{}-{}-seed{}", c.space, c.dataset.key(), c.seed)));
    for (input, option) in [(&c.input.images, "--images"), (&c.input.sentences, "--sentences")] {
        if let Some(input) = input {
            crate::files::check_apart(&out, input, option)?;
        }
    }
    Ok(out)
}

fn fmt_f(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.6}")
    } else {
        v.to_string()
    }
}

fn cmd_score(mut a: ScoreArgs) -> Result<()> {
    let space = open_space(&mut a.common, false, false)?.space;
    let c = &a.common;
    let inputs = match &a.input {
        Some(p) => {
            check_given_input(c, a.image_seed)?;
            score::Inputs::Given { x: load_input(p)?, name: p.display().to_string() }
        }
        None => score::Inputs::Drawn { source: source(c)?, batch: c.input.batch() },
    };
    let arch = match (&a.arch, a.index) {
        (Some(s), _) => s.clone(),
        (None, Some(i)) => space.arch(i)?,
        (None, None) => bail!("give --arch or --index"),
    };
    let rep = score::run(score::Request {
        space,
        dataset: c.dataset,
        arch,
        seed: c.seed,
        image_seed: a.image_seed.unwrap_or(c.seed),
        selection: a.gammas.selection()?,
        inputs,
        params: a.params.clone(),
        device: crate::device::resolve(c.device)?.0,
    })?;
    for note in &rep.notes {
        eprintln!("note: {note}");
    }
    if c.json {
        println!("{}", serde_json::to_string_pretty(&rep.to_json())?);
        return Ok(());
    }
    println!("arch      {}", rep.arch);
    if let Some(i) = rep.index {
        println!("index     {i}");
    }
    for r in &rep.results {
        let (name, m) = (r.proxy, &r.measure);
        println!("{:<9} {}", if r.columns.value == "score" { "score" } else { name }, fmt_f(m.value));
        for (c, x) in r.columns.parts.iter().zip(&m.parts) {
            println!("  {c:<9} {}", fmt_f(*x));
        }
        if let Some(note) = &m.note {
            println!("note: {name}: {note}");
        }
    }
    println!("params {}", rep.params);
    Ok(())
}

fn cmd_hda(mut a: HdaArgs) -> Result<()> {
    let space = open_space(&mut a.common, false, false)?.space;
    let c = &a.common;
    crate::run::check_run_seed(c.seed)?;
    let x = match &a.input {
        Some(p) => {
            check_given_input(c, None)?;
            load_input(p)?
        }
        None => input_batch(c, c.seed)?.0,
    };
    let device = crate::device::resolve(c.device)?.0;
    let d = crate::hda::detect(&*space, c.dataset, c.seed, a.networks, &x, device)?;
    let (gk, gq, nets) = (d.gamma_k, d.gamma_q, &d.networks);
    if c.json {
        let v = json!({
            "gamma_k": gk, "gamma_q": gq, "seed": c.seed,
            "networks": nets.iter().map(|(i, a, cd)| json!({"index": i, "arch": a, "cand_k": cd.cand_k, "cand_q": cd.cand_q})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for (i, arch, _) in nets {
            println!("{i:>6}  {arch}");
        }
        println!("gamma_k {gk:e}\ngamma_q {gq:e}");
        println!("(use with: --gamma-k {gk:e} --gamma-q {gq:e})");
    }
    Ok(())
}

/// Writes a report as JSON to `path`, and prints it when `json`; returns
/// whether it was printed.
fn save_report<T: serde::Serialize>(path: &std::path::Path, rep: &T, json: bool) -> Result<bool> {
    let text = serde_json::to_string_pretty(rep)?;
    crate::files::write_atomic(path, text.as_bytes())?;
    if json {
        println!("{text}");
    }
    Ok(json)
}

/// `--shard`: scores the shard's part of `plan` and reports it.
fn run_shard(s: &mut Setting, r: &RunArgs, k: Shard, plan: shard::Plan) -> Result<()> {
    let rep = shard::run(s, &plan, k, &out_dir(r)?, r.workers.workers(), r.quiet || r.common.json)?;
    if r.common.json {
        println!("{}", serde_json::to_string_pretty(&rep)?);
    } else {
        print!("{rep}");
    }
    Ok(())
}

fn cmd_search(mut a: SearchArgs) -> Result<()> {
    let (random, evolution) = crate::guided::strategies(&a.strategy)?;
    let evo_opts = [
        (a.population.is_some(), "--population"),
        (a.tournament.is_some(), "--tournament"),
        (a.children.is_some(), "--children"),
        (a.crossover.is_some(), "--crossover"),
    ];
    if let (false, Some((_, name))) = (evolution, evo_opts.iter().find(|o| o.0)) {
        bail!("{name} is for --strategy evolution");
    }
    if evolution {
        return cmd_search_guided(a, random);
    }
    let shard = a.run.shard.get()?;
    let (mut s, opened) = setting(&mut a.run, false, shard.is_none())?;
    search::check_counts(s.space.len(), a.trials, a.networks)?;
    if let Some(k) = shard {
        let indices = search::candidates(s.space.len(), a.trials, a.networks, s.seed)?;
        let candidates = format!("--trials {} --networks {}", a.trials, a.networks);
        return run_shard(&mut s, &a.run, k, shard::Plan { command: "search", candidates, indices });
    }
    let truth = opened.truth()?;
    // before the folder is touched
    truth.require(&search::candidates(s.space.len(), a.trials, a.networks, s.seed)?, s.dataset)?;
    let dir = out_dir(&a.run)?;
    let mut cache = ScoreCache::open(&dir, &s)?;
    let rep = search::run(
        &s,
        &*truth,
        a.trials,
        a.networks,
        a.run.workers.workers(),
        &mut cache,
        a.run.quiet || a.run.common.json,
    )?;
    let path = dir.join("search.json");
    if save_report(&path, &rep, a.run.common.json)? {
        return Ok(());
    }
    println!(
        "{} on {} (seed {}): {} trials x {} networks, {} distinct scored",
        rep.space,
        rep.dataset,
        rep.seed,
        rep.trials.len(),
        rep.networks,
        rep.networks_scored
    );
    let keys: Vec<&String> = rep.mean.keys().collect();
    println!(
        "{:>5} {:>6} {:>12}  {}  arch",
        "trial",
        "index",
        "score",
        keys.iter().map(|k| format!("{k:>15}")).collect::<String>()
    );
    for t in &rep.trials {
        let accs: String =
            keys.iter().map(|k| format!("{:>15.2}", t.accuracy.get(*k).copied().unwrap_or(f64::NAN))).collect();
        println!("{:>5} {:>6} {:>12.4}  {accs}  {}", t.trial, t.index, t.score, t.arch);
    }
    for k in keys {
        println!(
            "{k:>15}: {:.2} +- {:.2} (space best {:.2}, gap {:.2})",
            rep.mean[k], rep.std[k], rep.best_in_space[k], rep.gap[k]
        );
    }
    println!(
        "search time {:.1} s wall in this run (scoring only; cached scores are free); one trial = {:.1} s of one worker; results in {}",
        rep.search_seconds,
        rep.trial_worker_seconds,
        path.display()
    );
    println!("note: each trial keeps its own best (the reference carries its best score over from earlier trials)");
    Ok(())
}

/// `search --strategy evolution` (or `random,evolution` when `random`).
fn cmd_search_guided(mut a: SearchArgs, random: bool) -> Result<()> {
    if a.run.shard.shard.is_some() {
        bail!("{}", crate::guided::NO_SHARD);
    }
    let d = crate::evolution::Config::default();
    let cfg = crate::evolution::Config {
        population: a.population.unwrap_or(d.population),
        tournament: a.tournament.unwrap_or(d.tournament),
        children: a.children.unwrap_or(d.children),
        crossover: a.crossover.unwrap_or(d.crossover),
    };
    cfg.check()?;
    let (s, opened) = setting(&mut a.run, false, true)?;
    let truth = opened.truth()?;
    crate::evolution::check_space(&*s.space)?;
    crate::evolution::check_crossover(&*s.space, &cfg)?;
    let len = s.space.len();
    let networks = a.networks.min(len);
    if networks < a.networks {
        eprintln!(
            "note: --networks {} is more than the {len} networks of {}: capped at {len}",
            a.networks,
            s.space.name()
        );
    }
    search::check_counts(len, a.trials, networks)?;
    truth.require(&(0..len).collect::<Vec<_>>(), s.dataset)?; // before the folder is touched
    let dir = out_dir(&a.run)?;
    let mut cache = ScoreCache::open(&dir, &s)?;
    let quiet = a.run.quiet || a.run.common.json;
    let rep = crate::guided::run(
        &s,
        &*truth,
        a.trials,
        a.networks,
        random,
        &cfg,
        a.run.workers.workers(),
        &mut cache,
        &dir,
        quiet,
    )?;
    let path = dir.join("search.json");
    if !save_report(&path, &rep, a.run.common.json)? {
        print!("{rep}");
        println!("results in {}", path.display());
    }
    Ok(())
}

fn cmd_correlate(mut a: CorrelateArgs) -> Result<()> {
    if let Some(k) = a.run.shard.get()? {
        let all_tasks = a.run.common.task.as_deref() == Some("all");
        let (mut s, _) = setting(&mut a.run, all_tasks, false)?;
        let indices = a.networks(s.space.len(), s.seed)?;
        return run_shard(&mut s, &a.run, k, shard::Plan { command: "correlate", candidates: a.chosen(), indices });
    }
    if a.run.common.task.as_deref() == Some("all") {
        return correlate_all_tasks(a);
    }
    let (s, opened) = setting(&mut a.run, false, true)?;
    let truth = opened.truth()?;
    let idx = a.networks(s.space.len(), s.seed)?;
    truth.require(&idx, s.dataset)?; // before the folder is touched
    let dir = out_dir(&a.run)?;
    let mut cache = ScoreCache::open(&dir, &s)?;
    let rep =
        correlate::run(&s, &*truth, &idx, a.run.workers.workers(), &mut cache, &dir, a.run.quiet || a.run.common.json)?;
    let path = dir.join("correlate.json");
    if save_report(&path, &rep, a.run.common.json)? {
        return Ok(());
    }
    println!(
        "{} on {}: {} networks ({} non-finite scores), scored in {:.1} s wall in this run ({:.1} s of one worker in all)",
        rep.space, rep.dataset, rep.main.n, rep.main.n_nonfinite, rep.seconds, rep.worker_seconds
    );
    if rep.proxies.len() == 1 {
        println!("{:>15} {:>8} {:>9} {:>8}", "accuracy of", "kendall", "spearman", "pearson");
        for (d, c) in &rep.main.by_dataset {
            println!("{d:>15} {:>8.4} {:>9.4} {:>8.4}", c.kendall, c.spearman, c.pearson);
        }
    } else {
        print_proxy_table(&rep);
    }
    println!("csv {}\nplot {}", rep.csv, rep.plot);
    Ok(())
}

/// Kendall's tau of every proxy (rows) against every dataset (columns).
fn print_proxy_table(rep: &correlate::CorrelationReport) {
    let datasets: Vec<&String> = rep.main.by_dataset.keys().collect();
    println!("Kendall tau (Spearman rho of {} in brackets)", rep.dataset);
    println!("{:<18}{}", "proxy", datasets.iter().map(|d| format!("{d:>16}")).collect::<String>());
    let mut rows: Vec<(&String, &correlate::ProxyCorrelation)> = rep.proxies.iter().collect();
    rows.sort_by(|a, b| b.1.kendall.total_cmp(&a.1.kendall));
    for (name, c) in rows {
        let cells: String = datasets
            .iter()
            .map(|d| {
                let k = c.by_dataset.get(*d).map_or(f64::NAN, |x| x.kendall);
                if **d == rep.dataset {
                    format!("{:>16}", format!("{k:.4} ({:.3})", c.spearman))
                } else {
                    format!("{k:>16.4}")
                }
            })
            .collect();
        println!("{name:<18}{cells}");
    }
}

/// TransNAS `--task all`: one scoring pass (the score does not depend on the
/// task), then the correlations against each of the seven tasks.
fn correlate_all_tasks(mut a: CorrelateArgs) -> Result<()> {
    let (s, _) = setting(&mut a.run, true, false)?;
    let idx = a.networks(s.space.len(), s.seed)?;
    let dir = out_dir(&a.run)?;
    let mut cache = ScoreCache::open(&dir, &s)?;
    let truths = catalog::task_truths(&a.run.common.space)?;
    let quiet = a.run.quiet || a.run.common.json;
    let truths: Vec<(&str, &dyn GroundTruth)> = truths.iter().map(|(t, g)| (*t, &**g)).collect();
    let all = correlate::run_tasks(&s, &truths, &idx, a.run.workers.workers(), &mut cache, &dir, quiet)?;
    if !a.run.common.json {
        for (task, rep) in &all {
            println!(
                "{:<16} n {:>5}  kendall {:>7.4}  spearman {:>7.4}  pearson {:>7.4}  ({})",
                task, rep.main.n, rep.main.kendall, rep.main.spearman, rep.main.pearson, rep.proxy
            );
            if rep.proxies.len() > 1 {
                for (name, c) in &rep.proxies {
                    println!("    {name:<18} kendall {:>7.4}  spearman {:>7.4}", c.kendall, c.spearman);
                }
            }
        }
    }
    if !save_report(&dir.join("correlate.json"), &all, a.run.common.json)? {
        println!("results in {}", dir.display());
    }
    Ok(())
}

fn cmd_bench(mut a: BenchArgs) -> Result<()> {
    let space = open_space(&mut a.common, false, false)?.space;
    let c = &a.common;
    let (device, why_not_cuda) = crate::device::resolve(c.device)?;
    let s = Setting::new(space, c.dataset, c.seed, a.gammas.selection()?, &source(c)?, c.input.batch())?.on(device);
    let rep = bench::run(&s, a.networks, &a.indices, a.workers.workers(), a.shard.get()?, c.json)?;
    if c.json {
        println!("{}", serde_json::to_string_pretty(&rep)?);
    } else {
        println!(
            "{} on {}: {} networks at {}x{}, batch {}, {} jobs: {:.3} nets/s ({:.1} ms per network per worker), peak RSS {:.0} MB, cores busy {:.0}%",
            rep.space, rep.device, rep.networks, rep.resolution[0], rep.resolution[1], rep.batch, rep.jobs, rep.nets_per_second, rep.ms_per_network, rep.peak_rss_mb, rep.cpu_busy * 100.0
        );
        if let Some(why) = why_not_cuda {
            println!("  (not on a GPU: {why})");
        }
        if rep.ms_per_proxy.len() > 1 {
            for (p, ms) in &rep.ms_per_proxy {
                println!("  {p:<18} {ms:>9.1} ms per network per worker");
            }
        }
    }
    Ok(())
}

fn cmd_nafbee(a: NafbeeArgs) -> Result<()> {
    crate::run::check_run_seed(a.seed.saturating_add(a.repeats as u64))?;
    if a.checkpoint.is_some() && a.model != nafbee::Model::Bert {
        bail!("--checkpoint is for --model bert");
    }
    let gammas = match (a.gamma_k, a.gamma_q) {
        (Some(k), Some(q)) => Some(
            GammaArgs { proxy: "rbflex".into(), proxy_batch: None, channels_last: false, gamma_k: k, gamma_q: q }
                .gammas()?,
        ),
        _ => None,
    };
    let common = Common {
        space: a.model.space().name().into(),
        dataset_arg: Some(a.model.dataset()),
        dataset: a.model.dataset(),
        benchmark: None,
        nds_accuracy: None,
        task: None,
        input: a.input.clone(),
        seed: a.seed,
        json: a.json,
        device: a.device,
    };
    let _checked = input_batch(&common, a.seed)?; // check the inputs before any network is built
    let opts = nafbee::Options {
        model: a.model,
        repeats: a.repeats,
        seed: a.seed,
        input: Box::new(move |seed| Ok(input_batch(&common, seed)?.0)),
        gammas,
        checkpoint: a.checkpoint.clone(),
        jobs: a.jobs,
        device: crate::device::resolve(a.device)?.0,
    };
    let rep = nafbee::run(&opts)?;
    let dir = a.out.clone().unwrap_or_else(|| PathBuf::from(format!("rbflex-out/nafbee-{}-seed{}", rep.model, a.seed)));
    if dir.exists() && !dir.is_dir() {
        bail!("--out {} is a file, not a folder", dir.display());
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let printed = save_report(&dir.join("nafbee.json"), &rep, a.json)?;
    nafbee::write_csv(&dir.join("nafbee.csv"), &rep)?;
    if printed {
        return Ok(());
    }
    println!("NAFBee {} ({} repeat(s)); init: {}", rep.model, rep.repeats, rep.init);
    for (r, g) in rep.gammas.iter().enumerate() {
        println!("repeat {r}: gamma_k {:e}, gamma_q {:e}", g.gamma_k, g.gamma_q);
    }
    println!(
        "{:<10} {:>14} {:>10} {:>5} {:>9} {:>10} {:>8}",
        "activation", "score", "+-", "rank", "accuracy", "bench rank", "s/net"
    );
    for v in &rep.variants {
        println!(
            "{:<10} {:>14} {:>10.4} {:>5} {:>9.2} {:>10} {:>8.2}",
            v.activation,
            fmt_f(v.mean),
            v.std,
            v.rank,
            v.accuracy,
            v.benchmark_rank,
            v.seconds
        );
    }
    println!(
        "Kendall {:.4}, Spearman {:.4} (11 variants); top-scored is the benchmark's best: {}",
        rep.kendall, rep.spearman, rep.top_is_best
    );
    println!("peak RSS {:.0} MB; results in {}", rep.peak_rss_mb, dir.display());
    Ok(())
}

fn cmd_archive(a: ArchiveArgs) -> Result<()> {
    let archive = NatsArchive::open(&a.benchmark)?;
    let info = archive.info(a.index)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&*info)?);
        return Ok(());
    }
    println!("{} networks; index {}: {}", archive.archs.len(), info.index, info.arch);
    for (hp, trials) in &info.hps {
        let mut datasets: Vec<&str> = trials.iter().map(|t| t.dataset.as_str()).collect();
        datasets.dedup();
        for d in datasets {
            let seeds: Vec<i64> = trials.iter().filter(|t| t.dataset == d).map(|t| t.seed).collect();
            let sets: std::collections::BTreeSet<String> = trials
                .iter()
                .filter(|t| t.dataset == d)
                .flat_map(|t| t.eval_accuracy.keys().filter_map(|k| k.split('@').next().map(String::from)))
                .collect();
            let accs: Vec<String> = sets
                .iter()
                .filter_map(|s| info.metric(hp, d, s, None).map(|(acc, _)| format!("{s} {acc:.2}")))
                .collect();
            let (params, flops, lat) = info.costs(hp, d).unwrap_or((f64::NAN, f64::NAN, None));
            println!(
                "hp {hp:>3} {d:<15} seeds {seeds:?}: {}; params {params:.4} MB, FLOPs {flops:.2} M, latency {}",
                accs.join(", "),
                lat.map(|l| format!("{l:.4} s")).unwrap_or_else(|| "n/a".into())
            );
        }
    }
    Ok(())
}

fn cmd_merge(a: MergeArgs) -> Result<()> {
    let rep = merge::run(&a.out, &a.shards, a.allow_missing)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rep)?);
    } else {
        print!("{rep}");
    }
    Ok(())
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Score(a) => cmd_score(a),
        Command::Hda(a) => cmd_hda(a),
        Command::Search(a) => cmd_search(a),
        Command::Correlate(a) => cmd_correlate(a),
        Command::Bench(a) => cmd_bench(a),
        Command::Nafbee(a) => cmd_nafbee(a),
        Command::Archive(a) => cmd_archive(a),
        Command::Merge(a) => cmd_merge(a),
    }
}
