//! Property-based fuzzing of every parser a user feeds (issue 12): arch
//! strings of every space, NDS JSON, safetensors, `scores.csv` / `run.json`
//! and NATS pickles. Each property feeds arbitrary input and mutations of
//! valid input, and asserts no panic (proptest fails a case that panics) and
//! that every error is one line of bounded length.
//!
//! Cases per property: `PROPTEST_CASES` (default 32, about 30 s for all in
//! CI). `scripts/fuzz.sh TARGET MINUTES` runs one property over and over for
//! a time and counts the executions.

use proptest::prelude::*;
use proptest::test_runner::Config;
use rbflex::benchmarks::nds::{Convention, NdsTable};
use rbflex::dataset::Dataset;
use rbflex::nets::{BnStats, Counter, Net};
use rbflex::spaces::nds::{parse_net, NdsNet};
use rbflex::spaces::{self, Space};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::OnceLock;
use tch::{Kind, Tensor};

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(32);
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// An error a user sees: one line, of bounded length.
fn check_error(e: &anyhow::Error) {
    let s = format!("{e:#}");
    assert!(!s.contains('\n') && !s.contains('\r'), "multi-line error: {s:?}");
    assert!(s.chars().count() < 1200, "error of {} chars: {s:.300}", s.chars().count());
}

fn check<T>(r: anyhow::Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            check_error(&e);
            None
        }
    }
}

/// `base` with characters replaced, inserted or removed at the given places.
fn mutate(base: &str, edits: &[(usize, u8, char)]) -> String {
    let mut chars: Vec<char> = base.chars().collect();
    for (pos, how, c) in edits {
        let at = if chars.is_empty() { 0 } else { pos % (chars.len() + 1) };
        match how % 3 {
            0 if at < chars.len() => chars[at] = *c,
            1 => chars.insert(at, *c),
            _ if at < chars.len() => {
                chars.remove(at);
            }
            _ => chars.push(*c),
        }
    }
    chars.into_iter().collect()
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, char)>> {
    let c = prop_oneof![
        any::<char>(),
        prop::sample::select(vec!['|', '~', '+', '0', '1', '2', '3', '4', '8', ':', '-', '_', '\n', ' ', 'x']),
    ];
    prop::collection::vec((any::<usize>(), any::<u8>(), c), 0..6)
}

fn nds_darts() -> &'static dyn Space {
    static S: OnceLock<rbflex::catalog::Shared<dyn Space>> = OnceLock::new();
    &**S.get_or_init(|| rbflex::catalog::space("nds-darts").unwrap())
}

/// A space by name (nds-darts opened once).
fn space_of(name: &str) -> &'static dyn Space {
    if name == "nds-darts" {
        return nds_darts();
    }
    match rbflex::catalog::space(name).unwrap() {
        rbflex::catalog::Shared::Static(s) => s,
        rbflex::catalog::Shared::Owned(_) => panic!("{name} is not a built-in space"),
    }
}

/// Spaces whose networks are cheap enough to build in a fuzz case.
fn cheap(space: &str) -> bool {
    matches!(space, "nb201" | "nats-sss" | "transnas-micro" | "transnas-macro")
}

fn arch_case(space_name: &str, text: &str) {
    let space = space_of(space_name);
    let index = check(space.index_of(text));
    if let Some(i) = index {
        // an accepted arch names a network of the space, whose own arch maps back to it
        assert!(i < space.len());
        assert_eq!(space.index_of(&space.arch(i).unwrap()).unwrap(), i, "{text:?}");
    }
    check(space.working_set(text, &[3, 3, 32, 32]));
    if cheap(space_name) || (space_name == "nds-darts" && index.is_none()) {
        // nds-darts: an arch that is no record is refused or built small
        if space_name == "nds-darts" {
            let v: Option<Value> = serde_json::from_str(text).ok();
            let small =
                v.as_ref().and_then(|v| parse_net(v, true, 1000).ok()).is_some_and(|n| estimate(&n) < 2_000_000);
            if !small {
                return;
            }
        }
        check(spaces::build_seeded(space, text, space.datasets()[0], 1));
    }
}

