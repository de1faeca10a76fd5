//! The `rbflex` binary end to end: golden parity through the CLI, the
//! commands' JSON, resumable results, and a clear error for every bad input.

mod common;

use common::{csv_column, csv_table, fails, mean_std, num, ok_json, pearson, rbflex, spearman, tau_b};
use std::path::{Path, PathBuf};
use tch::Tensor;

const TOP: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";

fn fixture(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel).display().to_string()
}

fn meta(case: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture(&format!("nb201/{case}/meta.json"))).unwrap();
    serde_json::from_str(&text.replace("-Infinity", "null")).unwrap()
}

#[test]
fn score_cli_matches_golden_with_params_and_with_seed() {
    for case in ["case00", "case03"] {
        let m = meta(case);
        let arch = m["arch"].as_str().unwrap();
        let input = fixture(&format!("nb201/{case}/input.safetensors"));
        let params = fixture(&format!("nb201/{case}/params.safetensors"));
        for extra in [vec!["--params", params.as_str()], vec!["--seed", "1"]] {
            let mut args = vec!["score", "--arch", arch, "--input", &input, "--json"];
            args.extend(extra);
            let v = ok_json(&args);
            for (k, mk) in [("score", "score"), ("logdet_k", "logdet_K"), ("logdet_q", "logdet_Q")] {
                let (got, want) = (num(&v[k]), m[mk].as_f64().unwrap());
                assert!(((got - want) / want).abs() < 1e-6, "{case} {k}: {got} vs {want}");
            }
            assert_eq!(v["la"], m["LA"]);
            assert_eq!(v["lq"], m["LQ"]);
        }
    }
}

#[test]
fn singular_kernel_reports_neg_inf() {
    let arch = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|";
    let v = ok_json(&["score", "--arch", arch, "--input", &fixture("nb201/case01/input.safetensors"), "--json"]);
    assert_eq!(v["score"], "-inf");
    let text = rbflex(&["score", "--arch", arch]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("singular"));
}

