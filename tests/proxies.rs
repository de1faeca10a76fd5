//! The proxies through the command line: closed-form values, reproducibility,
//! the run folder across proxy sets, and the errors a user can meet.

mod common;

use common::{csv_column, csv_table, fails, num, ok_json, rbflex, tau_b};

const NONE: &str = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|";

#[test]
fn size_proxies_have_closed_form_values() {
    // all-none cell: stem 3x3 (3->16 at 32x32), two ResNet blocks, classifier
    let v = ok_json(&["score", "--arch", NONE, "--proxy", "params,flops", "--json"]);
    let stem = 32 * 32 * 16 * 3 * 9;
    let block1 = 16 * 16 * 32 * 16 * 9 + 16 * 16 * 32 * 32 * 9 + 16 * 16 * 32 * 16;
    let block2 = 8 * 8 * 64 * 32 * 9 + 8 * 8 * 64 * 64 * 9 + 8 * 8 * 64 * 32;
    assert_eq!(num(&v["flops"]), f64::from(stem + block1 + block2 + 64 * 10));
    // stem conv + BN, blocks (conv_a, BN, conv_b, BN, 1x1), last BN, classifier
    let params = 432 + 32 + (4608 + 64 + 9216 + 64 + 512) + (18432 + 128 + 36864 + 128 + 2048) + 128 + 650;
    assert_eq!(num(&v["params"]), f64::from(params));
    // NATS-Bench's name for the same space
    let tss = ok_json(&["score", "--space", "nats-tss", "--arch", NONE, "--proxy", "params", "--json"]);
    assert_eq!(tss["params"], v["params"]);
}