fn estimate(n: &NdsNet) -> u64 {
    match n {
        NdsNet::Cell { genotype, width, depth, .. } => {
            rbflex::nets::darts::estimate_params(genotype, *width, *depth, false, 10)
        }
        NdsNet::AnyNet(spec) => spec.estimate_params(10),
    }
}

const SPACES: [&str; 7] =
    ["nb201", "nats-sss", "transnas-micro", "transnas-macro", "nafbee-vgg19", "nafbee-bert", "nds-darts"];

proptest! {
    #![proptest_config(config())]

    /// Arch strings of every space: arbitrary text, and valid archs mutated.
    #[test]
    fn arch_strings(space in prop::sample::select(SPACES.to_vec()), index in any::<usize>(), raw in any::<String>(),
                    ed in edits(), use_raw in any::<bool>()) {
        let space_obj = space_of(space);
        let valid = space_obj.arch(index % space_obj.len()).unwrap();
        let text = if use_raw { raw } else { mutate(&valid, &ed) };
        if !use_raw && ed.is_empty() {
            // an unmutated arch is the space's network at that index
            prop_assert_eq!(space_obj.index_of(&text).unwrap(), index % space_obj.len());
        }
        arch_case(space, &text);
    }
}

// ---- NDS JSON ----

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        prop::sample::select(vec![
            json!(-1),
            json!(0),
            json!(1),
            json!(2),
            json!(3),
            json!(7),
            json!(8),
            json!(16),
            json!(32),
            json!(64),
            json!(100),
            json!(101),
            json!(513),
            json!(100000),
            json!(i64::MAX),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(0.5),
            json!(-0.0),
            json!(1e308),
            json!(null),
            json!(true),
            json!(false),
            json!("none"),
            json!("sep_conv_7x7"),
            json!("res_bottleneck_block"),
            json!([]),
            json!({}),
        ]),
        any::<i64>().prop_map(|v| json!(v)),
        (-20i64..600).prop_map(|v| json!(v)),
        any::<f64>().prop_filter("JSON numbers are finite", |f| f.is_finite()).prop_map(|v| json!(v)),
        any::<String>().prop_map(Value::String),
        prop::collection::vec(-3i64..12, 0..8).prop_map(|v| json!(v)),
        prop::collection::vec(
            (prop::sample::select(rbflex::nets::darts::OPS.to_vec()), -1i64..8).prop_map(|(o, i)| json!([o, i])),
            0..14
        )
        .prop_map(Value::Array),
    ];
    leaf
}

const CELL_PATHS: &[&str] = &[
    "/net/width",
    "/net/depth",
    "/net/aux",
    "/net/drop_prob",
    "/net/genotype",
    "/net/genotype/normal",
    "/net/genotype/normal/0/0",
    "/net/genotype/normal/1/1",
    "/net/genotype/normal/3",
    "/net/genotype/normal_concat",
    "/net/genotype/normal_concat/0",
    "/net/genotype/reduce",
    "/net/genotype/reduce/1/1",
    "/net/genotype/reduce_concat",
    "/net/genotype/reduce_concat/1",
    "/net",
    "/params",
    "/min_test_top1",
    "/test_ep_top1",
    "/test_ep_top1/0",
];

const ANYNET_PATHS: &[&str] = &[
    "/net/block_type",
    "/net/ds",
    "/net/ds/0",
    "/net/ds/1",
    "/net/ws",
    "/net/ws/0",
    "/net/ws/2",
    "/net/ss",
    "/net/ss/0",
    "/net/ss/1",
    "/net/bot_muls",
    "/net/bot_muls/1",
    "/net/num_gs",
    "/net/num_gs/2",
    "/params",
    "/min_test_top1",
    "/last_test_top1",
];

