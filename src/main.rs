//! The `rbflex` command line: score, hda, search, correlate, bench.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use rbflex::benchmarks::nats_archive::NatsArchive;
use rbflex::benchmarks::nds::Convention;
use rbflex::benchmarks::GroundTruth;
use rbflex::catalog::{self, Opened};
use rbflex::eval::{ScoreCache, Setting, Workers};
use rbflex::inputs::text::Sentences;
use rbflex::inputs::{load_input, native_size, ImagePool};
use rbflex::proxies::hda::{candidates, min_positive, Candidates};
use rbflex::proxies::rbflex::{score, Gammas, GAMMA_K, GAMMA_Q};
use rbflex::spaces::transnas::TASKS;
use rbflex::spaces::{build_seeded, Dataset};
use rbflex::{bench, correlate, eval, nafbee, search};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use tch::Tensor;

/// Training-free neural architecture search with RBFleX-NAS.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
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
    /// Images (or sentences) per kernel (N).
    #[arg(long, default_value_t = 3)]
    batch: usize,
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
    /// Which NDS accuracy is the ground truth.
    #[arg(long, value_enum, default_value = "rbflex")]
    nds_accuracy: Convention,
    /// TransNAS task for the ground truth (class_scene, class_object, jigsaw,
    /// room_layout, segmentsemantic, normal, autoencoder; `correlate` also takes
    /// `all`).
    #[arg(long, default_value = "segmentsemantic")]
    task: String,
    #[command(flatten)]
    input: InputArgs,
    /// Run seed: image choice and network initialisation.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Emit JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Clone)]
struct GammaArgs {
    /// Gamma of the activation kernel K.
    #[arg(long, default_value_t = GAMMA_K)]
    gamma_k: f64,
    /// Gamma of the final-layer kernel Q.
    #[arg(long, default_value_t = GAMMA_Q)]
    gamma_q: f64,
}

impl GammaArgs {
    fn gammas(&self) -> Result<Gammas> {
        for (name, g) in [("--gamma-k", self.gamma_k), ("--gamma-q", self.gamma_q)] {
            if !(g.is_finite() && g > 0.0) {
                bail!("{name} must be a positive number, got {g}");
            }
        }
        Ok(Gammas { gamma_k: self.gamma_k, gamma_q: self.gamma_q })
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
    #[arg(long, default_value_t = 10)]
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
}

#[derive(Args)]
struct SearchArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Independent trials.
    #[arg(long, default_value_t = 10)]
    trials: usize,
    /// Architectures sampled per trial.
    #[arg(long, default_value_t = 1000)]
    networks: usize,
}

#[derive(Args)]
struct CorrelateArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Architectures to sample.
    #[arg(long, default_value_t = 1000, conflicts_with = "all")]
    sample: usize,
    /// Every architecture of the space.
    #[arg(long)]
    all: bool,
}

#[derive(Args)]
struct BenchArgs {
    #[command(flatten)]
    common: Common,
    /// Networks to score.
    #[arg(long, default_value_t = 200)]
    networks: usize,
    /// Score these indices instead of random ones (repeatable).
    #[arg(long = "index")]
    indices: Vec<usize>,
    #[command(flatten)]
    workers: WorkerArgs,
}

/// Parallelism and memory of a scoring run.
#[derive(Args)]
struct WorkerArgs {
    /// Worker threads (networks scored at once, one libtorch thread each).
    #[arg(long, default_value_t = default_jobs())]
    jobs: usize,
    /// Working memory (MB) the networks scored at once may hold together, as
    /// estimated by their space (TransNAS); a network waits until it fits.
    /// 0: no limit.
    #[arg(long, default_value_t = rbflex::memory::DEFAULT_BUDGET_MB)]
    memory_budget: u64,
}

impl WorkerArgs {
    fn workers(&self) -> Workers {
        Workers { jobs: self.jobs, memory_budget_mb: self.memory_budget }
    }
}