#[test]
fn proxies_reproduce_alone_and_share_the_run_folder() {
    let d = tempfile::tempdir().unwrap();
    let o = d.path().to_str().unwrap();
    let v = ok_json(&["correlate", "--sample", "6", "--seed", "3", "--proxy", "naswot,snip,az", "--out", o, "--json"]);
    // each proxy's Kendall is that of its column of correlate.csv
    let table = csv_table(&d.path().join("correlate.csv"));
    let acc = csv_column(&table, "cifar10");
    for p in ["naswot", "snip", "az"] {
        let want = tau_b(&csv_column(&table, p), &acc);
        assert!((num(&v["proxies"][p]["kendall"]) - want).abs() < 1e-12, "{p}: {}", v["proxies"]);
    }
    assert_eq!(v["proxy"], "naswot");
    // a network of the run scores the same alone
    let csv = std::fs::read_to_string(d.path().join("scores.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    let col = |c: &str| row[header.iter().position(|h| *h == c).unwrap()].to_string();
    let s = ok_json(&[
        "score",
        "--index",
        &col("index"),
        "--seed",
        &col("init_seed"),
        "--image-seed",
        "3",
        "--proxy",
        "naswot,snip",
        "--json",
    ]);
    assert_eq!(num(&s["naswot"]), col("naswot").parse::<f64>().unwrap());
    assert_eq!(num(&s["snip"]), col("snip").parse::<f64>().unwrap());
    // rbflex added to the same folder: the file widens, nothing is rescored
    let again =
        ok_json(&["correlate", "--sample", "6", "--seed", "3", "--proxy", "naswot,rbflex", "--out", o, "--json"]);
    assert_eq!(again["proxies"]["naswot"]["kendall"], v["proxies"]["naswot"]["kendall"]);
    let csv2 = std::fs::read_to_string(d.path().join("scores.csv")).unwrap();
    assert!(csv2.lines().next().unwrap().contains(",score,logdet_k"), "{csv2}");
    // header, the six rows rewritten under it, six rows of the rbflex pass;
    // the network's rows keep its values exactly
    assert_eq!(csv2.lines().count(), 13);
    let wide = csv_table(&d.path().join("scores.csv"));
    let at = |c: &str| wide.0.iter().position(|h| h == c).unwrap();
    let kept: Vec<&Vec<String>> =
        wide.1.iter().filter(|r| r[at("index")] == col("index") && !r[at("naswot")].is_empty()).collect();
    assert!(!kept.is_empty(), "{csv2}");
    for (row, c) in kept.iter().flat_map(|r| ["arch", "init_seed", "naswot"].map(|c| (r, c))) {
        assert_eq!(row[at(c)], col(c), "{c}");
    }
    assert_eq!(kept[0][at("snip")], col("snip"));
    assert_eq!(kept[0][at("az_trainability")], col("az_trainability"));
    // other settings of a proxy already there are refused
    let e = fails(&["correlate", "--sample", "6", "--seed", "3", "--gamma-k", "1e-5", "--out", o]);
    assert!(e.contains("proxy rbflex was"), "{e}");
}

#[test]
fn bad_proxy_requests_are_named() {
    let e = fails(&["score", "--index", "1", "--proxy", "rbflex,synfloww"]);
    assert!(e.starts_with("error: unknown proxy 'synfloww' (known: rbflex, naswot, synflow"), "{e}");
    // a proxy with a classification loss on a network without a classifier
    let e = fails(&["score", "--space", "transnas-micro", "--index", "5", "--proxy", "snip"]);
    assert!(e.contains("proxy snip needs a classifier network") && e.contains("transnas-micro"), "{e}");
    let e = fails(&["score", "--space", "transnas-macro", "--index", "5", "--proxy", "zen", "--proxy-batch", "2"]);
    assert!(e.contains("proxy zen needs a classifier network"), "{e}");
    // labels from an image folder without class folders
    let d = tempfile::tempdir().unwrap();
    for i in 0..70 {
        image::RgbImage::from_pixel(32, 32, image::Rgb([i as u8, 3, 9]))
            .save(d.path().join(format!("{i}.png")))
            .unwrap();
    }
    let dir = d.path().to_str().unwrap();
    let e = fails(&["score", "--index", "1", "--proxy", "snip", "--images", dir]);
    assert!(e.contains("proxy snip needs labelled images"), "{e}");
    // the same images are enough for a proxy without labels
    let v = ok_json(&["score", "--index", "1", "--proxy", "jacob_cov", "--images", dir, "--json"]);
    assert!(num(&v["jacob_cov"]).is_finite(), "{v}");
}

#[test]
fn index_files_and_proxy_batches_are_checked() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("idx.txt");
    std::fs::write(&f, "# NASLib's sample\n12\n\n7 # comment\nseven\n").unwrap();
    let p = f.to_str().unwrap();
    let o = d.path().join("out");
    let e = fails(&["correlate", "--indices", p, "--out", o.to_str().unwrap()]);
    assert!(e.contains("idx.txt line 5: 'seven' is not an index"), "{e}");
    std::fs::write(&f, "12\n15625\n").unwrap();
    let e = fails(&["correlate", "--indices", p, "--out", o.to_str().unwrap()]);
    assert!(e.contains("idx.txt line 2: index 15625 is out of range (the space has 15625)"), "{e}");
    std::fs::write(&f, "12\n7\n12\n").unwrap();
    let v = ok_json(&["correlate", "--indices", p, "--out", o.to_str().unwrap(), "--proxy", "params", "--json"]);
    assert_eq!(v["n"], 2);
    let out = rbflex(&["score", "--index", "3", "--proxy", "naswot", "--proxy-batch", "1"]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && e.contains("'--proxy-batch <PROXY_BATCH>': must be between 2 and 10000, got 1"),
        "{e}"
    );
    // a smaller protocol batch is a setting of the proxy: recorded, and another is refused
    let v = ok_json(&[
        "correlate",
        "--indices",
        p,
        "--out",
        o.to_str().unwrap(),
        "--proxy",
        "naswot",
        "--proxy-batch",
        "8",
        "--json",
    ]);
    assert!(v["proxies"]["naswot"]["kendall"].is_number());
    let run = std::fs::read_to_string(o.join("run.json")).unwrap();
    assert!(run.contains("\"naswot\": {\n      \"batch\": 8"), "{run}");
    let e =
        fails(&["correlate", "--indices", p, "--out", o.to_str().unwrap(), "--proxy", "naswot", "--proxy-batch", "16"]);
    assert!(e.contains("proxy naswot was {\"batch\":8} (now {\"batch\":16})"), "{e}");
}

#[test]
fn all_proxies_on_transnas_skip_the_classifier_ones_with_a_note() {
    let args = ["score", "--space", "transnas-micro", "--index", "100", "--proxy-batch", "2", "--json", "--proxy"];
    let out = rbflex(&[&args[..], &["all"]].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("note: --proxy all on transnas-micro (taskonomy) skips snip, grasp, grad_norm, fisher, plain, epe_nas, zico, zen, vkdnw, vkdnw_single"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // the noise and size proxies run at a small batch: every proxy but the
    // ten skipped (and vkdnw's part), and the two aggregations
    let skipped = [
        "snip",
        "grasp",
        "grad_norm",
        "fisher",
        "plain",
        "epe_nas",
        "zico",
        "zen",
        "vkdnw",
        "vkdnw_dim",
        "vkdnw_single",
    ];
    let list = ok_json(&["score", "--index", "1", "--proxy", "all", "--json"]);
    let mut want: Vec<&str> =
        list.as_object().unwrap().keys().map(String::as_str).filter(|k| !skipped.contains(k)).collect();
    let mut got: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    want.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, want);
    assert!(num(&v["naswot"]).is_finite(), "{v}");
    // AZ-NAS' complexity is the FLOP count per input
    assert_eq!(num(&v["az_complexity"]), num(&v["flops"]));
    // named, a proxy the space cannot serve is still an error
    let e = fails(&[&args[..], &["all,snip"]].concat());
    assert!(e.contains("proxy snip needs a classifier network"), "{e}");
}

#[test]
fn gradient_proxies_on_a_net_whose_output_ignores_its_input() {
    // micro 77 (64-41414-0_01_031): its cell's output does not depend on the
    // input; the input Jacobian and AZ-NAS' stage gradients are degenerate
    // (-inf), where libtorch's engine used to crash the process
    let v = ok_json(&[
        "score",
        "--space",
        "transnas-micro",
        "--index",
        "77",
        "--proxy",
        "jacob_cov,az_trainability",
        "--proxy-batch",
        "2",
        "--json",
    ]);
    assert_eq!(v["jacob_cov"], "-inf", "{v}");
    assert_eq!(v["az_trainability"], "-inf", "{v}");
}

#[test]
fn run_folders_of_the_rbflex_only_version_are_reused() {
    let d = tempfile::tempdir().unwrap();
    let o = d.path().to_str().unwrap();
    let v = ok_json(&["correlate", "--sample", "3", "--out", o, "--json"]);
    // the run.json the first versions wrote: RBFleX's gammas at the top level
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("run.json")).unwrap()).unwrap();
    let legacy = serde_json::json!({
        "space": run["space"], "dataset": run["dataset"], "seed": run["seed"], "batch": run["batch"],
        "gamma_k": run["proxies"]["rbflex"]["gamma_k"], "gamma_q": run["proxies"]["rbflex"]["gamma_q"],
        "images": run["images"], "init_seed": run["init_seed"],
    });
    std::fs::write(d.path().join("run.json"), legacy.to_string()).unwrap();
    let again = ok_json(&["correlate", "--sample", "3", "--out", o, "--json"]);
    assert_eq!(again["kendall"], v["kendall"]);
    assert_eq!(again["worker_seconds"], v["worker_seconds"], "nothing is rescored");
    // other gammas than the legacy folder's are refused, naming the proxy
    let e = fails(&["correlate", "--sample", "3", "--out", o, "--gamma-q", "1e-3"]);
    assert!(e.contains("proxy rbflex was"), "{e}");
}

