//! Hostile use, second round (issue 20): results folders holding symbolic
//! links, merges of tampered shards (rows, seeds, indices files), a merge
//! cut between its writes, a merge that must lock before it reads, files
//! that are not regular files, `run.json` edited to forget a proxy, empty
//! bench shards, misleading input messages, and results inside the inputs.

mod common;

use common::{fails, ok_json, rbflex};
use std::fs::File;
use std::path::Path;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small correlate run into `out` (synflow: fast; 6 networks).
fn correlate(out: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["correlate", "--sample", "6", "--proxy", "synflow", "--quiet", "--json", "--out", s(out)];
    args.extend_from_slice(extra);
    ok_json(&args)
}

/// Shards 0 and 1 of a 2-way correlate run into `out` (one after the other).
fn two_shards(out: &Path, extra: &[&str]) {
    for k in ["0/2", "1/2"] {
        let mut args = vec!["correlate", "--sample", "6", "--proxy", "synflow", "--quiet", "--json"];
        args.extend_from_slice(&["--out", s(out), "--shard", k]);
        args.extend_from_slice(extra);
        ok_json(&args);
    }
}

fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

#[test]
fn nothing_is_written_through_a_symbolic_link_in_a_results_folder() {
    let d = tmp();
    let outside = d.path().join("precious.txt");
    std::fs::write(&outside, "keep me\n").unwrap();
    for name in [".lock", "scores.csv", "run.json"] {
        let out = d.path().join(format!("run-{}", name.trim_start_matches('.')));
        std::fs::create_dir(&out).unwrap();
        symlink(&outside, &out.join(name));
        let e = fails(&["correlate", "--sample", "6", "--proxy", "synflow", "--quiet", "--out", s(&out)]);
        assert!(e.contains(&format!("{} is a symbolic link", out.join(name).display())), "{name}: {e}");
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep me\n", "{name}");
    }
    // merge: the same for the merged folder
    let out = d.path().join("merged");
    two_shards(&out, &[]);
    symlink(&outside, &out.join("scores.csv"));
    let e = fails(&["merge", "--out", s(&out)]);
    assert!(e.contains("scores.csv is a symbolic link"), "{e}");
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep me\n");
    // a stale temporary file planted as a link is replaced, not followed
    std::fs::remove_file(out.join("scores.csv")).unwrap();
    symlink(&outside, &out.join(".run.tmp.json"));
    ok_json(&["merge", "--out", s(&out), "--json"]);
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep me\n");
}

/// Rewrites line `line` (0 = header) of a CSV file with `f`.
fn edit_line(path: &Path, line: usize, f: impl Fn(&mut Vec<String>)) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut cells: Vec<String> = lines[line].split(',').map(String::from).collect();
    f(&mut cells);
    lines[line] = cells.join(",");
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// A change to one CSV row's cells.
type Edit = fn(&mut Vec<String>);

#[test]
fn merge_checks_every_row_as_a_run_does_its_own_folder_too() {
    let d = tmp();
    let out = d.path().join("run");
    two_shards(&out, &[]);
    let shard = out.join("shard-0-of-2").join("scores.csv");
    let clean = std::fs::read_to_string(&shard).unwrap();
    let cases: [(&str, Edit); 3] = [
        ("is not a network of this shard's share", |c| c[0] = "99999".into()),
        ("has init_seed 7 but this run builds it with", |c| c[2] = "7".into()),
        ("has arch '|none~0|+|none~0|none~1|+|none~0|none~1|none~2|' but nb201's is", |c| {
            c[1] = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|".into()
        }),
    ];
    for (want, edit) in cases {
        std::fs::write(&shard, &clean).unwrap();
        edit_line(&shard, 1, edit);
        let e = fails(&["merge", "--out", s(&out)]);
        assert!(e.contains(&format!("{} line 2: ", shard.display())) && e.contains(want), "{want}: {e}");
        assert!(!out.join("scores.csv").exists(), "a refused merge writes nothing");
    }
    std::fs::write(&shard, &clean).unwrap();
    ok_json(&["merge", "--out", s(&out), "--json"]);
    // the merged folder's own rows are checked on the next merge too
    edit_line(&out.join("scores.csv"), 1, |c| c[2] = "7".into());
    let e = fails(&["merge", "--out", s(&out)]);
    assert!(e.contains(&format!("{} line 2: ", out.join("scores.csv").display())), "{e}");
}

