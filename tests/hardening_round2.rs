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
