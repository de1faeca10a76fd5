//! Hostile use of results folders and options (issue 12): absurd counts and
//! seeds, tampered or orphaned score caches, replaced images, two runs in one
//! folder, report files that cannot be written, benchmarks that cannot serve
//! a run, and options that do not apply. Each is one clear error (or a
//! printed note), nothing is scored twice, and nothing computed is lost.

mod common;

use common::{csv_table, fails, num, ok_json, rbflex};
use std::fs::OpenOptions;
use std::path::Path;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs a command clap must refuse; returns the first line of its error.
fn refused(args: &[&str]) -> String {
    let out = rbflex(args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(!err.contains("panicked"), "{err}");
    err.lines().next().unwrap_or_default().to_string()
}

/// A small correlate run into `out` (RBFleX, 8 networks); its JSON report.
fn correlate(out: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["correlate", "--sample", "8", "--quiet", "--json", "--out", s(out)];
    args.extend_from_slice(extra);
    ok_json(&args)
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p).unwrap().lines().map(String::from).collect()
}

#[test]
fn absurd_counts_and_seeds_are_refused() {
    let o = tmp();
    let out = s(o.path());
    for (args, want) in [
        (vec!["search", "--trials", "100000000000", "--out", out], "'--trials <TRIALS>': must be between 1 and 10000"),
        (vec!["bench", "--networks", "0"], "'--networks <NETWORKS>': must be between 1 and 1000000, got 0"),
        (vec!["bench", "--jobs", "0"], "'--jobs <JOBS>': must be between 1 and 1024, got 0"),
        (vec!["correlate", "--sample", "1000000000000", "--out", out], "'--sample <SAMPLE>': must be between 2"),
        (vec!["nafbee", "--model", "vgg19", "--repeats", "0"], "'--repeats <REPEATS>': must be between 1 and 1000"),
        (vec!["score", "--index", "1", "--batch", "1"], "'--batch <BATCH>': must be between 2 and 10000, got 1"),
        (vec!["hda", "--networks=1e3"], "'--networks <NETWORKS>': '1e3' is not a whole number"),
    ] {
        let e = refused(&args);
        assert!(e.starts_with("error: invalid value") && e.contains(want), "{args:?}: {e}");
    }
    let e = fails(&["search", "--trials", "5000", "--networks", "15625", "--out", out]);
    assert!(e.contains("--trials x --networks is 5000 x 15625; at most 1000000 draws"), "{e}");
    // seed * 1000000 + index must fit in an i64: 1 + 2^58 would rebuild seed 1's networks
    let e = fails(&["correlate", "--seed", "288230376151711745", "--sample", "8", "--out", out]);
    assert!(e.contains("--seed 288230376151711745 is too large") && e.contains("at most 9223372036853"), "{e}");
    let e = fails(&["score", "--index", "1", "--seed", "18446744073709551615"]);
    assert!(e.contains("takes at most 9223372036854775807"), "{e}");
    assert!(!o.path().join("run.json").exists(), "a refused run leaves nothing behind");
    // the largest seed is accepted and builds each network with seed * 1000000 + index
    let big = tmp();
    correlate(big.path(), &["--seed", "9223372036853", "--proxy", "params"]);
    let t = csv_table(&big.path().join("scores.csv"));
    assert_eq!(t.1.len(), 8);
    for row in &t.1 {
        let (index, init): (i64, i64) = (row[0].parse().unwrap(), row[2].parse().unwrap());
        assert_eq!(init, 9_223_372_036_853_000_000 + index, "{row:?}");
    }
}