#[test]
fn jacobian_proxies_share_one_pass_and_agree_with_separate_runs() {
    let both = ok_json(&["score", "--index", "777", "--proxy", "jacob_cov,epe_nas", "--json"]);
    let jc = ok_json(&["score", "--index", "777", "--proxy", "jacob_cov", "--json"]);
    let epe = ok_json(&["score", "--index", "777", "--proxy", "epe_nas", "--json"]);
    assert!(num(&both["jacob_cov"]).is_finite() && num(&both["epe_nas"]).is_finite(), "{both}");
    assert_eq!(num(&both["jacob_cov"]), num(&jc["jacob_cov"]));
    assert_eq!(num(&both["epe_nas"]), num(&epe["epe_nas"]));
}

/// `got` within `rel` (relative) of the pinned `want`.
fn near(got: f64, want: f64, rel: f64, v: &serde_json::Value) {
    assert!((got - want).abs() <= rel * want.abs(), "{got} vs {want} (relative {rel}): {v}");
}

#[test]
fn az_values_of_an_nb201_network_are_pinned() {
    // the values rbflex gave before AZ-NAS' random output gradients were
    // drawn by the Rust replay of libtorch's generator (nets::seed::signs_like):
    // the same bits on the Intel Xeon that pinned them; another CPU rounds
    // oneDNN's convolutions otherwise (an AMD EPYC: 1e-9 to 3e-7 relative)
    let v = ok_json(&["score", "--index", "4404", "--proxy", "az", "--json"]);
    near(num(&v["az_expressivity"]), 58.91366174924728, 1e-7, &v);
    near(num(&v["az_progressivity"]), -0.020051220650484147, 1e-6, &v);
    near(num(&v["az_trainability"]), -0.05073986885118573, 1e-6, &v);
    assert_eq!(num(&v["az_complexity"]), 157205120.0, "{v}");
}