#[test]
fn a_merge_cut_between_its_writes_is_completed_by_the_same_merge() {
    let d = tmp();
    let out = d.path().join("run");
    two_shards(&out, &[]);
    ok_json(&["merge", "--out", s(&out), "--json"]);
    let scores = std::fs::read_to_string(out.join("scores.csv")).unwrap();
    // a merge killed after its first write leaves the run's settings without scores
    std::fs::remove_file(out.join("scores.csv")).unwrap();
    let rep = ok_json(&["merge", "--out", s(&out), "--json"]);
    assert_eq!(rep["scored"], 6);
    assert_eq!(std::fs::read_to_string(out.join("scores.csv")).unwrap(), scores);
    // and the folder is one correlate reads without scoring again
    let v = correlate(&out, &[]);
    assert_eq!(v["n"], 6);
}

#[test]
fn merge_takes_the_folders_lock_before_it_reads_it() {
    let d = tmp();
    let out = d.path().join("run");
    two_shards(&out, &[]);
    std::fs::write(out.join("scores.csv"), "not a scores file\n").unwrap();
    // another process holds the folder: merge must wait its turn, not read what it is writing
    let lock = File::options().read(true).write(true).create(true).truncate(false).open(out.join(".lock")).unwrap();
    lock.try_lock().unwrap();
    let e = fails(&["merge", "--out", s(&out)]);
    assert!(e.contains("is in use by another rbflex run"), "{e}");
    drop(lock);
    let e = fails(&["merge", "--out", s(&out)]);
    assert!(e.contains("not an rbflex scores file") || e.contains("no run.json"), "{e}");
}

#[test]
fn merge_names_the_field_that_differs_between_shards() {
    let d = tmp();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    ok_json(&[
        "correlate",
        "--sample",
        "6",
        "--proxy",
        "synflow",
        "--quiet",
        "--json",
        "--out",
        s(&a),
        "--shard",
        "0/2",
    ]);
    let args = ["correlate", "--sample", "6", "--proxy", "synflow", "--quiet", "--json", "--seed", "2"];
    let mut args = args.to_vec();
    args.extend_from_slice(&["--out", s(&b), "--shard", "1/2"]);
    ok_json(&args);
    let e = fails(&["merge", "--out", s(&a), s(&a.join("shard-0-of-2")), s(&b.join("shard-1-of-2"))]);
    assert!(e.contains("seed is 1 there, 2 here"), "{e}");

    // an --indices file edited between the shards
    let (c, f) = (d.path().join("c"), d.path().join("idx.txt"));
    std::fs::write(&f, "1\n2\n3\n4\n").unwrap();
    let base = ["correlate", "--proxy", "synflow", "--quiet", "--json", "--indices", s(&f), "--out", s(&c)];
    let mut args = base.to_vec();
    args.extend_from_slice(&["--shard", "0/2"]);
    ok_json(&args);
    std::fs::write(&f, "1\n2\n3\n5\n").unwrap();
    let mut args = base.to_vec();
    args.extend_from_slice(&["--shard", "1/2"]);
    ok_json(&args);
    let e = fails(&["merge", "--out", s(&c)]);
    assert!(
        e.contains("candidate lists of --indices") && e.contains("the indices file was changed between shards"),
        "{e}"
    );
}

#[test]
fn files_that_are_not_regular_files_are_refused_not_read() {
    let d = tmp();
    let out = d.path().join("run");
    two_shards(&out, &[]);
    let shard = out.join("shard-1-of-2");
    std::fs::remove_file(shard.join("scores.csv")).unwrap();
    let fifo = shard.join("scores.csv");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let e = fails(&["merge", "--out", s(&out)]);
    assert!(e.contains(&format!("cannot read scores file {}: not a regular file", fifo.display())), "{e}");
    let idx = d.path().join("fifo.txt");
    assert!(std::process::Command::new("mkfifo").arg(&idx).status().unwrap().success());
    let e = fails(&["correlate", "--indices", s(&idx), "--out", s(&d.path().join("x"))]);
    assert!(e.contains("not a regular file"), "{e}");
    let e = fails(&["score", "--space", "nafbee-bert", "--index", "0", "--sentences", s(&idx)]);
    assert!(e.contains("not a regular file"), "{e}");
}