#[test]
fn tampered_score_caches_are_refused_by_line() {
    let o = tmp();
    let first = correlate(o.path(), &[]);
    let scores = o.path().join("scores.csv");
    let good = lines(&scores);
    let row: Vec<&str> = good[2].splitn(4, ',').collect();
    let cases: Vec<(String, String)> = vec![
        (
            format!("{},|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,{},{}", row[0], row[2], row[3]),
            "has arch '|none~0|+|none~0|none~1|+|none~0|none~1|none~2|' but nb201's is".into(),
        ),
        (
            format!("{},{},77,{}", row[0], row[1], row[3]),
            format!("index {} has init_seed 77 but this run builds it with {}", row[0], row[2]),
        ),
        (
            format!("{},{},{},NaN{}", row[0], row[1], row[2], &row[3][row[3].find(',').unwrap()..]),
            "score is NaN: scores are numbers or -inf".into(),
        ),
        (
            format!("{},{},{},inf{}", row[0], row[1], row[2], &row[3][row[3].find(',').unwrap()..]),
            "score is inf".into(),
        ),
        (format!("20000,{},{},{}", row[1], row[2], row[3]), "index 20000 is out of nb201 (0..15625)".into()),
    ];
    for (bad, want) in cases {
        let mut text = good.clone();
        text[2] = bad;
        std::fs::write(&scores, text.join("\n") + "\n").unwrap();
        let e = fails(&["correlate", "--sample", "8", "--quiet", "--out", s(o.path())]);
        assert!(e.contains("scores.csv line 3: ") && e.contains(&want), "{want}: {e}");
    }
    // the same index twice with another score: refused, not "last wins"
    let mut text = good.clone();
    let other: Vec<&str> = good[2].splitn(5, ',').collect();
    text.push(format!("{},{},{},-1.5,{}", other[0], other[1], other[2], other[4]));
    std::fs::write(&scores, text.join("\n") + "\n").unwrap();
    let e = fails(&["correlate", "--sample", "8", "--quiet", "--out", s(o.path())]);
    assert!(e.contains(&format!("line {}: index {} has two values of score", text.len(), other[0])), "{e}");
    // restored, the folder is reused as it was: nothing rescored, same report
    std::fs::write(&scores, good.join("\n") + "\n").unwrap();
    let again = correlate(o.path(), &[]);
    assert_eq!(again["kendall"], first["kendall"]);
    assert_eq!(lines(&scores), good);
}

#[test]
fn an_orphan_scores_file_is_never_adopted() {
    let o = tmp();
    correlate(o.path(), &[]);
    std::fs::remove_file(o.path().join("run.json")).unwrap();
    let e = fails(&["correlate", "--sample", "8", "--quiet", "--out", s(o.path()), "--gamma-k", "1e-10"]);
    assert!(
        e.contains("holds scores.csv but no run.json: the settings its scores were computed with are unknown"),
        "{e}"
    );
    assert!(!o.path().join("run.json").exists(), "no run.json is left behind after a refusal");
    // a refused rerun with other settings does not touch run.json either
    let p = tmp();
    correlate(p.path(), &[]);
    let before = std::fs::read_to_string(p.path().join("run.json")).unwrap();
    let e = fails(&["correlate", "--sample", "8", "--out", s(p.path()), "--proxy", "rbflex,params", "--gamma-k", "1"]);
    assert!(e.contains("proxy rbflex was"), "{e}");
    assert_eq!(std::fs::read_to_string(p.path().join("run.json")).unwrap(), before);
}

fn write_images(dir: &Path, shade: u8) {
    for i in 0..4u8 {
        image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([x as u8 * 8, y as u8 * i, shade]))
            .save(dir.join(format!("{i}.png")))
            .unwrap();
    }
}

#[test]
fn image_folders_are_compared_by_content_not_path() {
    let root = tmp();
    let imgs = root.path().join("imgs");
    std::fs::create_dir(&imgs).unwrap();
    write_images(&imgs, 100);
    let o = root.path().join("out");
    let first = correlate(&o, &["--images", s(&imgs)]);
    let rows = lines(&o.join("scores.csv"));
    let run: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(o.join("run.json")).unwrap()).unwrap();
    assert!(run["inputs"].as_str().unwrap().starts_with("sha256:"), "{run}");
    assert!(run["images"].as_str().unwrap().starts_with(s(&imgs.canonicalize().unwrap())), "{run}");
    // the same folder by another spelling of its path: the same inputs, nothing rescored
    let dotted = format!("{}/./imgs/", s(root.path()));
    let again = correlate(&o, &["--images", &dotted]);
    assert_eq!(again["kendall"], first["kendall"]);
    assert_eq!(lines(&o.join("scores.csv")), rows);
    // other images under the same path: refused, naming the inputs
    write_images(&imgs, 7);
    let e = fails(&["correlate", "--sample", "8", "--quiet", "--out", s(&o), "--images", s(&imgs)]);
    assert!(e.contains("holds scores computed with other settings: inputs was \"sha256:"), "{e}");
    assert_eq!(lines(&o.join("scores.csv")), rows);
}

#[test]
fn a_folder_in_use_is_refused_and_a_dead_runs_lock_is_taken_over() {
    let o = tmp();
    correlate(o.path(), &[]);
    let lock = o.path().join(".lock");
    let held = OpenOptions::new().read(true).write(true).open(&lock).unwrap();
    held.try_lock().unwrap();
    std::fs::write(&lock, "4242\n").unwrap();
    let e = fails(&["correlate", "--sample", "8", "--quiet", "--out", s(o.path())]);
    assert!(
        e.contains("is in use by another rbflex run (pid 4242): wait for it to finish or use another --out"),
        "{e}"
    );
    drop(held);
    // the lock file stays, naming a process that is gone: the next run takes it
    let v = correlate(o.path(), &[]);
    assert_eq!(v["n"], 8);
    let pid = std::fs::read_to_string(&lock).unwrap();
    assert_ne!(pid.trim(), "4242");
}