#[test]
fn gradients_through_skipped_zero_edges_keep_the_references_values() {
    // index 127 `|none~0|+|none~0|avg_pool_3x3~1|+|nor_conv_1x1~0|...`: a node
    // of zeros and a `none` first into node 2. The values rbflex gave when
    // every `none` edge ran `x * 0` and the sum started with `out + 0`, as
    // xautodl's; the cells now skip those edges and alias the first output.
    // The same bits on the Intel Xeon that pinned them; another CPU rounds
    // oneDNN's convolutions otherwise, and these proxies amplify it unevenly
    // (an AMD EPYC, relative: snip 7e-9, grasp 4e-5, zico's ratio of two
    // gradients' spread 8e-4), so each is held to a bound 7-70x the spread measured there
    let v = ok_json(&["score", "--index", "127", "--proxy", "snip,grad_norm,grasp,zico,fisher,az", "--json"]);
    near(num(&v["snip"]), 51.31332895016361, 1e-7, &v);
    near(num(&v["grad_norm"]), 3.651498498694218, 1e-6, &v);
    near(num(&v["grasp"]), 2.2658056846609043, 4e-4, &v);
    near(num(&v["zico"]), 214.22677323132925, 8e-3, &v);
    near(num(&v["fisher"]), 0.04597103966103345, 1e-7, &v);
    near(num(&v["az_expressivity"]), 50.80806363038473, 1e-7, &v);
    near(num(&v["az_progressivity"]), -0.3354460016436063, 1e-6, &v);
    near(num(&v["az_trainability"]), -0.28146034776129003, 1e-6, &v);
}

#[test]
fn naswot_from_the_az_pass_and_snip_from_grasp_equal_their_own_passes() {
    // AZ-NAS' pass also sums NASWOT's kernel, GraSP's first gradient is
    // SNIP's: the shared values are the separate runs' bit for bit
    let both = ok_json(&["score", "--index", "777", "--proxy", "naswot,snip,grasp,az", "--json"]);
    let alone = ok_json(&["score", "--index", "777", "--proxy", "naswot,snip", "--json"]);
    assert!(num(&both["naswot"]).is_finite() && num(&both["snip"]) > 0.0, "{both}");
    assert_eq!(num(&both["naswot"]), num(&alone["naswot"]));
    assert_eq!(num(&both["snip"]), num(&alone["snip"]));
}

#[test]
fn plain_from_the_fisher_pass_equals_its_own_pass() {
    // fisher's backward also gives plain's weight gradients (the same init,
    // batch, labels and BatchNorm): the shared value is the separate run's
    for index in ["777", "127"] {
        let both = ok_json(&["score", "--index", index, "--proxy", "fisher,plain", "--json"]);
        let plain = ok_json(&["score", "--index", index, "--proxy", "plain", "--json"]);
        let fisher = ok_json(&["score", "--index", index, "--proxy", "fisher", "--json"]);
        assert!(num(&both["plain"]) != 0.0 && num(&both["fisher"]) > 0.0, "{both}");
        assert_eq!(num(&both["plain"]), num(&plain["plain"]));
        assert_eq!(num(&both["fisher"]), num(&fisher["fisher"]));
    }
}

/// Scores two networks with `proxy`, rewrites its `run.json` settings to
/// those an earlier version wrote (`{"batch": 64}`), and returns the error a
/// rerun gives.
fn rerun_over_older_settings(proxy: &str) -> String {
    let d = tempfile::tempdir().unwrap();
    let o = d.path().to_str().unwrap();
    ok_json(&["correlate", "--sample", "2", "--proxy", proxy, "--out", o, "--json"]);
    let path = d.path().join("run.json");
    let mut run: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    run["proxies"][proxy] = serde_json::json!({ "batch": 64 });
    std::fs::write(&path, run.to_string()).unwrap();
    fails(&["correlate", "--sample", "2", "--proxy", proxy, "--out", o])
}