#[test]
fn a_run_json_that_forgot_a_proxy_is_refused_as_corrupt() {
    let d = tmp();
    let out = d.path().join("run");
    correlate(&out, &[]);
    let run = out.join("run.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&run).unwrap()).unwrap();
    v["proxies"] = serde_json::json!({});
    std::fs::write(&run, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let e = fails(&["correlate", "--sample", "6", "--proxy", "synflow", "--quiet", "--out", s(&out)]);
    assert!(
        e.contains("records no settings for the proxy of column 'synflow'") && e.contains("run.json is corrupt"),
        "{e}"
    );
}

#[test]
fn an_empty_bench_shard_is_an_error() {
    let e = fails(&["bench", "--networks", "5", "--shard", "7/8", "--proxy", "params"]);
    assert!(e.contains("shard 7/8 of 5 network(s) is empty: nothing to measure"), "{e}");
}

#[test]
fn input_messages_say_what_is_wrong() {
    let d = tmp();
    // one class folder: not "no class sub-folders"
    let imgs = d.path().join("imgs");
    let class = imgs.join("cat");
    std::fs::create_dir_all(&class).unwrap();
    for i in 0..4 {
        image::RgbImage::from_pixel(32, 32, image::Rgb([i * 40, 0, 0])).save(class.join(format!("{i}.png"))).unwrap();
    }
    let e = fails(&["score", "--index", "1", "--proxy", "snip", "--proxy-batch", "2", "--images", s(&imgs)]);
    assert!(e.contains("every image of the folder is in one class folder"), "{e}");
    // a CIFAR batch beside PNG files: refused, not a silent subset
    let rec: Vec<u8> = std::iter::once(3u8).chain(std::iter::repeat_n(7u8, 3072)).collect();
    std::fs::write(imgs.join("data_batch_1.bin"), rec.repeat(3)).unwrap();
    let e = fails(&["score", "--index", "1", "--images", s(&imgs)]);
    assert!(e.contains("holds both CIFAR .bin batches (1) and image files (4): use one kind per folder"), "{e}");
    // a byte-order mark before the first index
    let f = d.path().join("bom.txt");
    std::fs::write(&f, "\u{feff}5\n6\n").unwrap();
    let v = ok_json(&[
        "correlate",
        "--indices",
        s(&f),
        "--proxy",
        "params",
        "--quiet",
        "--json",
        "--out",
        s(&d.path().join("o")),
    ]);
    assert_eq!(v["n"], 2);
}

#[test]
fn results_inside_the_inputs_are_refused_before_anything_runs() {
    let d = tmp();
    let imgs = d.path().join("imgs");
    std::fs::create_dir_all(imgs.join("a")).unwrap();
    std::fs::create_dir_all(imgs.join("b")).unwrap();
    for (i, c) in ["a", "b", "a", "b"].iter().enumerate() {
        let img = image::RgbImage::from_pixel(32, 32, image::Rgb([i as u8 * 50, 9, 9]));
        img.save(imgs.join(c).join(format!("{i}.png"))).unwrap();
    }
    let out = imgs.join("results");
    let e = fails(&["correlate", "--sample", "4", "--proxy", "params", "--images", s(&imgs), "--out", s(&out)]);
    assert!(e.contains("is inside --images") && e.contains("the run's reports would become its inputs"), "{e}");
    assert!(!out.exists());
    let e = fails(&["search", "--trials", "1", "--networks", "4", "--images", s(&imgs), "--out", s(d.path())]);
    assert!(e.contains("is inside --out"), "{e}");
    let out = rbflex(&[
        "correlate",
        "--sample",
        "4",
        "--proxy",
        "params",
        "--images",
        s(&imgs),
        "--quiet",
        "--out",
        s(&d.path().join("o")),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn proxies_that_read_no_images_take_any_batch() {
    // they read only the batch's shape (their own noise or ones): no image
    // is drawn for them, so a batch beyond the 200-image sample runs
    let d = tmp();
    let args = ["--sample", "2", "--proxy", "l2_norm,params,synflow,naswot", "--proxy-batch", "250"];
    let mut v = vec!["correlate", "--quiet", "--json", "--out", s(d.path())];
    v.extend_from_slice(&args);
    let j = ok_json(&v);
    assert_eq!(j["n"], 2, "{j}");
    // a proxy that reads the images still needs them, and says so
    let e = fails(&["correlate", "--sample", "2", "--proxy", "snip", "--proxy-batch", "250", "--quiet"]);
    assert!(e.contains("asked for a batch of 250 images but embedded cifar10 sample holds only 200"), "{e}");
}

#[test]
fn an_image_folder_is_decoded_only_where_a_run_draws() {
    // 20 good images and one whose header is sound but whose pixels are
    // not: a run that does not draw it never decodes it (memory does not
    // grow with the folder); one that draws it names it
    let d = tmp();
    let imgs = d.path().join("imgs");
    for (k, class) in ["a", "b"].iter().enumerate() {
        std::fs::create_dir_all(imgs.join(class)).unwrap();
        for i in 0..10u32 {
            let img = image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([(x * 7 + i) as u8, (y * 5) as u8, k as u8]));
            img.save(imgs.join(class).join(format!("{i}.png"))).unwrap();
        }
    }
    let bad = imgs.join("b").join("zz-bad.png");
    let noise = image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([(x * 131 + y * 17) as u8, (x ^ y) as u8, 9]));
    noise.save(&bad).unwrap();
    let mut bytes = std::fs::read(&bad).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 40] {
        *b ^= 0x5a;
    }
    std::fs::write(&bad, bytes).unwrap();
    // image seed 0 draws three good images (seed 1 draws the bad one)
    let j = ok_json(&["score", "--index", "1", "--batch", "3", "--image-seed", "0", "--images", s(&imgs), "--json"]);
    assert!(j["score"].as_f64().is_some_and(f64::is_finite), "{j}");
    let e = fails(&["score", "--index", "1", "--batch", "21", "--images", s(&imgs)]);
    assert!(e.contains("cannot decode image") && e.contains("zz-bad.png"), "{e}");
}

/// Runs `rbflex args` under an address-space limit (`ulimit -v`) of 1.5 GB.
fn within_1_5_gb(args: &[&str]) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rbflex"));
    cmd.args(args);
    // SAFETY: setrlimit only changes the child's own limit, before exec
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: 1_500_000_000, rlim_max: libc::RLIM_INFINITY };
            libc::setrlimit(libc::RLIMIT_AS, &lim);
            Ok(())
        });
    }
    cmd.output().unwrap()
}