fn cell_record() -> Value {
    json!({"net": {"aux": false, "depth": 4, "width": 16, "drop_prob": 0.0, "genotype": {
        "normal": [["sep_conv_3x3", 0], ["skip_connect", 1], ["conv_7x1_1x7", 2], ["max_pool_3x3", 0]],
        "normal_concat": [2, 3],
        "reduce": [["avg_pool_3x3", 0], ["dil_conv_5x5", 1], ["skip_connect", 0], ["none", 2]],
        "reduce_concat": [2, 3]}},
        "params": 1, "min_test_top1": 10.0, "test_ep_top1": [12.0, 11.0]})
}

fn anynet_record() -> Value {
    json!({"net": {"block_type": "res_bottleneck_block", "bot_muls": [1.0, 0.5, 0.25, 1.0], "ds": [1, 2, 1, 2],
        "num_gs": [1, 2, 4, 1], "ss": [1, 1, 2, 2], "ws": [16, 32, 64, 64]},
        "params": 1, "min_test_top1": 10.0, "last_test_top1": 11.0})
}

fn nds_case(dir: &Path, text: &str) {
    let file = dir.join("fuzz.json");
    std::fs::write(&file, text).unwrap();
    let Some(table) = check(NdsTable::from_file(&file, Convention::Naswot)) else { return };
    for r in &table.records {
        // the ImageNet checks too (no build: 224x224 is not cheap)
        check(parse_net(&r.net, true, 1000));
        let Some(net) = check(parse_net(&r.net, false, 10)) else { continue };
        if estimate(&net) > 2_000_000 {
            continue;
        }
        let Some(built) = check(rbflex::spaces::nds::build_net(&r.net, false, 10)) else { continue };
        // a checked network runs on its native input
        let x = Tensor::rand([2, 3, 32, 32], (Kind::Float, tch::Device::Cpu));
        let _guard = tch::no_grad_guard();
        let _ = built.forward(&x, BnStats::Batch, &mut Counter::default()).unwrap();
    }
}

proptest! {
    #![proptest_config(config())]

    /// NDS files: valid records with fields replaced by arbitrary values
    /// (negative, huge, wrong types), and arbitrary text.
    #[test]
    fn nds_json(anynet in any::<bool>(), changes in prop::collection::vec((any::<usize>(), json_value()), 0..4),
                raw in any::<String>(), use_raw in prop::bool::weighted(0.1)) {
        let dir = tempfile::tempdir().unwrap();
        let text = if use_raw {
            raw
        } else {
            let (mut rec, paths) = if anynet { (anynet_record(), ANYNET_PATHS) } else { (cell_record(), CELL_PATHS) };
            for (p, v) in changes {
                if let Some(slot) = rec.pointer_mut(paths[p % paths.len()]) {
                    *slot = v;
                }
            }
            serde_json::to_string(&json!([rec])).unwrap()
        };
        nds_case(dir.path(), &text);
    }
}

// ---- safetensors ----

const TOP: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";

fn fixture_bytes(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel)).unwrap()
}

fn safetensors_case(dir: &Path, bytes: &[u8], net: &dyn Net) {
    let file = dir.join("fuzz.safetensors");
    std::fs::write(&file, bytes).unwrap();
    if let Some(mut f) = check(rbflex::files::SafetensorsFile::open(&file, "fuzz file")) {
        for t in f.tensors.clone() {
            if t.end - t.start < (64 << 20) {
                check(f.read(&t));
            }
        }
    }
    check(rbflex::inputs::load_input(&file));
    check(net.params().load_safetensors(&file));
}

fn header_entry() -> impl Strategy<Value = (String, Value)> {
    let dtype = prop::sample::select(vec!["F32", "F64", "I64", "U8", "BOOL", "F16", "BF16", "U32", "XX", ""]);
    let dim = prop_oneof![0i64..5, Just(-1i64), Just(i64::MAX), Just(1i64 << 40), 1i64..40];
    (
        prop::sample::select(vec!["x", "y", "classifier.weight", "classifier.bias", "__metadata__", "stem.0.weight"]),
        dtype,
        prop::collection::vec(dim, 0..5),
        prop_oneof![
            Just(None),
            (any::<u32>(), any::<u32>()).prop_map(|(a, b)| Some((a as u64 % 4096, b as u64 % 4096)))
        ],
    )
        .prop_map(|(name, dtype, shape, offsets)| {
            let n: i64 = shape.iter().fold(1i64, |a, d| a.saturating_mul(*d));
            let size = if dtype.ends_with("64") { 8 } else { 4 };
            let (a, b) = offsets.unwrap_or((0, (n.max(0) as u64).saturating_mul(size)));
            (name.to_string(), json!({"dtype": dtype, "shape": shape, "data_offsets": [a, b]}))
        })
}

