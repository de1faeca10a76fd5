//! Guided search: every space's mutation, and `search --strategy`
//! end to end (reproducible, resumable, the random strategy unchanged, bad
//! input named).

mod common;

use common::{fails, ok_json, rbflex};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rbflex::spaces::{self, Space};
use std::path::Path;

/// `space.mutate` of index `i` with `seed`: a valid, different network
/// with an index.
fn mutates(space: &dyn Space, i: usize, seed: u64) -> Result<(), TestCaseError> {
    let i = i % space.len();
    let arch = space.arch(i).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let child = space.mutate(&arch, &mut rng).expect("the space has a mutation").unwrap();
    prop_assert_ne!(&child, &arch);
    let j = space.index_of(&child).unwrap();
    prop_assert_ne!(j, i);
    prop_assert_eq!(space.arch(j).unwrap(), child);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn every_builtin_mutation_is_a_valid_different_network(i in 0usize..1_000_000, seed in any::<u64>()) {
        let builtin: [&dyn Space; 6] = [
            &spaces::nb201::Nb201,
            &spaces::nats_sss::NatsSss,
            &spaces::transnas::TransNas { micro: true },
            &spaces::transnas::TransNas { micro: false },
            &spaces::nafbee::NAFBEE_VGG19,
            &spaces::nafbee::NAFBEE_BERT,
        ];
        for space in builtin {
            mutates(space, i, seed)?;
        }
    }
}