#[test]
fn report_files_are_replaced_whole_or_not_at_all() {
    let o = tmp();
    correlate(o.path(), &[]);
    let csv = std::fs::read(o.path().join("correlate.csv")).unwrap();
    // a report that cannot be written: one line naming it, the others intact
    std::fs::remove_file(o.path().join("correlate.png")).unwrap();
    std::fs::create_dir(o.path().join("correlate.png")).unwrap();
    std::fs::write(o.path().join("correlate.png").join("x"), b"x").unwrap();
    let e = fails(&["correlate", "--sample", "8", "--quiet", "--out", s(o.path())]);
    assert!(e.contains(&format!("cannot write {}", s(&o.path().join("correlate.png")))), "{e}");
    assert_eq!(std::fs::read(o.path().join("correlate.csv")).unwrap(), csv);
    let names: Vec<String> =
        std::fs::read_dir(o.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    assert!(!names.iter().any(|n| n.contains(".tmp")), "temporary files left: {names:?}");
    // --out naming a file
    let f = o.path().join("correlate.csv");
    let e = fails(&["correlate", "--sample", "8", "--out", s(&f)]);
    assert!(e.contains(&format!("--out {} is a file, not a folder", s(&f))), "{e}");
}

#[test]
fn a_benchmark_that_cannot_serve_the_run_is_one_error() {
    let archive = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nats/NATS-tss-v1_0-3ffb9-simple");
    let o = tmp();
    let idx = o.path().join("idx.txt");
    std::fs::write(&idx, "0\n1\n5\n9\n").unwrap();
    let out = o.path().join("out");
    let e = fails(&["correlate", "--benchmark", s(&archive), "--indices", s(&idx), "--out", s(&out), "--quiet"]);
    assert!(e.contains("cannot serve 2 of the 4 networks asked (the first, index 5: "), "{e}");
    assert!(!out.exists(), "a run that cannot be judged touches nothing");
    // the same for a search: its samples reach networks the archive lacks
    let e = fails(&["search", "--benchmark", s(&archive), "--trials", "1", "--networks", "5", "--out", s(&out)]);
    assert!(e.contains("cannot serve"), "{e}");
    assert!(!out.exists(), "a search that cannot be judged touches nothing");
}

#[test]
fn options_that_do_not_apply_are_errors() {
    let x = tmp();
    let input = x.path().join("x.safetensors");
    let t = tch::Tensor::randn([3, 3, 32, 32], (tch::Kind::Float, tch::Device::Cpu));
    tch::Tensor::write_safetensors(&[("x", t)], &input).unwrap();
    let i = s(&input);
    for (args, want) in [
        (vec!["score", "--index", "1", "--input", i, "--batch", "5"], "--batch does not apply with --input"),
        (vec!["score", "--index", "1", "--input", i, "--image-seed", "4"], "--image-seed does not apply with --input"),
        (vec!["hda", "--input", i, "--images", "."], "--images does not apply with --input"),
        (
            vec!["score", "--index", "1", "--sentences", "s.txt"],
            "--sentences is for text networks (BERT); cifar10 takes images",
        ),
        (
            vec!["score", "--space", "nafbee-bert", "--index", "0", "--images", "."],
            "--images is for image networks; sst2 takes sentences",
        ),
        (
            vec!["score", "--index", "1", "--task", "jigsaw"],
            "--task jigsaw is for transnas-micro, transnas-macro spaces; nb201 has one ground truth per dataset",
        ),
        (
            vec!["score", "--index", "1", "--proxy-batch", "8"],
            "--proxy-batch is for proxies with a batch of their own; rbflex takes --batch",
        ),
        (vec!["score", "--index", "1", "--nds-accuracy", "naswot"], "--nds-accuracy is for nds-* spaces, not nb201"),
        (vec!["score", "--space", "transnas-micro", "--index", "1", "--task", "all"], "--task all is for correlate"),
        (
            vec!["score", "--space", "transnas-micro", "--arch", "64-4111-basic"],
            "'64-4111-basic' is a transnas-macro code",
        ),
        (
            vec!["score", "--space", "transnas-macro", "--arch", "64-41414-0_00_000"],
            "'64-41414-0_00_000' is a transnas-micro code",
        ),
    ] {
        let e = fails(&args);
        assert!(e.contains(want), "{args:?}: {e}");
    }
    // a valid network outside the benchmark is scored, and said to be outside
    let out = rbflex(&["score", "--space", "transnas-micro", "--arch", "64-41412-1_02_333", "--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("is not one of transnas-micro's benchmarked networks: scored, but it has no index"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["index"].is_null() && num(&v["score"]).is_finite(), "{v}");
}