proptest! {
    #![proptest_config(config())]

    /// Safetensors: arbitrary bytes, headers with random lengths, dtypes,
    /// shapes and offsets, and the fixture files with bytes flipped.
    #[test]
    fn safetensors(kind in 0u8..3, raw in prop::collection::vec(any::<u8>(), 0..300),
                   entries in prop::collection::vec(header_entry(), 0..4), len_delta in -4i64..4,
                   data_len in 0usize..4096, flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6),
                   which in any::<bool>()) {
        thread_local! {
            static NET: Box<dyn Net> = rbflex::spaces::nb201::Nb201.build(TOP, Dataset::Cifar10).unwrap();
        }
        let bytes = match kind {
            0 => raw,
            1 => {
                let header = serde_json::to_string(&Value::Object(entries.into_iter().collect())).unwrap();
                let n = (header.len() as i64 + len_delta).max(0) as u64;
                let mut b = n.to_le_bytes().to_vec();
                b.extend(header.as_bytes());
                b.extend(vec![0u8; data_len]);
                b
            }
            _ => {
                let mut b = fixture_bytes(if which { "nb201/case00/params.safetensors" } else { "nb201/case00/input.safetensors" });
                let header_end = 8 + u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
                for (pos, v) in flips {
                    // mostly the length and the header, sometimes the data
                    let at = if pos % 4 == 0 { pos % b.len() } else { pos % header_end.min(b.len()) };
                    b[at] = v;
                }
                b
            }
        };
        let dir = tempfile::tempdir().unwrap();
        NET.with(|net| safetensors_case(dir.path(), &bytes, net.as_ref()));
    }
}

// ---- scores.csv and run.json ----

fn setting() -> &'static rbflex::run::Setting {
    static S: OnceLock<rbflex::run::Setting> = OnceLock::new();
    S.get_or_init(|| {
        let space: &dyn Space = &rbflex::spaces::nb201::Nb201;
        let opts = rbflex::proxies::Options { gammas: Default::default(), batch: None, channels_last: false };
        let sel = rbflex::proxies::Selection::parse("rbflex", &opts).unwrap();
        let source = rbflex::inputs::Source::open(Dataset::Cifar10, None, None, true).unwrap();
        rbflex::run::Setting::new(space.into(), Dataset::Cifar10, 1, sel, &source, 3).unwrap()
    })
}

fn valid_run_json() -> &'static str {
    static S: OnceLock<String> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        rbflex::run::ScoreCache::open(dir.path(), setting()).unwrap();
        std::fs::read_to_string(dir.path().join("run.json")).unwrap()
    })
}

fn csv_field() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "0",
            "1",
            "-1",
            "15624",
            "15625",
            "1e400",
            "NaN",
            "-inf",
            "",
            "x",
            "\"",
            "1.5",
            "18446744073709551616"
        ])
        .prop_map(String::from),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| v.to_string()),
        Just(TOP.to_string()),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// A results folder's `run.json` and `scores.csv`, through the public
    /// `ScoreCache::open`: valid files mutated, rows of arbitrary fields,
    /// and arbitrary text.
    #[test]
    fn scores_cache(run_edits in edits(), raw_run in any::<String>(), run_kind in 0u8..3,
                    rows in prop::collection::vec(prop::collection::vec(csv_field(), 0..11), 0..5),
                    raw_csv in any::<String>(), csv_raw in prop::bool::weighted(0.2)) {
        let dir = tempfile::tempdir().unwrap();
        let run = match run_kind {
            0 => valid_run_json().to_string(),
            1 => mutate(valid_run_json(), &run_edits),
            _ => raw_run,
        };
        std::fs::write(dir.path().join("run.json"), run).unwrap();
        let csv = if csv_raw {
            raw_csv
        } else {
            let mut text = String::from("index,arch,init_seed,score,logdet_k,logdet_q,la,lq,seconds\n");
            for r in rows {
                text.push_str(&r.join(","));
                text.push('\n');
            }
            text
        };
        std::fs::write(dir.path().join("scores.csv"), csv).unwrap();
        if let Some(cache) = check(rbflex::run::ScoreCache::open(dir.path(), setting())) {
            for i in [0, 1, 15624] {
                let _ = cache.get(i);
            }
        }
    }
}