#[test]
fn fisher_values_of_the_relu_version_are_refused_not_mixed() {
    // the earlier fisher (ReLU outputs) wrote no `outputs`
    let e = rerun_over_older_settings("fisher");
    assert!(e.contains(r#"proxy fisher was {"batch":64} (now {"batch":64,"outputs":"conv-linear"})"#), "{e}");
}

#[test]
fn zen_values_drawn_with_the_input_as_perturbation_are_refused_not_mixed() {
    // zen wrote no `perturbation` while its perturbation equalled its input
    let e = rerun_over_older_settings("zen");
    assert!(e.contains(r#"proxy zen was {"batch":64} (now {"batch":64,"perturbation":"independent"})"#), "{e}");
}

#[test]
fn a_budget_smaller_than_one_network_says_the_workers_take_turns() {
    let d = tempfile::tempdir().unwrap();
    let o = d.path().to_str().unwrap();
    // NASWOT holds ~600 bytes per input value: 64 x 3 x 32 x 32 -> 112 MB
    let args = ["correlate", "--sample", "2", "--proxy", "naswot", "--jobs", "2", "--out", o, "--memory-budget"];
    let out = rbflex(&[&args[..], &["100"]].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("note: a network's estimated working memory (112 MB) exceeds --memory-budget 100 MB: networks run one at a time"), "{err}");
    // room for one of the two workers
    let d1 = tempfile::tempdir().unwrap();
    let one = ["correlate", "--sample", "2", "--proxy", "naswot", "--jobs", "2", "--memory-budget", "200", "--out"];
    let out = rbflex(&[&one[..], &[d1.path().to_str().unwrap()]].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("note: --memory-budget 200 MB holds 1 of the 2 workers at once (a network's estimated working memory: 112 MB); a budget of 225 MB, or 0 (no limit), lets all 2 run"),
        "{err}"
    );
    let d2 = tempfile::tempdir().unwrap();
    let out = rbflex(&[
        "correlate",
        "--sample",
        "2",
        "--proxy",
        "naswot",
        "--jobs",
        "2",
        "--out",
        d2.path().to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("exceeds --memory-budget") && !err.contains("workers at once"), "{err}");
}

#[test]
fn a_proxy_that_ranks_nothing_is_noted() {
    // two images of two classes: no class has two rows, EPE-NAS is the same
    // 2 ln(1 + 1e-5) for every network
    let d = tempfile::tempdir().unwrap();
    let args = ["correlate", "--sample", "3", "--proxy", "epe_nas,params", "--proxy-batch", "2", "--out"];
    let out = rbflex(&[&args[..], &[d.path().to_str().unwrap()]].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let v = 2.0 * (1.0f64 + 1e-5).ln();
    assert!(
        err.contains(&format!(
            "note: epe_nas gives all 3 networks the same value ({v}): it ranks none of them, its correlations are NaN"
        )),
        "{err}"
    );
    assert!(!err.contains("params gives"), "{err}");
}

#[test]
fn vkdnw_near_meco_and_swap_score_nb201_and_rank_a_dead_cell_last() {
    let v = ok_json(&["score", "--index", "777", "--proxy", "vkdnw,vkdnw_single,near,meco,swap", "--json"]);
    for p in ["vkdnw", "near", "meco", "swap"] {
        assert!(num(&v[p]).is_finite() && num(&v[p]) > 0.0, "{p}: {v}");
    }
    // VKDNW_single orders by the parameter tensors' count, then the entropy
    // (below ln 9 < 3); |avg_pool|+|avg_pool|conv3x3|+|skip|none|none|: 66 tensors
    assert_eq!(num(&v["vkdnw_dim"]), 66.0);
    assert!(num(&v["vkdnw"]) < 9f64.ln());
    assert_eq!(num(&v["vkdnw_single"]), 66.0 + num(&v["vkdnw"]) / 3.0);
    // the same value alone (its own pass) and yielded by vkdnw's pass
    let single = ok_json(&["score", "--index", "777", "--proxy", "vkdnw_single", "--json"]);
    assert_eq!(single["vkdnw_single"], v["vkdnw_single"]);
    // SWAP counts distinct patterns of 16 images: at most 2^16
    assert!(num(&v["swap"]) <= 65536.0);
    // an all-none cell: nothing reaches the classifier
    let dead = ok_json(&["score", "--arch", NONE, "--proxy", "vkdnw,near,meco,swap", "--json"]);
    for p in ["vkdnw", "near", "meco", "swap"] {
        assert_eq!(dead[p], "-inf", "{p}: {dead}");
        assert!(dead[format!("{p}_note")].as_str().unwrap_or("").contains("all zero"), "{dead}");
    }
}

#[test]
fn consensus_weighs_each_members_log_ranks_by_its_agreement_with_rbflex() {
    let d = tempfile::tempdir().unwrap();
    let o = d.path().to_str().unwrap();
    let v = ok_json(&["correlate", "--sample", "12", "--seed", "2", "--proxy", "consensus", "--out", o, "--json"]);
    // recompute the rule from the members' values in scores.csv
    let scores = csv_table(&d.path().join("scores.csv"));
    let corr = csv_table(&d.path().join("correlate.csv"));
    let order = |t: &(Vec<String>, Vec<Vec<String>>)| csv_column(t, "index");
    let (si, ci) = (order(&scores), order(&corr));
    let member = |name: &str| -> Vec<f64> {
        let col = csv_column(&scores, if name == "rbflex" { "score" } else { name });
        ci.iter().map(|i| col[si.iter().position(|s| s == i).unwrap()]).collect()
    };
    // the members in the rule's order (that of the report's weights)
    let members = rbflex::proxies::consensus::MEMBERS;
    let anchor = member("rbflex");
    let n = anchor.len() as f64;
    let ln_rank = |x: &[f64]| -> Vec<f64> {
        x.iter()
            .map(|a| {
                let below = x.iter().filter(|b| *b < a).count() as f64;
                let equal = x.iter().filter(|b| *b == a).count() as f64;
                ((below + (equal + 1.0) / 2.0) / n).ln()
            })
            .collect()
    };
    let mut want = vec![0.0; anchor.len()];
    let mut weights = Vec::new();
    for &m in members {
        let x = member(m);
        let rho = common::spearman(&x, &anchor);
        let w = if m == "rbflex" { 1.0 } else { rho.max(0.0) };
        want.iter_mut().zip(ln_rank(&x)).for_each(|(t, l)| *t += w * l);
        if m != "rbflex" {
            weights.push(format!("{m} {w:.2}"));
        }
    }
    let got = csv_column(&corr, "consensus");
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-9, "consensus {got:?} vs {want:?}");
    }
    // the report says how it weighed them, and its Kendall is that of the column
    assert_eq!(
        v["chosen"][0].as_str().unwrap(),
        format!(
            "consensus over these 12 networks: rbflex weight 1, the others their Spearman with it (0 if negative): {}",
            weights.join(", ")
        )
    );
    let acc = csv_column(&corr, "cifar10");
    assert!((num(&v["proxies"]["consensus"]["kendall"]) - tau_b(&got, &acc)).abs() < 1e-12);
}

#[test]
fn channels_last_changes_proxy_values_only_in_rounding_and_never_rbflex() {
    // NB201 (average pooling), NDS DARTS (max and average pooling), NDS
    // ResNeXt (a max-pooling stem), TransNAS (no classifier)
    let cases: [(&str, &str, &[&str]); 4] = [
        ("nb201", "777", &["--proxy", "snip,grasp,naswot,az,rbflex"]),
        ("nds-darts", "3", &["--proxy", "snip,naswot", "--proxy-batch", "4"]),
        ("nds-resnext-a", "5", &["--proxy", "snip,naswot", "--proxy-batch", "4"]),
        ("transnas-micro", "100", &["--proxy", "naswot,az", "--proxy-batch", "2"]),
    ];
    for (space, index, proxies) in cases {
        let args = [&["score", "--space", space, "--index", index, "--json"][..], proxies].concat();
        let nchw = ok_json(&args);
        let cl = ok_json(&[&args[..], &["--channels-last"]].concat());
        let mut changed = false;
        for (name, v) in nchw.as_object().unwrap().iter().filter(|(_, v)| v.is_f64()) {
            let (a, b) = (num(v), num(&cl[name]));
            if ["score", "logdet_k", "logdet_q"].contains(&name.as_str()) {
                assert_eq!(a, b, "{space}: RBFleX's {name} keeps the reference's layout");
                continue;
            }
            assert!((a - b).abs() <= 1e-2 * a.abs().max(1e-9), "{space} {name}: {a} vs {b}");
            changed |= a != b;
        }
        if space != "transnas-micro" {
            assert!(changed, "{space}: the layout changed no value: {nchw} vs {cl}");
        }
    }
}
