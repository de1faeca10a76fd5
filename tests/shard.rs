//! Sharded runs end to end: shards merged equal the unsharded run bit for
//! bit (correlate and search), `--shard auto` reads Slurm's and Kubernetes'
//! variables, a killed shard resumes, and a merge with a missing, corrupt or
//! foreign shard names it and writes nothing.

mod common;

use common::{fails, ok_json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ENV_VARS: [&str; 5] = [
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_STEP",
    "JOB_COMPLETION_INDEX",
];

/// The binary with no array-job variables but `env`.
fn command(args: &[&str], env: &[(&str, String)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rbflex"));
    c.args(args);
    for v in ENV_VARS {
        c.env_remove(v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

fn succeeded(out: Output, what: &str) -> serde_json::Value {
    assert!(out.status.success(), "{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect()
}

/// `scores.csv` rows without the timing columns, by index.
fn score_rows(dir: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(dir.join("scores.csv")).unwrap();
    let mut lines = text.lines().map(|l| l.split(',').map(String::from).collect::<Vec<_>>());
    let header = lines.next().unwrap();
    let keep: Vec<usize> = (0..header.len()).filter(|i| !header[*i].ends_with("seconds")).collect();
    let mut rows: Vec<Vec<String>> = lines.map(|r| keep.iter().map(|i| r[*i].clone()).collect()).collect();
    rows.sort_by_key(|r| r[0].parse::<usize>().unwrap());
    rows.insert(0, keep.iter().map(|i| header[*i].clone()).collect());
    rows
}

fn indices_of(csv: &Path) -> Vec<usize> {
    let text = std::fs::read_to_string(csv).unwrap();
    text.lines().skip(1).filter_map(|l| l.split(',').next()?.parse().ok()).collect()
}

fn share(dir: &Path) -> Vec<usize> {
    let text = std::fs::read_to_string(dir.join("indices.txt")).unwrap();
    text.lines().filter(|l| !l.starts_with('#')).map(|l| l.parse().unwrap()).collect()
}

/// A report without its wall times and file paths.
fn report(dir: &Path, name: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap();
    for k in ["seconds", "worker_seconds", "search_seconds", "trial_worker_seconds", "csv", "plot"] {
        v.as_object_mut().unwrap().remove(k);
    }
    v
}

/// Runs shards 0..n of `args` at once (each one job) into `out`.
fn run_shards(args: &[&str], out: &Path, n: usize) -> Vec<serde_json::Value> {
    let children: Vec<_> = (0..n)
        .map(|k| {
            let spec = format!("{k}/{n}");
            let mut a = args.to_vec();
            a.extend(["--out", out.to_str().unwrap(), "--shard", &spec, "--jobs", "1", "--json"]);
            command(&a, &[]).stdout(std::process::Stdio::piped()).spawn().unwrap()
        })
        .collect();
    children.into_iter().map(|c| succeeded(c.wait_with_output().unwrap(), "a shard")).collect()
}

#[test]
fn sharded_correlate_merges_into_the_unsharded_run() {
    let d = tempfile::tempdir().unwrap();
    let (whole, sharded) = (d.path().join("whole"), d.path().join("sharded"));
    let args = ["correlate", "--sample", "40", "--seed", "3"];
    let mut a = args.to_vec();
    a.extend(["--out", whole.to_str().unwrap(), "--json"]);
    let w = ok_json(&a);

    let reps = run_shards(&args, &sharded, 4);
    for (k, r) in reps.iter().enumerate() {
        assert_eq!(r["shard"], format!("{k}/4"));
        assert_eq!(
            (r["networks"].as_u64(), r["assigned"].as_u64(), r["scored"].as_u64()),
            (Some(40), Some(10), Some(10))
        );
    }
    // each shard wrote only in its own folder: the shares partition the sample
    let folders: Vec<String> = (0..4).map(|k| format!("shard-{k}-of-4")).collect();
    assert_eq!(names(&sharded), folders.iter().cloned().collect());
    let mut all = Vec::new();
    for f in &folders {
        let dir = sharded.join(f);
        assert_eq!(names(&dir), [".lock", "indices.txt", "run.json", "scores.csv"].map(String::from).into());
        let mut scored = indices_of(&dir.join("scores.csv"));
        scored.sort_unstable();
        assert_eq!(scored, share(&dir), "{f}");
        all.extend(scored);
    }
    all.sort_unstable();
    let mut sample = indices_of(&whole.join("scores.csv"));
    sample.sort_unstable();
    assert_eq!(all, sample);

    let m = ok_json(&["merge", "--out", &s(&sharded), "--json"]);
    assert_eq!((m["shards"].as_u64(), m["scored"].as_u64(), m["rows"].as_u64()), (Some(4), Some(40), Some(40)));
    assert_eq!(m["missing"], serde_json::json!([]));
    // the ordinary command on the merged folder scores nothing again
    let merged_scores = std::fs::read(sharded.join("scores.csv")).unwrap();
    let mut a = args.to_vec();
    a.extend(["--out", sharded.to_str().unwrap(), "--json"]);
    let v = ok_json(&a);
    assert_eq!(std::fs::read(sharded.join("scores.csv")).unwrap(), merged_scores);
    assert!(v["seconds"].as_f64().unwrap() < 0.05, "{v}");
    assert_eq!(v["kendall"], w["kendall"]);

    // identical to the unsharded run: settings, every score bit for bit, report
    assert_eq!(std::fs::read(whole.join("run.json")).unwrap(), std::fs::read(sharded.join("run.json")).unwrap());
    assert_eq!(score_rows(&whole), score_rows(&sharded));
    assert_eq!(
        std::fs::read(whole.join("correlate.csv")).unwrap(),
        std::fs::read(sharded.join("correlate.csv")).unwrap()
    );
    assert_eq!(report(&whole, "correlate.json"), report(&sharded, "correlate.json"));

    // merging again changes nothing
    ok_json(&["merge", "--out", &s(&sharded), "--json"]);
    assert_eq!(std::fs::read(sharded.join("scores.csv")).unwrap(), merged_scores);
}

#[test]
fn sharded_search_from_array_job_variables_picks_as_the_unsharded_one() {
    let d = tempfile::tempdir().unwrap();
    let (whole, sharded) = (d.path().join("whole"), d.path().join("sharded"));
    let args = ["search", "--trials", "3", "--networks", "12", "--seed", "5"];
    let mut a = args.to_vec();
    a.extend(["--out", whole.to_str().unwrap(), "--json"]);
    ok_json(&a);

    // shards 0-2: a Slurm array numbered from 1; shard 3: a Kubernetes Indexed Job
    let mut a = args.to_vec();
    a.extend(["--out", sharded.to_str().unwrap(), "--json", "--shard", "auto"]);
    for k in 0..3 {
        let env = [
            ("SLURM_ARRAY_TASK_ID", (k + 1).to_string()),
            ("SLURM_ARRAY_TASK_COUNT", "4".into()),
            ("SLURM_ARRAY_TASK_MIN", "1".into()),
        ];
        let r = succeeded(command(&a, &env).output().unwrap(), "a Slurm shard");
        assert_eq!(r["shard"], format!("{k}/4"));
    }
    let mut k8s = a.clone();
    k8s.extend(["--shards", "4"]);
    let r = succeeded(command(&k8s, &[("JOB_COMPLETION_INDEX", "3".into())]).output().unwrap(), "a Kubernetes shard");
    assert_eq!(r["shard"], "3/4");

    let distinct = r["networks"].as_u64().unwrap();
    let m = ok_json(&["merge", "--out", &s(&sharded), "--json"]);
    assert_eq!(m["scored"].as_u64(), Some(distinct));
    let before = std::fs::read(sharded.join("scores.csv")).unwrap();
    let mut a = args.to_vec();
    a.extend(["--out", sharded.to_str().unwrap(), "--json"]);
    let v = ok_json(&a);
    assert_eq!(v["networks_scored"].as_u64(), Some(distinct));
    assert_eq!(std::fs::read(sharded.join("scores.csv")).unwrap(), before, "the search scored again");
    assert_eq!(report(&whole, "search.json"), report(&sharded, "search.json"));
    assert_eq!(score_rows(&whole), score_rows(&sharded));
}

#[test]
fn a_killed_shard_resumes_without_scoring_twice() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let dir = out.join("shard-0-of-2");
    let args = ["correlate", "--sample", "400", "--seed", "2", "--out", out.to_str().unwrap(), "--shard", "0/2"];
    let mut a = args.to_vec();
    a.extend(["--jobs", "1", "--quiet"]);
    let mut child = command(&a, &[]).spawn().unwrap();
    let rows = || std::fs::read_to_string(dir.join("scores.csv")).map(|t| t.lines().count().saturating_sub(1));
    let t0 = std::time::Instant::now();
    while rows().unwrap_or(0) < 20 && t0.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no chance to tidy up
    child.wait().unwrap();
    let done = rows().unwrap();
    assert!((20..200).contains(&done), "killed after {done} of 200 rows");

    let mut a = args.to_vec();
    a.push("--json");
    let r = succeeded(command(&a, &[]).output().unwrap(), "the resumed shard");
    let scored = r["scored"].as_u64().unwrap() as usize;
    assert_eq!(r["assigned"].as_u64(), Some(200));
    // a torn last line is the only row that may be scored again
    assert!(scored == 200 - done || scored == 201 - done, "{scored} scored after {done} rows");
    let mut idx = indices_of(&dir.join("scores.csv"));
    idx.sort_unstable();
    assert_eq!(idx, share(&dir), "every network of the share exactly once");
}

/// Three shards of a 12-network correlation, merged into nothing yet.
fn three_shards(root: &Path) -> (PathBuf, [&'static str; 5]) {
    let out = root.join("run");
    let args = ["correlate", "--sample", "12", "--seed", "7"];
    run_shards(&args, &out, 3);
    (out, args)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// `merge --out DIR` on a changed copy of `base` fails with an error that
/// starts with `want` (`{D}`: the copy) and writes nothing.
fn merge_fails(base: &Path, case: &str, change: impl Fn(&Path), want: &str) {
    let dir = base.parent().unwrap().join(case);
    copy_dir(base, &dir);
    change(&dir);
    let before = names(&dir);
    let e = fails(&["merge", "--out", &s(&dir)]);
    let want = format!("error: {}", want.replace("{D}", &s(&dir)));
    assert!(e.trim().starts_with(&want), "{case}: {e}\nwanted: {want}");
    assert_eq!(names(&dir), before, "{case}: the merge wrote something");
}

#[test]
fn merge_names_missing_corrupt_and_foreign_shards_and_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let (base, _) = three_shards(d.path());
    let shard0 = share(&base.join("shard-0-of-3"));

    merge_fails(
        &base,
        "missing",
        |d| std::fs::remove_dir_all(d.join("shard-1-of-3")).unwrap(),
        "shard 1/3 of correlate is missing: no shard-1-of-3 among the folders merged ({D}/shard-0-of-3, {D}/shard-2-of-3); run it (or merge with --allow-missing)",
    );
    let edit = |d: &Path, f: &str, edit: &dyn Fn(String) -> String| {
        let p = d.join(f);
        std::fs::write(&p, edit(std::fs::read_to_string(&p).unwrap())).unwrap();
    };
    merge_fails(
        &base,
        "corrupt-row",
        |d| {
            edit(d, "shard-2-of-3/scores.csv", &|t| {
                let mut lines: Vec<String> = t.lines().map(String::from).collect();
                let mut cells: Vec<&str> = lines[1].split(',').collect();
                cells[2] = "x";
                lines[1] = cells.join(",");
                lines.join("\n") + "\n"
            })
        },
        "{D}/shard-2-of-3/scores.csv line 2: init_seed 'x' is not a number",
    );
    merge_fails(
        &base,
        "corrupt-header",
        |d| edit(d, "shard-1-of-3/run.json", &|t| t[..t.len() / 2].to_string()),
        "{D}/shard-1-of-3/run.json is corrupt: EOF while parsing",
    );
    let row = |i: usize| format!("\n{i},");
    merge_fails(
        &base,
        "incomplete",
        |d| {
            edit(d, "shard-0-of-3/scores.csv", &|t| {
                let start = t.find(&row(shard0[1])).unwrap();
                let end = t[start + 1..].find('\n').unwrap() + start + 1;
                format!("{}{}", &t[..start], &t[end..])
            })
        },
        &format!(
            "shard 0/3 ({{D}}/shard-0-of-3) lacks 1 of its 4 networks ({}): rerun it (it resumes where it stopped), then merge again",
            shard0[1]
        ),
    );
    merge_fails(
        &base,
        "torn",
        |d| {
            edit(d, "shard-2-of-3/scores.csv", &|t| {
                t.trim_end().rsplit_once('\n').unwrap().0.to_string() + "\n123,|nor_co"
            })
        },
        "shard 2/3 ({D}/shard-2-of-3) lacks 1 of its 4 networks",
    );
    merge_fails(
        &base,
        "disagree",
        |d| {
            // shard 1 also holds a row of shard 0's, with another score: a row outside its share
            let t0 = std::fs::read_to_string(d.join("shard-0-of-3/scores.csv")).unwrap();
            let line = t0.lines().nth(1).unwrap();
            let cells: Vec<&str> = line.split(',').collect();
            let changed = format!("{},{},{},12345,{}", cells[0], cells[1], cells[2], cells[4..].join(","));
            edit(d, "shard-1-of-3/scores.csv", &|t| format!("{t}{changed}\n"));
        },
        "{D}/shard-1-of-3/scores.csv line ",
    );
    merge_fails(
        &base,
        "edited-share",
        |d| edit(d, "shard-1-of-3/indices.txt", &|t| t.replacen('\n', "\n0\n", 1).trim_end().rsplit_once('\n').unwrap().0.to_string()),
        "{D}/shard-1-of-3/indices.txt is not shard 1/3's share of correlate --sample 12 (it does not match {D}/shard-1-of-3/run.json): the file was changed; rerun the shard",
    );
}

#[test]
fn merge_refuses_shards_of_other_runs() {
    let d = tempfile::tempdir().unwrap();
    let (base, args) = three_shards(d.path());
    let shard = |k: usize| s(&base.join(format!("shard-{k}-of-3")));
    let out = d.path().join("merged");
    let merge = |dirs: &[String]| {
        fails(
            &[&["merge", "--out", out.to_str().unwrap()], &*dirs.iter().map(String::as_str).collect::<Vec<_>>()]
                .concat(),
        )
    };
    // shard 2 of another batch size, then of another sample
    let other = d.path().join("other");
    ok_json(
        &[args.as_slice(), &["--batch", "4", "--shard", "2/3", "--out", other.to_str().unwrap(), "--json"]].concat(),
    );
    let foreign = s(&other.join("shard-2-of-3"));
    assert_eq!(
        merge(&[shard(0), shard(1), foreign.clone()]).trim(),
        format!("error: shards {} and {foreign} are of different runs: batch is 3 there, 4 here (see their run.json); merge shards of one run", shard(0))
    );
    let mut other_sample = args.to_vec();
    other_sample[2] = "13";
    let other = d.path().join("other2");
    ok_json(&[other_sample.as_slice(), &["--shard", "2/3", "--out", other.to_str().unwrap(), "--json"]].concat());
    let e = merge(&[shard(0), shard(1), s(&other.join("shard-2-of-3"))]);
    assert!(
        e.contains(
            "are of different runs: the candidates are --sample 12 (12 networks) there, --sample 13 (13 networks) here"
        ),
        "{e}"
    );
    assert_eq!(
        merge(&[shard(0), shard(1), shard(0)]).trim(),
        format!("error: two folders hold shard 0/3: {} and {}; merge one of them", shard(0), shard(0))
    );
    let e = merge(&[s(&base)]);
    assert!(
        e.starts_with(&format!("error: {} is not a shard folder: cannot read {}/run.json", s(&base), s(&base))),
        "{e}"
    );
    assert!(!out.exists(), "a refused merge wrote {}", out.display());

    // --allow-missing merges what there is; the ordinary command scores the rest
    assert!(merge(&[shard(0), shard(1)]).contains("shard 2/3 of correlate is missing"));
    let m = ok_json(&["merge", "--out", &s(&out), &shard(0), &shard(1), "--allow-missing", "--json"]);
    assert_eq!((m["scored"].as_u64(), m["missing_shards"].clone()), (Some(8), serde_json::json!([2])));
    let mut a = args.to_vec();
    a.extend(["--out", out.to_str().unwrap(), "--json"]);
    assert_eq!(ok_json(&a)["n"], 12);
    let e = merge(&[s(&out)]);
    assert_eq!(
        e.trim(),
        format!("error: {}/run.json records no shard: {} is not a folder that --shard wrote", s(&out), s(&out))
    );
    // merged into a folder that holds the whole run: its run.json must agree
    assert_eq!(
        merge(&[foreign, "--allow-missing".into()]).trim(),
        format!("error: {} holds another run: batch is 3 there, 4 here (there: {}/run.json; here: the shards); merge into another --out", s(&out), s(&out))
    );
}

#[test]
fn shard_options_and_folders_are_checked() {
    let d = tempfile::tempdir().unwrap();
    let o = d.path().join("o");
    let args = ["correlate", "--sample", "12", "--out", o.to_str().unwrap()];
    let err = |extra: &[&str], env: &[(&str, String)]| {
        let out = command(&[args.as_slice(), extra].concat(), env).output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).trim().to_string()
    };
    assert_eq!(
        err(&["--shard", "4/4"], &[]),
        "error: --shard '4/4': shard 4 of 4 does not exist (shards are numbered 0 to 3)"
    );
    assert_eq!(
        err(&["--shard", "1-4"], &[]),
        "error: --shard '1-4': expected K/N (shard K of N, from 0, e.g. 0/4) or auto"
    );
    assert_eq!(
        err(&["--shard", "auto"], &[]),
        "error: --shard auto: no array-job index in the environment (SLURM_ARRAY_TASK_ID of a Slurm array job, JOB_COMPLETION_INDEX of a Kubernetes Indexed Job); give --shard K/N"
    );
    assert_eq!(
        err(&["--shard", "auto"], &[("JOB_COMPLETION_INDEX", "1".into())]),
        "error: JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job) but not the number of shards: give --shards N (the Job's completions)"
    );
    assert!(!o.exists(), "a refused shard wrote {}", o.display());

    // a shard folder belongs to its shard: the whole run or another sample is refused there
    ok_json(&[args.as_slice(), &["--shard", "0/3", "--json"]].concat());
    let shard_dir = s(&o.join("shard-0-of-3"));
    let e = fails(&["correlate", "--sample", "12", "--out", &shard_dir]);
    assert!(e.contains("holds scores computed with other settings: shard was {") && e.contains("(now none)"), "{e}");
    let e = fails(&["correlate", "--sample", "13", "--out", o.to_str().unwrap(), "--shard", "0/3"]);
    assert!(e.contains("holds scores computed with other settings: shard was {"), "{e}");

    // bench scores its share of the networks
    let v = ok_json(&["bench", "--networks", "10", "--shard", "1/3", "--json"]);
    assert_eq!((v["networks"].as_u64(), v["shard"].as_str()), (Some(3), Some("1/3")));
}