#[test]
fn bad_arch_strings_are_named() {
    let e = fails(&["score", "--arch", "|nor_conv_3x3~0|+|none~0|"]);
    assert!(e.contains("malformed NB201 arch") && e.contains("expected 3 nodes"), "{e}");
    let e = fails(&["score", "--arch", "|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|"]);
    assert!(e.contains("unknown op 'conv_9x9'"), "{e}");
    let e = fails(&["score", "--index", "15625"]);
    assert!(e.contains("index 15625 out of range"), "{e}");
    let e = fails(&["score", "--space", "nb999", "--index", "1"]);
    assert!(e.contains("unknown space 'nb999'"), "{e}");
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn bad_files_are_named() {
    let d = tmp();
    let missing = d.path().join("nope.safetensors").display().to_string();
    let e = fails(&["score", "--arch", TOP, "--params", &missing]);
    assert!(e.contains("cannot read params file") && e.contains("nope.safetensors"), "{e}");

    let params = fixture("nb201/case00/params.safetensors");
    let bytes = std::fs::read(&params).unwrap();
    let trunc = d.path().join("trunc.safetensors");
    std::fs::write(&trunc, &bytes[..bytes.len() / 2]).unwrap();
    let e = fails(&["score", "--arch", TOP, "--params", trunc.to_str().unwrap()]);
    assert!(e.contains("trunc.safetensors"), "{e}");

    let e = fails(&["score", "--arch", TOP, "--input", trunc.to_str().unwrap()]);
    assert!(e.contains("cannot read input file") && e.contains("trunc.safetensors"), "{e}");

    // a state dict without one tensor, and one with a mis-shaped tensor
    let mut tensors = Tensor::read_safetensors(&params).unwrap();
    tensors.retain(|(n, _)| n != "cells.0.layers.1.op.1.weight");
    let less = d.path().join("less.safetensors");
    Tensor::write_safetensors(&tensors, &less).unwrap();
    let e = fails(&["score", "--arch", TOP, "--params", less.to_str().unwrap()]);
    assert!(e.contains("missing tensor 'cells.0.layers.1.op.1.weight'"), "{e}");

    let mut tensors = Tensor::read_safetensors(&params).unwrap();
    for (n, t) in tensors.iter_mut() {
        if n == "classifier.weight" {
            *t = Tensor::zeros([10, 32], (tch::Kind::Float, tch::Device::Cpu));
        }
    }
    let bad = d.path().join("bad.safetensors");
    Tensor::write_safetensors(&tensors, &bad).unwrap();
    let e = fails(&["score", "--arch", TOP, "--params", bad.to_str().unwrap()]);
    assert!(e.contains("'classifier.weight' has shape [10, 32]") && e.contains("[10, 64]"), "{e}");

    // params of another architecture
    let e = fails(&["score", "--arch", TOP, "--params", &fixture("nb201/case02/params.safetensors")]);
    assert!(e.contains("missing tensor"), "{e}");
}

#[test]
fn bad_image_folders_are_named() {
    let d = tmp();
    let e = fails(&["score", "--arch", TOP, "--images", d.path().to_str().unwrap()]);
    assert!(e.contains("holds no images"), "{e}");
    let e = fails(&["score", "--arch", TOP, "--images", "/no/such/folder"]);
    assert!(e.contains("/no/such/folder"), "{e}");

    let big = image::RgbImage::new(64, 48);
    big.save(d.path().join("big.png")).unwrap();
    let e = fails(&["score", "--arch", TOP, "--images", d.path().to_str().unwrap()]);
    assert!(e.contains("big.png is 64x48, expected 32x32"), "{e}");
    std::fs::remove_file(d.path().join("big.png")).unwrap();

    std::fs::write(d.path().join("broken.png"), b"not a png").unwrap();
    let e = fails(&["score", "--arch", TOP, "--images", d.path().to_str().unwrap()]);
    assert!(e.contains("cannot decode image") && e.contains("broken.png"), "{e}");
    std::fs::remove_file(d.path().join("broken.png")).unwrap();

    std::fs::write(d.path().join("data_batch_1.bin"), vec![7u8; 3073 * 2 + 100]).unwrap();
    let e = fails(&["score", "--arch", TOP, "--images", d.path().to_str().unwrap()]);
    assert!(e.contains("data_batch_1.bin is not a CIFAR binary batch"), "{e}");
}

#[test]
fn user_images_and_cifar_batches_are_read() {
    let d = tmp();
    // CIFAR-10 binary batch of 4 records
    let mut bin = Vec::new();
    for r in 0..4u8 {
        bin.push(r);
        bin.extend((0..3072).map(|i| ((i * (r as usize + 1)) % 256) as u8));
    }
    std::fs::write(d.path().join("data_batch_1.bin"), &bin).unwrap();
    let v = ok_json(&["score", "--arch", TOP, "--images", d.path().to_str().unwrap(), "--json"]);
    assert!(num(&v["score"]).is_finite());
    // the same four images as PNG files (a record is 1024 R, then G, then B
    // bytes, row-major): the same batch, the same score bit for bit
    let png = tmp();
    for (r, rec) in bin.chunks_exact(3073).enumerate() {
        let px = &rec[1..];
        image::RgbImage::from_fn(32, 32, |x, y| {
            let i = (y * 32 + x) as usize;
            image::Rgb([px[i], px[1024 + i], px[2048 + i]])
        })
        .save(png.path().join(format!("{r}.png")))
        .unwrap();
    }
    let w = ok_json(&["score", "--arch", TOP, "--images", png.path().to_str().unwrap(), "--json"]);
    assert_eq!(w["score"], v["score"]);
    let e = tmp();
    for i in 0..3u8 {
        image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([x as u8 * 8, y as u8 * i, 100]))
            .save(e.path().join(format!("{i}.png")))
            .unwrap();
    }
    let v = ok_json(&["score", "--arch", TOP, "--images", e.path().to_str().unwrap(), "--json"]);
    assert!(num(&v["score"]).is_finite());
    let err = fails(&["score", "--arch", TOP, "--images", e.path().to_str().unwrap(), "--batch", "5"]);
    assert!(err.contains("holds only 3"), "{err}");
}