// ---- NATS pickles ----

fn pickles() -> &'static [Vec<u8>] {
    static P: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    P.get_or_init(|| {
        use std::io::Read;
        let mut out = vec![
            // pickle.dumps({'a': [1, 2.5, None, True], ('x', 300): 'é'}, protocol=4)
            b"\x80\x04\x95\x28\x00\x00\x00\x00\x00\x00\x00\x7d\x94\x28\x8c\x01\x61\x94\x5d\x94\x28\x4b\x01\x47\x40\x04\x00\x00\x00\x00\x00\x00\x4e\x88\x65\x8c\x01\x78\x94\x4d\x2c\x01\x86\x94\x8c\x02\xc3\xa9\x94\x75\x2e".to_vec(),
        ];
        for f in ["NATS-tss-v1_0-3ffb9-simple/000000.pickle.pbz2", "NATS-tss-v1_0-3ffb9-simple/meta.pickle.pbz2",
                  "NATS-sss-v1_0-50262-simple/000001.pickle.pbz2"] {
            let mut b = Vec::new();
            bzip2::read::BzDecoder::new(&fixture_bytes(&format!("nats/{f}"))[..]).read_to_end(&mut b).unwrap();
            out.push(b);
        }
        out
    })
}

proptest! {
    #![proptest_config(config())]

    /// NATS-Bench pickles: arbitrary bytes, and real ones mutated
    /// (bytes replaced, cut short, opcodes inserted).
    #[test]
    fn nats_pickle(raw in prop::collection::vec(any::<u8>(), 0..400), use_raw in prop::bool::weighted(0.2),
                   which in any::<usize>(), flips in prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8)) {
        let bytes = if use_raw {
            raw
        } else {
            let mut b = pickles()[which % pickles().len()].clone();
            for (pos, v, how) in flips {
                let at = pos % b.len().max(1);
                match how {
                    0 if !b.is_empty() => b[at] = v,
                    1 => b.insert(at.min(b.len()), v),
                    _ => b.truncate(at.max(1)),
                }
            }
            b
        };
        check(rbflex::benchmarks::pickle::loads(&bytes));
    }
}

// ---- merge of shard folders ----

/// The files of a 2-way sharded `correlate --sample 6 --proxy synflow` run
/// (shard K's `run.json`, `scores.csv`, `indices.txt`), and the unsharded
/// run's rows by index: (arch, init_seed, synflow).
struct MergeBase {
    shards: Vec<[(&'static str, String); 3]>,
    whole: std::collections::BTreeMap<String, (String, String, f64)>,
}

fn merge_base() -> &'static MergeBase {
    static B: OnceLock<MergeBase> = OnceLock::new();
    B.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let run = |extra: &[&str]| {
            let mut args = vec!["correlate", "--sample", "6", "--proxy", "synflow", "--quiet", "--jobs", "1"];
            args.extend_from_slice(extra);
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_rbflex")).args(&args).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        };
        let (sh, whole) = (dir.path().join("sh"), dir.path().join("whole"));
        for k in ["0/2", "1/2"] {
            run(&["--out", sh.to_str().unwrap(), "--shard", k]);
        }
        run(&["--out", whole.to_str().unwrap()]);
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        let shards = (0..2)
            .map(|k| {
                let d = sh.join(format!("shard-{k}-of-2"));
                ["run.json", "scores.csv", "indices.txt"].map(|f| (f, read(&d.join(f))))
            })
            .collect();
        let whole = merged_rows(&read(&whole.join("scores.csv")));
        assert_eq!(whole.len(), 6);
        MergeBase { shards, whole }
    })
}