#[derive(Args)]
struct NafbeeArgs {
    /// The network.
    #[arg(long, value_enum)]
    model: nafbee::Model,
    /// Random initialisations (and input batches): mean and spread per variant.
    #[arg(long, default_value_t = 1)]
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
    #[arg(long, default_value_t = default_jobs())]
    jobs: usize,
    /// Results folder. Default: rbflex-out/nafbee-<model>-seed<S>.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Emit JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Longest sentence (tokens) fed to text networks, as the reference.
const MAX_SEQ_LEN: usize = 50;

/// The images (or sentences) a run feeds: its batch and where it came from.
fn input_batch(c: &Common, seed: u64) -> Result<(Tensor, String)> {
    if c.input.batch < 2 {
        bail!("--batch must be at least 2 (a kernel compares images), got {}", c.input.batch);
    }
    let Some(_size) = native_size(c.dataset) else {
        let pool = match &c.input.sentences {
            Some(p) => Sentences::from_file(p)?,
            None => Sentences::embedded()?,
        };
        let x = pool.batch(c.input.batch, seed, MAX_SEQ_LEN, !c.input.no_sep)?;
        return Ok((x, format!("{} (batch {}, seed {seed})", pool.source, c.input.batch)));
    };
    let pool = match &c.input.images {
        Some(dir) => ImagePool::from_dir(dir, c.dataset)?,
        None => ImagePool::embedded(c.dataset)?,
    };
    let x = pool.batch(c.dataset, c.input.batch, seed)?;
    Ok((x, format!("{} (batch {}, image seed {seed})", pool.source, c.input.batch)))
}

/// Opens `--space` (with `--benchmark`) and settles the dataset.
fn open_space(c: &mut Common) -> Result<Opened> {
    let task = if c.task == "all" { TASKS[0] } else { c.task.as_str() };
    let opened = catalog::open(&c.space, c.benchmark.as_deref(), c.nds_accuracy, task)?;
    let ds = opened.space.datasets();
    c.dataset = c.dataset_arg.unwrap_or(ds[0]);
    if !ds.contains(&c.dataset) {
        let names: Vec<_> = ds.iter().map(|d| d.key()).collect();
        bail!("space '{}' has no dataset {} (it has: {})", c.space, c.dataset, names.join(", "));
    }
    Ok(opened)
}

fn setting(r: &mut RunArgs) -> Result<(Setting, &'static dyn GroundTruth)> {
    let opened = open_space(&mut r.common)?;
    let c = &r.common;
    let space = opened.space;
    let (x, images) = input_batch(c, c.seed)?;
    let s = Setting {
        space,
        dataset: c.dataset,
        seed: c.seed,
        gammas: r.gammas.gammas()?,
        x: Setting::input_from(&x)?,
        images,
    };
    Ok((s, opened.truth))
}

fn out_dir(r: &RunArgs) -> PathBuf {
    let c = &r.common;
    r.out.clone().unwrap_or_else(|| PathBuf::from(format!("rbflex-out/{}-{}-seed{}", c.space, c.dataset.key(), c.seed)))
}

fn fmt_f(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.6}")
    } else {
        v.to_string()
    }
}