#[test]
fn bad_options_are_named() {
    let e = fails(&["score", "--arch", TOP, "--gamma-k", "0"]);
    assert!(e.contains("--gamma-k must be a positive number"), "{e}");
    let out = rbflex(&["score", "--arch", TOP, "--batch", "1"]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && e.contains("'--batch <BATCH>': must be between 2 and 10000, got 1"), "{e}");
    let e = fails(&["search", "--networks", "20000", "--out", tmp().path().to_str().unwrap()]);
    assert!(e.contains("--networks must be between 1 and the space's size 15625"), "{e}");
}

#[test]
fn hda_prints_gammas() {
    let v = ok_json(&["hda", "--networks", "3", "--json"]);
    let nets = v["networks"].as_array().unwrap();
    assert_eq!(nets.len(), 3);
    // each gamma is the smallest positive candidate of all the networks
    let smallest = |key: &str| {
        nets.iter()
            .flat_map(|n| n[key].as_array().unwrap())
            .filter_map(serde_json::Value::as_f64)
            .filter(|c| *c > 0.0)
            .fold(f64::INFINITY, f64::min)
    };
    assert_eq!(v["gamma_k"].as_f64().unwrap(), smallest("cand_k"));
    assert_eq!(v["gamma_q"].as_f64().unwrap(), smallest("cand_q"));
    // and each network is the space's one at its index
    let n = &nets[0];
    let s = ok_json(&["score", "--index", &n["index"].to_string(), "--proxy", "params", "--json"]);
    assert_eq!(s["arch"], n["arch"]);
}

fn scores_csv(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("scores.csv")).unwrap().lines().map(String::from).collect()
}