/// A space's genes, for the spaces with a crossover.
fn genes(space: &dyn Space, arch: &str) -> Vec<String> {
    match space.name() {
        "nb201" => arch.split('|').filter(|g| !g.is_empty() && *g != "+").map(str::to_string).collect(),
        "nats-sss" => arch.split(':').map(str::to_string).collect(),
        _ => arch.rsplit_once('-').unwrap().1.chars().map(String::from).collect(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn every_crossover_is_a_network_of_its_space_with_each_gene_from_a_parent(
        i in 0usize..1_000_000, j in 0usize..1_000_000, seed in any::<u64>()
    ) {
        let crossing: [&dyn Space; 3] =
            [&spaces::nb201::Nb201, &spaces::nats_sss::NatsSss, &spaces::transnas::TransNas { micro: true }];
        for space in crossing {
            let (a, b) = (space.arch(i % space.len()).unwrap(), space.arch(j % space.len()).unwrap());
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let child = space.crossover(&a, &b, &mut rng).expect("the space has a crossover").unwrap();
            let k = space.index_of(&child).unwrap();
            prop_assert_eq!(space.arch(k).unwrap(), child.clone());
            let (c, ga, gb) = (genes(space, &child), genes(space, &a), genes(space, &b));
            prop_assert_eq!(c.len(), ga.len());
            for g in 0..c.len() {
                prop_assert!(c[g] == ga[g] || c[g] == gb[g], "{} gene {}: {} from {} x {}", space.name(), g, child, a, b);
            }
        }
        let single: [&dyn Space; 3] =
            [&spaces::transnas::TransNas { micro: false }, &spaces::nafbee::NAFBEE_VGG19, &spaces::nafbee::NAFBEE_BERT];
        for space in single {
            let (a, b) = (space.arch(0).unwrap(), space.arch(1).unwrap());
            prop_assert!(space.crossover(&a, &b, &mut ChaCha8Rng::seed_from_u64(seed)).is_none(), "{}", space.name());
        }
    }
}

/// NB201 changes exactly one edge; NATS-SSS one layer by one step.
#[test]
fn nb201_and_nats_sss_mutations_are_one_step() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for i in (0..15625).step_by(97) {
        let a = spaces::nb201::Nb201.arch(i).unwrap();
        let b = spaces::nb201::Nb201.mutate(&a, &mut rng).unwrap().unwrap();
        assert_eq!(a.split('|').zip(b.split('|')).filter(|(x, y)| x != y).count(), 1, "{a} -> {b}");
        let s = spaces::nats_sss::NatsSss;
        let a = s.arch(i * 2).unwrap();
        let b = s.mutate(&a, &mut rng).unwrap().unwrap();
        let steps: Vec<i64> = spaces::nats_sss::parse(&a)
            .unwrap()
            .iter()
            .zip(spaces::nats_sss::parse(&b).unwrap())
            .map(|(x, y)| (x - y).abs())
            .filter(|d| *d != 0)
            .collect();
        assert_eq!(steps, vec![8], "{a} -> {b}");
    }
    // every macro layout has neighbours in the table
    let m = spaces::transnas::TransNas { micro: false };
    for i in 0..m.len() {
        assert!(!spaces::mutation::transnas::macro_neighbours(&m.arch(i).unwrap()).unwrap().is_empty(), "{i}");
    }
}

#[test]
fn nds_mutates_to_the_nearest_other_record() {
    let opened = rbflex::catalog::open("nds-resnet-lr-wd", &Default::default(), false).unwrap();
    let space = &*opened.space;
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for i in (0..space.len()).step_by(space.len() / 20 + 1) {
        mutates(space, i, i as u64).unwrap();
        let a = space.arch(i).unwrap();
        let b = space.mutate(&a, &mut rng).unwrap().unwrap();
        let g = |s: &str| spaces::mutation::nds::genes(&serde_json::from_str(s).unwrap());
        let d = spaces::mutation::nds::distance(&g(&a), &g(&b));
        // no other record is nearer
        for k in 0..space.len() {
            let dk = spaces::mutation::nds::distance(&g(&a), &g(&space.arch(k).unwrap()));
            assert!(dk == 0 || dk >= d, "record {k} is {dk} genes from {i}, the mutation {d}");
        }
    }
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn rows(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("scores.csv")).unwrap().lines().count() - 1
}

const EVO: [&str; 10] =
    ["search", "--strategy", "evolution", "--proxy", "synflow", "--trials", "2", "--networks", "40", "--json"];

fn evo(out: &Path, jobs: &str) -> serde_json::Value {
    let mut a: Vec<&str> = EVO.to_vec();
    a.extend(["--jobs", jobs, "--out", out.to_str().unwrap(), "--population", "10", "--tournament", "3"]);
    ok_json(&a)
}

#[test]
fn evolution_reproduces_its_history_and_resumes_scoring_nothing_twice() {
    let d = tmp();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    let v = evo(&a, "2");
    assert_eq!(v["strategy"], "evolution");
    let trials = v["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 2);
    for t in trials {
        let ev = t["evaluations"].as_array().unwrap();
        assert_eq!(ev.len(), 40);
        // the pick is the best by fitness of the trial's history
        let best = ev.iter().map(|e| e["fitness"].as_f64().unwrap()).fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(t["score"].as_f64().unwrap(), best);
        assert!(ev.iter().any(|e| e["index"] == t["index"]));
        assert!(ev[..10].iter().all(|e| e["parent"].is_null()) && ev[10..].iter().all(|e| !e["parent"].is_null()));
    }
    let scored = v["networks_scored"].as_u64().unwrap() as usize;
    assert_eq!((rows(&a), v["scored_now"].as_u64().unwrap() as usize), (scored, scored));
    assert!(a.join("search.png").exists());
    // the same seed reproduces the whole history, whatever --jobs
    let w = evo(&b, "1");
    assert_eq!(w["trials"], v["trials"]);
    // a rerun replays it from the folder: nothing scored again
    let again = evo(&a, "2");
    assert_eq!((again["trials"].clone(), again["scored_now"].as_u64()), (v["trials"].clone(), Some(0)));
    assert_eq!(rows(&a), scored);
    // an interrupted run (half of its rows lost) resumes: the same picks, the rest scored once
    let text = std::fs::read_to_string(a.join("scores.csv")).unwrap();
    let kept: Vec<&str> = text.lines().take(1 + scored / 2).collect();
    std::fs::write(a.join("scores.csv"), kept.join("\n") + "\n").unwrap();
    let resumed = evo(&a, "2");
    assert_eq!(resumed["trials"], v["trials"]);
    assert_eq!(resumed["scored_now"].as_u64().unwrap() as usize, scored - scored / 2);
    assert_eq!(rows(&a), scored);
}

#[test]
fn crossover_children_name_both_parents_and_reproduce() {
    let d = tmp();
    let run = |o: &Path| {
        let mut a: Vec<&str> = EVO.to_vec();
        a.extend(["--out", o.to_str().unwrap(), "--crossover", "0.5"]);
        ok_json(&a)
    };
    let v = run(&d.path().join("a"));
    assert_eq!(v["evolution"]["crossover"], 0.5);
    for t in v["trials"].as_array().unwrap() {
        let ev = t["evaluations"].as_array().unwrap();
        let crossed: Vec<&serde_json::Value> = ev.iter().filter(|e| !e["mate"].is_null()).collect();
        assert_eq!(crossed.len() as u64, t["crossovers"].as_u64().unwrap());
        assert!(!crossed.is_empty(), "no crossover in {} children at rate 0.5", ev.len() - 10);
        for e in crossed {
            let earlier =
                |k: &serde_json::Value| ev.iter().take_while(|x| x["order"] != e["order"]).any(|x| x["index"] == *k);
            assert!(earlier(&e["parent"]) && earlier(&e["mate"]) && e["parent"] != e["mate"], "{e}");
        }
    }
    assert_eq!(run(&d.path().join("b"))["trials"], v["trials"]);
}

#[test]
fn a_killed_evolution_resumes_with_the_same_picks() {
    let d = tmp();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    let args = |o: &Path| -> Vec<String> {
        ["search", "--strategy", "evolution", "--proxy", "rbflex", "--trials", "2", "--networks", "80", "--jobs", "2"]
            .iter()
            .map(|s| s.to_string())
            .chain(["--out".to_string(), o.to_str().unwrap().to_string(), "--json".into()])
            .collect()
    };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rbflex"))
        .args(args(&a))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let csv = a.join("scores.csv");
    let t0 = std::time::Instant::now();
    while t0.elapsed().as_secs() < 60 {
        let n = std::fs::read_to_string(&csv).map(|t| t.lines().count()).unwrap_or(0);
        if n > 40 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = std::fs::read_to_string(&csv).unwrap().lines().filter(|l| !l.trim().is_empty()).count() - 1;
    let argv: Vec<String> = args(&a);
    let resumed = ok_json(&argv.iter().map(String::as_str).collect::<Vec<_>>());
    let argv: Vec<String> = args(&b);
    let whole = ok_json(&argv.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(resumed["trials"], whole["trials"]);
    let scored = whole["networks_scored"].as_u64().unwrap() as usize;
    assert_eq!(rows(&a), scored, "a network was scored twice");
    // a torn last row is recomputed, so at most one of the rows before is scored again
    let now = resumed["scored_now"].as_u64().unwrap() as usize;
    assert!(now + before <= scored + 1 && now + before >= scored, "{before} before, {now} now, {scored} in all");
}

/// The random strategy's `search.json`, with or without `--strategy random`,
/// is the committed golden one (timings aside), field for field.
#[test]
fn the_random_strategy_is_unchanged() {
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("tests/fixtures/search_random_golden.json").unwrap()).unwrap();
    let strip = |mut v: serde_json::Value| {
        for k in ["search_seconds", "trial_worker_seconds"] {
            assert!(v[k].as_f64().is_some(), "{k}");
            v[k] = serde_json::Value::Null;
        }
        v
    };
    let d = tmp();
    let base = ["search", "--proxy", "synflow,params", "--trials", "3", "--networks", "8", "--seed", "3", "--json"];
    for (k, extra) in [vec![], vec!["--strategy", "random"]].into_iter().enumerate() {
        let out = d.path().join(k.to_string());
        let mut a: Vec<&str> = base.to_vec();
        a.extend(extra);
        a.extend(["--out", out.to_str().unwrap()]);
        let v = ok_json(&a);
        assert_eq!(strip(v), strip(golden.clone()));
        assert!(!out.join("search.png").exists(), "the random strategy writes what it wrote before");
    }
}

#[test]
fn random_and_evolution_side_by_side_and_the_ceiling() {
    let d = tmp();
    let o = d.path().join("r");
    let o = o.to_str().unwrap();
    // NAFBee's 11 networks: the budget is capped at the space, so the whole space is scored and the ceiling known
    let args = [
        "search",
        "--space",
        "nafbee-vgg19",
        "--proxy",
        "params",
        "--strategy",
        "random,evolution",
        "--trials",
        "2",
        "--networks",
        "50",
        "--population",
        "4",
        "--tournament",
        "2",
        "--out",
        o,
    ];
    let out = rbflex(&args);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("--networks 50 is more than the 11 networks of nafbee-vgg19: capped at 11"), "{stderr}");
    assert!(stdout.contains("random") && stdout.contains("evolution") && stdout.contains("within 0.1"), "{stdout}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(o).join("search.json")).unwrap()).unwrap();
    assert_eq!(v["strategies"], serde_json::json!(["random", "evolution"]));
    assert_eq!(v["random"]["networks"], 11);
    assert_eq!(v["evolution"]["networks"], 11);
    let ceiling = &v["evolution"]["ceiling"];
    assert!(ceiling["index"].is_u64(), "{v}");
    // with the whole space scored, every trial of either strategy picks the ceiling
    assert_eq!(v["evolution"]["vs_ceiling"]["found"], 1.0);
    assert_eq!(v["random_vs_ceiling"]["found"], 1.0);
    for t in v["evolution"]["trials"].as_array().unwrap() {
        assert_eq!(t["ceiling_gap"]["cifar10"], 0.0);
    }
    let png = image::open(Path::new(o).join("search.png")).unwrap();
    assert_eq!((png.width(), png.height()), (900, 600));
}

#[test]
fn bad_strategy_options_are_named() {
    let d = tmp();
    let o = d.path().to_str().unwrap();
    let e = fails(&["search", "--strategy", "annealing", "--out", o]);
    assert!(e.contains("unknown strategy 'annealing' (valid: random, evolution"), "{e}");
    let e = fails(&["search", "--population", "5", "--out", o]);
    assert!(e.contains("--population is for --strategy evolution"), "{e}");
    let e = fails(&["search", "--crossover", "0.5", "--out", o]);
    assert!(e.contains("--crossover is for --strategy evolution"), "{e}");
    let e = fails(&["search", "--strategy", "evolution", "--crossover", "2", "--out", o]);
    assert!(e.contains("--crossover is a rate between 0 and 1, got 2"), "{e}");
    let e = fails(&["search", "--strategy", "evolution", "--space", "nafbee-vgg19", "--crossover", "0.5", "--out", o]);
    assert!(e.contains("space nafbee-vgg19 has no crossover"), "{e}");
    let e = fails(&["search", "--strategy", "evolution", "--shard", "0/2", "--out", o]);
    assert!(e.contains("evolution chooses each step's networks from the scores so far"), "{e}");
    let e = fails(&["search", "--strategy", "evolution", "--population", "3", "--tournament", "4", "--out", o]);
    assert!(e.contains("--tournament must be between 1 and --population (3)"), "{e}");
    // random alone keeps its error for a sample larger than the space
    let e = fails(&["search", "--networks", "20000", "--out", o]);
    assert!(e.contains("--networks must be between 1 and the space's size 15625"), "{e}");
    assert!(std::fs::read_dir(o).unwrap().next().is_none(), "a refused search wrote into its folder");
}