fn cmd_score(mut a: ScoreArgs) -> Result<()> {
    let space = open_space(&mut a.common)?.space;
    let c = &a.common;
    let arch = match (&a.arch, a.index) {
        (Some(s), _) => s.clone(),
        (None, Some(i)) => space.arch(i)?,
        (None, None) => bail!("give --arch or --index"),
    };
    let index = space.index_of(&arch).ok();
    let x = match &a.input {
        Some(p) => load_input(p)?,
        None => input_batch(c, a.image_seed.unwrap_or(c.seed))?.0,
    };
    let net = build_seeded(space, &arch, c.dataset, c.seed as i64)?;
    if let Some(p) = &a.params {
        net.params().load_safetensors(p)?;
    }
    let s = score(net.as_ref(), &x, a.gammas.gammas()?);
    if c.json {
        let v = json!({
            "arch": arch, "index": index, "score": num(s.score), "logdet_k": num(s.logdet_k), "logdet_q": num(s.logdet_q),
            "la": s.la, "lq": s.lq, "nonfinite_activations": s.nonfinite, "params": net.params().count(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("arch      {arch}");
        if let Some(i) = index {
            println!("index     {i}");
        }
        println!("score     {}", fmt_f(s.score));
        println!("logdet_k  {}\nlogdet_q  {}", fmt_f(s.logdet_k), fmt_f(s.logdet_q));
        println!("L_A {}  L_Q {}  params {}", s.la, s.lq, net.params().count());
        if s.nonfinite {
            println!("note: some activations were NaN or infinite; the score is -inf");
        } else if s.score == f64::NEG_INFINITY {
            println!("note: a kernel is singular (identical rows); the score is -inf and ranks last");
        }
    }
    Ok(())
}

/// A JSON number, or the strings "-inf", "inf", "NaN" that JSON cannot hold
/// as numbers (pandas and Python's float() read them back).
fn num(v: f64) -> serde_json::Value {
    if v.is_finite() {
        json!(v)
    } else {
        json!(v.to_string())
    }
}

fn cmd_hda(mut a: HdaArgs) -> Result<()> {
    let space = open_space(&mut a.common)?.space;
    let c = &a.common;
    let x = match &a.input {
        Some(p) => load_input(p)?,
        None => input_batch(c, c.seed)?.0,
    };
    if a.networks == 0 || a.networks > space.len() {
        bail!("--networks must be between 1 and {}, got {}", space.len(), a.networks);
    }
    let idx = search::trial_sample(space.len(), a.networks, c.seed, 0);
    let mut nets = Vec::new();
    for i in idx {
        let arch = space.arch(i)?;
        let net = build_seeded(space, &arch, c.dataset, eval::init_seed(c.seed, i))?;
        let cand: Candidates = candidates(net.as_ref(), &x);
        nets.push((i, arch, cand));
    }
    let gk = min_positive(nets.iter().flat_map(|n| &n.2.cand_k))
        .context("no positive gamma_k candidate: every pair of rows has equal means")?;
    let gq = min_positive(nets.iter().flat_map(|n| &n.2.cand_q))
        .context("no positive gamma_q candidate: every pair of rows has equal means")?;
    if c.json {
        let v = json!({
            "gamma_k": gk, "gamma_q": gq, "seed": c.seed,
            "networks": nets.iter().map(|(i, a, cd)| json!({"index": i, "arch": a, "cand_k": cd.cand_k, "cand_q": cd.cand_q})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for (i, arch, _) in &nets {
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
    std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    if json {
        println!("{text}");
    }
    Ok(json)
}

fn cmd_search(mut a: SearchArgs) -> Result<()> {
    let (s, truth) = setting(&mut a.run)?;
    let dir = out_dir(&a.run);
    let mut cache = ScoreCache::open(&dir, &s)?;
    let rep = search::run(
        &s,
        truth,
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

fn cmd_correlate(mut a: CorrelateArgs) -> Result<()> {
    if a.run.common.task == "all" && a.run.common.space.starts_with("transnas-") {
        return correlate_all_tasks(a);
    }
    let (s, truth) = setting(&mut a.run)?;
    let dir = out_dir(&a.run);
    let mut cache = ScoreCache::open(&dir, &s)?;
    let idx = correlate::sample_indices(s.space.len(), (!a.all).then_some(a.sample), s.seed)?;
    let rep =
        correlate::run(&s, truth, &idx, a.run.workers.workers(), &mut cache, &dir, a.run.quiet || a.run.common.json)?;
    let path = dir.join("correlate.json");
    if save_report(&path, &rep, a.run.common.json)? {
        return Ok(());
    }
    println!(
        "{} on {}: {} networks ({} non-finite scores), scored in {:.1} s wall in this run ({:.1} s of one worker in all)",
        rep.space, rep.dataset, rep.n, rep.n_nonfinite, rep.seconds, rep.worker_seconds
    );
    println!("{:>15} {:>8} {:>9} {:>8}", "accuracy of", "kendall", "spearman", "pearson");
    for (d, c) in &rep.by_dataset {
        println!("{d:>15} {:>8.4} {:>9.4} {:>8.4}", c.kendall, c.spearman, c.pearson);
    }
    println!("csv {}\nplot {}", rep.csv, rep.plot);
    Ok(())
}

/// TransNAS `--task all`: one scoring pass (the score does not depend on the
/// task), then the correlations against each of the seven tasks.
fn correlate_all_tasks(mut a: CorrelateArgs) -> Result<()> {
    let (s, _) = setting(&mut a.run)?;
    let dir = out_dir(&a.run);
    let mut cache = ScoreCache::open(&dir, &s)?;
    let idx = correlate::sample_indices(s.space.len(), (!a.all).then_some(a.sample), s.seed)?;
    let mut all = serde_json::Map::new();
    for task in TASKS {
        let truth = catalog::open(&a.run.common.space, None, Convention::Rbflex, task)?.truth;
        let out = dir.join(task);
        std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
        let rep = correlate::run(
            &s,
            truth,
            &idx,
            a.run.workers.workers(),
            &mut cache,
            &out,
            a.run.quiet || a.run.common.json,
        )?;
        if !a.run.common.json {
            println!(
                "{:<16} n {:>5}  kendall {:>7.4}  spearman {:>7.4}  pearson {:>7.4}",
                task, rep.n, rep.kendall, rep.spearman, rep.pearson
            );
        }
        all.insert(task.to_string(), serde_json::to_value(&rep)?);
    }
    if !save_report(&dir.join("correlate.json"), &all, a.run.common.json)? {
        println!("results in {}", dir.display());
    }
    Ok(())
}

fn cmd_bench(mut a: BenchArgs) -> Result<()> {
    let space = open_space(&mut a.common)?.space;
    let c = &a.common;
    let (x, images) = input_batch(c, c.seed)?;
    let s = Setting {
        space,
        dataset: c.dataset,
        seed: c.seed,
        gammas: Gammas::default(),
        x: Setting::input_from(&x)?,
        images,
    };
    let rep = bench::run(&s, a.networks, &a.indices, a.workers.workers(), c.json)?;
    if c.json {
        println!("{}", serde_json::to_string_pretty(&rep)?);
    } else {
        println!(
            "{}: {} networks at {}x{}, batch {}, {} jobs: {:.1} nets/s ({:.1} ms per network per worker), peak RSS {:.0} MB",
            rep.space, rep.networks, rep.resolution[0], rep.resolution[1], rep.batch, rep.jobs, rep.nets_per_second, rep.ms_per_network, rep.peak_rss_mb
        );
    }
    Ok(())
}

fn cmd_nafbee(a: NafbeeArgs) -> Result<()> {
    if a.repeats == 0 {
        bail!("--repeats must be at least 1");
    }
    if a.checkpoint.is_some() && a.model != nafbee::Model::Bert {
        bail!("--checkpoint is for --model bert");
    }
    let gammas = match (a.gamma_k, a.gamma_q) {
        (Some(k), Some(q)) => Some(GammaArgs { gamma_k: k, gamma_q: q }.gammas()?),
        _ => None,
    };
    let common = Common {
        space: a.model.space().name().into(),
        dataset_arg: Some(a.model.dataset()),
        dataset: a.model.dataset(),
        benchmark: None,
        nds_accuracy: Convention::Rbflex,
        task: TASKS[4].into(),
        input: a.input.clone(),
        seed: a.seed,
        json: a.json,
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
    };
    let rep = nafbee::run(&opts)?;
    let dir = a.out.clone().unwrap_or_else(|| PathBuf::from(format!("rbflex-out/nafbee-{}-seed{}", rep.model, a.seed)));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let printed = save_report(&dir.join("nafbee.json"), &rep, a.json)?;
    let csv_path = dir.join("nafbee.csv");
    let mut w = csv::Writer::from_path(&csv_path).with_context(|| format!("cannot write {}", csv_path.display()))?;
    w.write_record(["activation", "mean_score", "std_score", "rank", "accuracy", "benchmark_rank", "seconds"])?;
    for v in &rep.variants {
        w.write_record([
            v.activation.clone(),
            v.mean.to_string(),
            v.std.to_string(),
            v.rank.to_string(),
            v.accuracy.to_string(),
            v.benchmark_rank.to_string(),
            format!("{:.3}", v.seconds),
        ])?;
    }
    w.flush()?;
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One intra-op thread: networks run in parallel instead, and parity with
    // the reference's single-threaded kernels is kept.
    tch::set_num_threads(1);
    // libtorch reports an impossible computation (say, an input too small for
    // the network's strides) by a panic in tch, and so does a closed stdout:
    // turn either into a one-line error. Results already written stay on disk.
    std::panic::set_hook(Box::new(|_| {}));
    let run = std::panic::AssertUnwindSafe(|| match cli.command {
        Command::Score(a) => cmd_score(a),
        Command::Hda(a) => cmd_hda(a),
        Command::Search(a) => cmd_search(a),
        Command::Correlate(a) => cmd_correlate(a),
        Command::Bench(a) => cmd_bench(a),
        Command::Nafbee(a) => cmd_nafbee(a),
        Command::Archive(a) => cmd_archive(a),
    });
    let result = std::panic::catch_unwind(run).unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("unknown failure");
        let first = msg.lines().find(|l| !l.trim().is_empty()).unwrap_or(msg);
        Err(anyhow::anyhow!(
            "the network could not run on this input: {first} (is the input the size the network expects?)"
        ))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