#[test]
fn search_resumes_and_scores_do_not_depend_on_order_or_jobs() {
    let d = tmp();
    let out: PathBuf = d.path().join("run");
    let o = out.to_str().unwrap();
    let args = ["search", "--trials", "3", "--networks", "12", "--jobs", "2", "--seed", "5", "--out", o, "--json"];
    let v = ok_json(&args);
    let trials = v["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 3);
    // mean and (population) std of the picks' accuracies
    for d in ["cifar10", "cifar100", "imagenet16_120"] {
        let acc: Vec<f64> = trials.iter().map(|t| t["accuracy"][d].as_f64().unwrap()).collect();
        let (m, s) = mean_std(&acc);
        assert!((num(&v["mean"][d]) - m).abs() < 1e-9 && (num(&v["std"][d]) - s).abs() < 1e-9, "{d}: {v}");
    }
    assert!(v["search_seconds"].as_f64().unwrap() > 0.0);
    let first = scores_csv(&out);
    let scored = v["networks_scored"].as_u64().unwrap() as usize;
    assert_eq!(first.len(), scored + 1);

    // A torn last line (an interrupted write) is dropped and recomputed.
    let mut torn = first[..first.len() - 1].join("\n");
    torn.push('\n');
    torn.push_str(&first[first.len() - 1][..10]);
    std::fs::write(out.join("scores.csv"), torn).unwrap();
    let again =
        ok_json(&["search", "--trials", "3", "--networks", "12", "--jobs", "1", "--seed", "5", "--out", o, "--json"]);
    assert_eq!(again["trials"], v["trials"]);
    // a trial's cost comes from the recorded per-network times, cached or not
    assert!(again["trial_worker_seconds"].as_f64().unwrap() > 0.0);
    let mut a = first.clone();
    let mut b = scores_csv(&out);
    // the recomputed row may carry another timing; compare everything else
    let strip = |rows: &mut Vec<String>| {
        for r in rows.iter_mut() {
            *r = r.rsplit_once(',').map(|(head, _)| head.to_string()).unwrap_or_default();
        }
        rows.sort();
    };
    strip(&mut a);
    strip(&mut b);
    assert_eq!(a, b, "resumed scores differ");

    // Other settings in the same folder are refused.
    let e = fails(&["search", "--trials", "1", "--networks", "5", "--seed", "6", "--out", o]);
    assert!(e.contains("seed was 5"), "{e}");

    // Any scored network reproduces alone with `score`.
    let t = &v["trials"][0];
    let index = t["index"].as_u64().unwrap();
    let init = 5 * 1_000_000 + index;
    let s =
        ok_json(&["score", "--index", &index.to_string(), "--seed", &init.to_string(), "--image-seed", "5", "--json"]);
    assert_eq!(num(&s["score"]), num(&t["score"]));
}

#[test]
fn correlate_writes_csv_plot_and_json() {
    let d = tmp();
    let o = d.path().to_str().unwrap();
    let v = ok_json(&["correlate", "--sample", "40", "--out", o, "--json", "--seed", "2"]);
    assert_eq!(v["n"], 40);
    // the figures are those of the written scores and accuracies
    let table = csv_table(&d.path().join("correlate.csv"));
    let (score, acc) = (csv_column(&table, "score"), csv_column(&table, "cifar10"));
    assert_eq!(v["n_nonfinite"], score.iter().filter(|s| !s.is_finite()).count());
    assert_eq!(v["n_nonfinite"], 0, "seed 2's sample has no singular kernel");
    for (k, want) in
        [("kendall", tau_b(&score, &acc)), ("spearman", spearman(&score, &acc)), ("pearson", pearson(&score, &acc))]
    {
        assert!((num(&v[k]) - want).abs() < 1e-12, "{k}: {} vs {want}", v[k]);
    }
    assert!(v["worker_seconds"].as_f64().unwrap() > 0.0);
    // a rerun finds every score in the folder: no scoring, same figures
    let again = ok_json(&["correlate", "--sample", "40", "--out", o, "--json", "--seed", "2"]);
    assert_eq!(again["kendall"], v["kendall"]);
    assert_eq!(again["worker_seconds"], v["worker_seconds"]);
    let csv = std::fs::read_to_string(d.path().join("correlate.csv")).unwrap();
    assert!(csv.starts_with("index,arch,score,logdet_k,logdet_q,la,lq,cifar10,cifar100,imagenet16_120"), "{csv}");
    assert_eq!(csv.lines().count(), 41);
    let png = std::fs::read(d.path().join("correlate.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
}

#[test]
fn bench_reports_throughput_and_memory() {
    let v = ok_json(&["bench", "--networks", "4", "--jobs", "2", "--json"]);
    assert_eq!((v["networks"].as_u64(), v["jobs"].as_u64(), v["batch"].as_u64()), (Some(4), Some(2), Some(3)));
    let (rate, secs) = (num(&v["nets_per_second"]), num(&v["seconds"]));
    assert!(secs > 0.0 && (rate - 4.0 / secs).abs() < 1e-9 * rate, "{v}");
    // the process's memory, libtorch included: tens to hundreds of MB
    let rss = num(&v["peak_rss_mb"]);
    assert!((50.0..4000.0).contains(&rss), "{v}");
    // the default budget: half the memory available, at least 1536 MB
    let total_mb = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<f64>()
        .unwrap()
        / 1024.0;
    let budget = num(&v["memory_budget_mb"]);
    assert!(budget >= 1536.0 && (budget <= 1536f64.max(total_mb / 2.0)), "{v}");
    // the cores' busy share is the CPU time over wall time x jobs (some CPU
    // was spent: each network costs milliseconds of one core)
    let (cpu, busy) = (num(&v["cpu_seconds"]), num(&v["cpu_busy"]));
    assert!(cpu > 0.0 && (busy - cpu / (secs * 2.0)).abs() < 1e-9, "{v}");
}

#[test]
fn transnas_scores_do_not_depend_on_the_memory_budget() {
    // budget 1 MB: every network waits for the other to finish (one at a
    // time); 0: no limit. Same networks, same scores.
    let d = tmp();
    let mut runs = Vec::new();
    for budget in ["1", "0"] {
        let out = d.path().join(budget);
        let o = out.to_str().unwrap();
        let v = ok_json(&[
            "correlate",
            "--space",
            "transnas-micro",
            "--sample",
            "3",
            "--jobs",
            "2",
            "--memory-budget",
            budget,
            "--out",
            o,
            "--json",
        ]);
        assert_eq!(v["n"], 3);
        let mut rows: Vec<String> = scores_csv(&out)
            .iter()
            .map(|r| r.rsplit_once(',').map(|(head, _)| head.to_string()).unwrap_or_default())
            .collect();
        rows.sort();
        runs.push(rows);
    }
    assert_eq!(runs[0].len(), 4);
    assert_eq!(runs[0], runs[1]);
}

#[test]
fn nafbee_vgg19_ranks_eleven_activations_over_repeats() {
    let d = tmp();
    let v = ok_json(&["nafbee", "--model", "vgg19", "--repeats", "2", "--out", d.path().to_str().unwrap(), "--json"]);
    let vars = v["variants"].as_array().unwrap();
    assert_eq!(vars.len(), 11);
    assert_eq!(vars[0]["activation"], "ReLU");
    assert_eq!(vars[0]["accuracy"], 91.06);
    // each variant's mean and std are those of its repeats' scores; the
    // correlations rank the means against the accuracies
    let (mut means, mut accs) = (Vec::new(), Vec::new());
    for x in vars {
        let scores: Vec<f64> = x["scores"].as_array().unwrap().iter().map(num).collect();
        assert_eq!(scores.len(), 2);
        let (m, s) = mean_std(&scores);
        assert!((num(&x["mean"]) - m).abs() < 1e-9 && (num(&x["std"]) - s).abs() < 1e-9, "{x}");
        means.push(m);
        accs.push(num(&x["accuracy"]));
    }
    assert_eq!(v["gammas"].as_array().unwrap().len(), 2);
    assert!((num(&v["kendall"]) - tau_b(&means, &accs)).abs() < 1e-12, "{v}");
    assert!((num(&v["spearman"]) - spearman(&means, &accs)).abs() < 1e-12, "{v}");
    let top = vars.iter().find(|x| x["rank"] == 1).unwrap();
    assert_eq!(v["top_is_best"], top["benchmark_rank"] == 1);
    let csv = std::fs::read_to_string(d.path().join("nafbee.csv")).unwrap();
    assert_eq!(csv.lines().count(), 12);
    // one variant alone, through the generic commands
    let s = ok_json(&["score", "--space", "nafbee-vgg19", "--arch", "gelu", "--json"]);
    assert_eq!(s["params"], 20_040_522);
    assert_eq!(s["index"], 1);
}

#[test]
fn nafbee_bad_inputs_are_named() {
    let e = fails(&["score", "--space", "nafbee-vgg19", "--arch", "swish2"]);
    assert!(e.contains("unknown activation 'swish2'"), "{e}");
    let d = tmp();
    let empty = d.path().join("empty.tsv");
    std::fs::write(&empty, "\n  \n").unwrap();
    let e = fails(&["nafbee", "--model", "bert", "--sentences", empty.to_str().unwrap()]);
    assert!(e.contains("empty.tsv holds no sentences"), "{e}");
    let e = fails(&["nafbee", "--model", "bert", "--sentences", "/no/such.tsv"]);
    assert!(e.contains("cannot read sentence file /no/such.tsv"), "{e}");

    let ckpt = d.path().join("ckpt.safetensors");
    let word = Tensor::zeros([10, 768], (tch::Kind::Float, tch::Device::Cpu));
    Tensor::write_safetensors(&[("bert.embeddings.word_embeddings.weight", word)], &ckpt).unwrap();
    let e = fails(&["nafbee", "--model", "bert", "--checkpoint", ckpt.to_str().unwrap(), "--jobs", "1"]);
    assert!(
        e.contains("'bert.embeddings.word_embeddings.weight' has shape [10, 768]") && e.contains("[30522, 768]"),
        "{e}"
    );
    let pos = Tensor::zeros([512, 768], (tch::Kind::Float, tch::Device::Cpu));
    Tensor::write_safetensors(&[("bert.embeddings.position_embeddings.weight", pos)], &ckpt).unwrap();
    let e = fails(&["nafbee", "--model", "bert", "--checkpoint", ckpt.to_str().unwrap(), "--jobs", "1"]);
    assert!(e.contains("missing tensor 'bert.embeddings.word_embeddings.weight'"), "{e}");
    let e = fails(&["nafbee", "--model", "vgg19", "--checkpoint", ckpt.to_str().unwrap()]);
    assert!(e.contains("--checkpoint is for --model bert"), "{e}");
}

#[test]
fn nats_sss_and_nds_bad_inputs_are_named() {
    let e = fails(&["score", "--space", "nats-sss", "--arch", "8:8:12:8:8"]);
    assert!(e.contains("channel 12 at layer 3 out of range"), "{e}");
    let e = fails(&["score", "--space", "nats-sss", "--arch", "8:8:8:8"]);
    assert!(e.contains("expected 5 channel counts"), "{e}");

    let d = tmp();
    let genotype = r#"{"normal": [["conv_9x9", 0], ["skip_connect", 1]], "normal_concat": [2], "reduce": [["none", 0], ["none", 1]], "reduce_concat": [2]}"#;
    let rec = |net: &str, extra: &str| format!(r#"[{{"net": {net}, "params": 1, "min_test_top1": 10.0{extra}}}]"#);
    let bad_op = d.path().join("bad_op.json");
    let net = format!(r#"{{"aux": false, "depth": 3, "width": 8, "genotype": {genotype}}}"#);
    std::fs::write(&bad_op, rec(&net, r#", "test_ep_top1": [12.0]"#)).unwrap();
    let e = fails(&["score", "--space", "nds-darts", "--benchmark", bad_op.to_str().unwrap(), "--index", "0"]);
    assert!(e.contains("unknown op 'conv_9x9'"), "{e}");

    let missing = d.path().join("missing.json");
    // the net comes first in a record, and is checked first
    std::fs::write(&missing, rec(&net.replace("conv_9x9", "conv_3x3"), "")).unwrap();
    let e = fails(&["score", "--space", "nds-darts", "--benchmark", missing.to_str().unwrap(), "--index", "0"]);
    assert!(e.contains("missing.json: record 0 has no field 'test_ep_top1'"), "{e}");

    let trunc = d.path().join("trunc.json");
    std::fs::write(&trunc, &rec(&net, "")[..40]).unwrap();
    let e = fails(&["correlate", "--space", "nds-darts", "--benchmark", trunc.to_str().unwrap(), "--all"]);
    assert!(e.contains("trunc.json is not valid JSON"), "{e}");

    // a CIFAR-10 NDS file (no `_in` in its name) scores on CIFAR-10 images
    let ok = d.path().join("cifar.json");
    let good = r#"{"normal": [["sep_conv_3x3", 0], ["skip_connect", 1]], "normal_concat": [2], "reduce": [["max_pool_3x3", 0], ["dil_conv_3x3", 1]], "reduce_concat": [2]}"#;
    let net = format!(r#"{{"aux": false, "depth": 3, "width": 8, "genotype": {good}}}"#);
    std::fs::write(&ok, rec(&net, r#", "test_ep_top1": [12.0]"#)).unwrap();
    let v = ok_json(&["score", "--space", "nds-darts", "--benchmark", ok.to_str().unwrap(), "--index", "0", "--json"]);
    assert!(num(&v["score"]).is_finite());
    let e = fails(&[
        "score",
        "--space",
        "nds-darts",
        "--benchmark",
        ok.to_str().unwrap(),
        "--index",
        "0",
        "--dataset",
        "imagenet",
    ]);
    assert!(e.contains("has no dataset imagenet"), "{e}");
}

#[test]
fn transnas_bad_inputs_are_named() {
    let e = fails(&["score", "--space", "transnas-micro", "--index", "0", "--task", "depth"]);
    assert!(e.contains("unknown TransNAS task 'depth'"), "{e}");
    let e = fails(&["score", "--space", "transnas-micro", "--arch", "64-41414-0_05_000"]);
    assert!(e.contains("malformed TransNAS arch code '64-41414-0_05_000'"), "{e}");
    let e = fails(&["score", "--space", "transnas-macro", "--arch", "64-41-basic"]);
    assert!(e.contains("at least 3 layers"), "{e}");
    let d = tmp();
    image::RgbImage::new(256, 256).save(d.path().join("small.png")).unwrap();
    let e = fails(&["score", "--space", "transnas-macro", "--index", "0", "--images", d.path().to_str().unwrap()]);
    assert!(e.contains("small.png is 256x256, expected 512x512"), "{e}");
    std::fs::remove_file(d.path().join("small.png")).unwrap();
    image::GrayImage::new(512, 512).save(d.path().join("gray.png")).unwrap();
    let e = fails(&["score", "--space", "transnas-macro", "--index", "0", "--images", d.path().to_str().unwrap()]);
    assert!(e.contains("gray.png is not RGB"), "{e}");
}