/// The rows of a `scores.csv` text by index: (arch, init_seed, synflow).
fn merged_rows(text: &str) -> std::collections::BTreeMap<String, (String, String, f64)> {
    let mut r = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let cols: Vec<String> = r.headers().map(|h| h.iter().map(String::from).collect()).unwrap_or_default();
    let at = |name: &str| cols.iter().position(|c| c == name);
    let mut out = std::collections::BTreeMap::new();
    for rec in r.records().flatten() {
        let field = |name: &str| at(name).and_then(|i| rec.get(i)).unwrap_or("").to_string();
        let v = field("synflow").parse::<f64>().unwrap_or(f64::NAN);
        out.insert(field("index"), (field("arch"), field("init_seed"), v));
    }
    out
}

proptest! {
    #![proptest_config(config())]

    /// `merge` of two shard folders with one file edited (characters, or a
    /// row's field, duplicated or dropped lines), sometimes into a folder
    /// a clean merge already wrote, whose own files are then edited: never
    /// a panic, every error one line, and every accepted merge holds, for
    /// each network, the unsharded run's row (a value column may hold what
    /// the edited file says: a number in a valid row cannot be checked).
    #[test]
    fn merge_shards(target in 0usize..8, how in 0u8..4, text_edits in edits(), line in any::<usize>(),
                    col in any::<usize>(), value in csv_field(), allow_missing in any::<bool>()) {
        let base = merge_base();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        for (k, files) in base.shards.iter().enumerate() {
            let d = out.join(format!("shard-{k}-of-2"));
            std::fs::create_dir_all(&d).unwrap();
            for (name, text) in files {
                std::fs::write(d.join(name), text).unwrap();
            }
        }
        // targets 0-5: a shard's file; 6, 7: the merged folder's own run.json, scores.csv
        let path = if target < 6 {
            out.join(format!("shard-{}-of-2", target / 3)).join(base.shards[0][target % 3].0)
        } else {
            rbflex::merge::run(&out, &[], false).unwrap();
            out.join(["run.json", "scores.csv"][target - 6])
        };
        let old = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<String> = old.lines().map(String::from).collect();
        let at = line % lines.len().max(1);
        let new = match how {
            0 => mutate(&old, &text_edits),
            1 if !lines.is_empty() => {
                let mut fields: Vec<String> = lines[at].split(',').map(String::from).collect();
                let c = col % fields.len();
                fields[c] = value.clone();
                lines[at] = fields.join(",");
                lines.join("\n") + "\n"
            }
            2 if !lines.is_empty() => {
                let l = lines[at].clone();
                lines.insert(at, l);
                lines.join("\n") + "\n"
            }
            _ if !lines.is_empty() => {
                lines.remove(at);
                lines.join("\n") + "\n"
            }
            _ => old.clone(),
        };
        std::fs::write(&path, &new).unwrap();
        if check(rbflex::merge::run(&out, &[], allow_missing)).is_some() {
            let merged = merged_rows(&std::fs::read_to_string(out.join("scores.csv")).unwrap());
            let edited = if path.ends_with("scores.csv") { merged_rows(&new) } else { Default::default() };
            prop_assert!(allow_missing || merged.len() == base.whole.len(), "{} of 6 rows merged", merged.len());
            for (index, (arch, seed, v)) in &merged {
                let Some((warch, wseed, wv)) = base.whole.get(index) else {
                    return Err(TestCaseError::fail(format!("index {index} is not a candidate")));
                };
                prop_assert_eq!((arch, seed), (warch, wseed), "index {}", index);
                let from_edit = edited.get(index).is_some_and(|e| e.2.to_bits() == v.to_bits() || (e.2.is_nan() && v.is_nan()));
                prop_assert!(v.to_bits() == wv.to_bits() || from_edit, "index {index}: {v} vs {wv}");
            }
        }
    }
}