/// [`within_1_5_gb`], which must fail with one line: its stderr.
fn fails_within_1_5_gb(args: &[&str]) -> String {
    let o = within_1_5_gb(args);
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success() && e.trim().lines().count() == 1 && e.starts_with("error: "), "{args:?}: {e}");
    e
}

#[test]
fn what_cannot_fit_in_memory_is_refused_before_anything_runs() {
    // AZ-NAS at 10,000 noise inputs (80 GB by its measured figure) within
    // 1.5 GB: refused with a batch that fits, before a results folder is made
    let d = tmp();
    let out = d.path().join("o");
    let e = fails_within_1_5_gb(&[
        "correlate",
        "--sample",
        "2",
        "--proxy",
        "az",
        "--proxy-batch",
        "10000",
        "--out",
        s(&out),
    ]);
    assert!(
        e.contains("proxy az_expressivity at --proxy-batch 10000 (an estimate: 2600 bytes per input value) needs about 79.9 GB of memory, more than the"),
        "{e}"
    );
    let fits: u64 = e.rsplit("use --proxy-batch ").next().and_then(|t| t.split(' ').next()).unwrap().parse().unwrap();
    assert!((2..200).contains(&fits), "{e}");
    assert!(!out.exists(), "nothing is written before the refusal");
    let e = fails_within_1_5_gb(&[
        "correlate",
        "--sample",
        "2",
        "--proxy",
        "grasp",
        "--proxy-batch",
        "150",
        "--out",
        s(&out),
    ]);
    assert!(
        e.contains("proxy grasp at --proxy-batch 150 (an estimate: 6000 bytes per input value) needs about 2.8 GB"),
        "{e}"
    );
    // a third of the batch it named runs within the limit (an address-space
    // limit also counts what is mapped but never touched: allocator arenas,
    // thread stacks, so the full batch may not)
    let o = within_1_5_gb(&[
        "correlate",
        "--sample",
        "2",
        "--proxy",
        "az",
        "--proxy-batch",
        &(fits / 3).to_string(),
        "--quiet",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn merge_refuses_a_column_no_proxy_of_the_run_writes() {
    // found by the merge fuzz: a shard's header edited (synflow -> '"')
    // was merged with --allow-missing into a folder correlate then refused
    let d = tmp();
    let out = d.path().join("o");
    two_shards(&out, &[]);
    let scores = out.join("shard-1-of-2").join("scores.csv");
    edit_line(&scores, 0, |f| f[3] = "\"".into());
    let e = fails(&["merge", "--out", s(&out), "--allow-missing"]);
    assert!(e.ends_with(&format!("{} has a column '\"' that no proxy of the run writes: the file was edited; rerun that shard into a fresh folder\n", scores.display())), "{e}");
    assert!(!out.join("scores.csv").exists());
}
