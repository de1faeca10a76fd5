//! Hostile inputs (issue 12): each is refused with one clear line naming the
//! file, field and value, never a panic, a runaway or a silent conversion.

mod common;

use common::{fails, ok_json, rbflex};
use std::path::Path;
use std::time::{Duration, Instant};
use tch::{Kind, Tensor};

const TOP: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";

const GENOTYPE: &str = r#"{"normal": [["sep_conv_3x3", 0], ["skip_connect", 1]], "normal_concat": [2], "reduce": [["max_pool_3x3", 0], ["dil_conv_3x3", 1]], "reduce_concat": [2]}"#;

fn fixture(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel).display().to_string()
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn cell_net(width: &str, depth: &str, extra: &str) -> String {
    format!(r#"{{"aux": false, "depth": {depth}, "width": {width}, "genotype": {GENOTYPE}{extra}}}"#)
}

fn nds_score(arch: &str) -> String {
    fails(&["score", "--space", "nds-darts", "--arch", arch])
}

#[test]
fn nds_sizes_are_bounded_before_building() {
    let t0 = Instant::now();
    assert_eq!(nds_score(&cell_net("32", "-5", "")), "error: NDS net: depth -5 out of range (1..=64)\n");
    assert_eq!(nds_score(&cell_net("32", "100000000", "")), "error: NDS net: depth 100000000 out of range (1..=64)\n");
    for w in ["0", "1", "7", "100000"] {
        assert_eq!(
            nds_score(&cell_net(w, "6", "")),
            format!("error: NDS net: width {w} out of range (an even number in 8..=512)\n")
        );
    }
    assert_eq!(nds_score(&cell_net("32.5", "6", "")), "error: NDS net: width 32.5 is not an integer in 8..=512\n");
    let empty = cell_net("32", "6", "").replace(r#""normal_concat": [2]"#, r#""normal_concat": []"#);
    assert_eq!(
        nds_score(&empty),
        "error: NDS net: genotype normal_concat has 0 states; expected 1 to 3 (the cell's states)\n"
    );
    let heavy = r#"{"aux": false, "depth": 64, "width": 512, "genotype": {"normal": [["conv_7x1_1x7", 0], ["conv_7x1_1x7", 1], ["conv_7x1_1x7", 2], ["conv_7x1_1x7", 1]], "normal_concat": [2, 3], "reduce": [["conv_7x1_1x7", 0], ["conv_7x1_1x7", 1]], "reduce_concat": [2]}}"#;
    let e = nds_score(heavy);
    assert!(e.starts_with("error: NDS net: width 512 and depth 64 make about "), "{e}");
    assert!(e.ends_with("more than the limit of 1073741824 (4 GiB)\n"), "{e}");
    let anynet = |ds: &str, ws: &str, ss: &str| {
        format!(
            r#"{{"block_type": "res_basic_block", "bot_muls": [], "ds": {ds}, "num_gs": [], "ss": {ss}, "ws": {ws}}}"#
        )
    };
    let score_any = |net: &str| fails(&["score", "--space", "nds-resnet-lr-wd", "--arch", net]);
    assert_eq!(
        score_any(&anynet("[1, 2, -3, 2, 2]", "[32, 32, 64, 128, 256]", "[4, 1, 2, 2, 2]")),
        "error: AnyNet: ds[2] = -3 out of range (1..=64)\n"
    );
    assert_eq!(
        score_any(&anynet("[1, 2, 3, 2, 2]", "[32, 0, 64, 128, 256]", "[4, 1, 2, 2, 2]")),
        "error: AnyNet: ws[1] = 0 out of range (an even number in 8..=4096)\n"
    );
    assert_eq!(
        score_any(&anynet("[1, 2, 3, 2, 2]", "[32, 32, 64, 128, 256]", "[4, 1, 3, 2, 2]")),
        "error: AnyNet: ss[2] = 3 out of range (one of 1, 2, 4, 8)\n"
    );
    let e = score_any(&anynet("[1, 64, 64, 64, 64]", "[32, 4096, 4096, 4096, 4096]", "[4, 1, 2, 2, 2]"));
    assert!(e.contains("more than the limit of 1073741824 (4 GiB)"), "{e}");
    let bottleneck = r#"{"block_type": "res_bottleneck_block", "bot_muls": [1, 0.25, 0.5, 0.25], "ds": [1, 2, 2, 2], "num_gs": [1, 3, 4, 2], "ss": [8, 1, 2, 2], "ws": [64, 16, 128, 128]}"#;
    assert_eq!(
        fails(&["score", "--space", "nds-resnext-a", "--arch", bottleneck]),
        "error: AnyNet: stage 1: bottleneck width 4 (ws 16 x bot_muls 0.25) is not a positive multiple of num_gs 3\n"
    );
    assert!(t0.elapsed() < Duration::from_secs(60), "refusals must not build anything");
}

#[test]
fn bad_nds_records_are_named_when_the_file_is_read() {
    let d = tmp();
    let rec = |net: &str, top1: &str| {
        format!(r#"{{"net": {net}, "params": 1, "min_test_top1": {top1}, "test_ep_top1": [12.0]}}"#)
    };
    let file = d.path().join("cifar.json");
    let f = file.to_str().unwrap();
    let good = cell_net("8", "3", "");
    std::fs::write(&file, format!("[{}, {}]", rec(&good, "10.0"), rec(&cell_net("0", "3", ""), "10.0"))).unwrap();
    let o = d.path().join("out");
    let args =
        ["correlate", "--space", "nds-darts", "--benchmark", f, "--all", "--quiet", "--out", o.to_str().unwrap()];
    assert_eq!(
        fails(&args),
        format!("error: {f}: record 1: NDS net: width 0 out of range (an even number in 8..=512)\n")
    );

    std::fs::write(&file, format!("[{}, {}]", rec(&good, "10.0"), rec(&good, "130.5"))).unwrap();
    assert_eq!(
        fails(&args),
        format!("error: {f}: record 1: min_test_top1 130.5 out of range (a top-1 error in 0..=100 %)\n")
    );
    std::fs::write(&file, format!("[{}, {}]", rec(&good, "10.0"), rec(&good, "NaN"))).unwrap();
    let e = fails(&args);
    assert!(e.contains("cifar.json is not valid JSON at line 1 column") && e.ends_with(": expected value\n"), "{e}");
    assert!(!e.contains("truncated"), "{e}");
    std::fs::write(&file, r#"[{"params": 1, "min_test_top1": 3.0}]"#).unwrap();
    assert_eq!(fails(&args), format!("error: {f}: record 0 has no field 'net'\n"));

    // training-only fields: one note per process, the scores unchanged
    let aux = cell_net("8", "3", "").replace(r#""aux": false"#, r#""aux": true, "drop_prob": 0.2"#);
    std::fs::write(&file, format!("[{}, {}]", rec(&aux, "10.0"), rec(&aux, "11.0"))).unwrap();
    let out = rbflex(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("note: NDS 'aux: true' and 'drop_prob' > 0 only act in training").count(), 1, "{err}");
}

fn write_params(tensors: &[(String, Tensor)], path: &Path) {
    Tensor::write_safetensors(tensors, path).unwrap();
}

#[test]
fn params_and_inputs_keep_their_dtype_or_are_refused() {
    let d = tmp();
    let params = fixture("nb201/case00/params.safetensors");
    let mut tensors = Tensor::read_safetensors(&params).unwrap();
    for (n, t) in tensors.iter_mut() {
        if n == "classifier.weight" {
            *t = t.to_kind(Kind::Int64);
        }
    }
    let ints = d.path().join("ints.safetensors");
    write_params(&tensors, &ints);
    assert_eq!(
        fails(&["score", "--arch", TOP, "--params", ints.to_str().unwrap()]),
        format!(
            "error: params file {}: tensor 'classifier.weight' is I64, expected float32 (F32; F64 is converted)\n",
            ints.display()
        )
    );
    // float64 parameters are rounded to float32, as load_state_dict does
    let mut tensors = Tensor::read_safetensors(&params).unwrap();
    for (_, t) in tensors.iter_mut() {
        *t = t.to_kind(Kind::Double);
    }
    let doubles = d.path().join("doubles.safetensors");
    write_params(&tensors, &doubles);
    let input = fixture("nb201/case00/input.safetensors");
    let a = ok_json(&["score", "--arch", TOP, "--input", &input, "--params", &params, "--json"]);
    let b = ok_json(&["score", "--arch", TOP, "--input", &input, "--params", doubles.to_str().unwrap(), "--json"]);
    assert_eq!(a["score"], b["score"]);

    let x = Tensor::read_safetensors(&input).unwrap().into_iter().find(|(n, _)| n == "x").unwrap().1;
    for (kind, name) in [(Kind::Double, "F64"), (Kind::Int, "I32"), (Kind::Uint8, "U8")] {
        let p = d.path().join(format!("x_{name}.safetensors"));
        Tensor::write_safetensors(&[("x", x.to_kind(kind))], &p).unwrap();
        assert_eq!(
            fails(&["score", "--arch", TOP, "--input", p.to_str().unwrap()]),
            format!("error: input file {}: tensor 'x' is {name}, expected float32 (F32)\n", p.display())
        );
    }
}

/// A safetensors file from a raw header and data.
fn raw_safetensors(path: &Path, header: &str, data_len: usize) {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend(vec![0u8; data_len]);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn reads_are_bounded_by_the_file_and_its_header() {
    let t0 = Instant::now();
    for what in ["--params", "--input"] {
        let e = fails(&["score", "--arch", TOP, what, "/dev/zero"]);
        let name = if what == "--params" { "params" } else { "input" };
        assert_eq!(e, format!("error: cannot read {name} file /dev/zero: not a regular file\n"));
    }
    let d = tmp();
    // a 1 GiB sparse file: refused from its first 8 bytes
    let sparse = d.path().join("sparse.safetensors");
    std::fs::File::create(&sparse).unwrap().set_len(1 << 30).unwrap();
    let e = fails(&["score", "--arch", TOP, "--params", sparse.to_str().unwrap()]);
    assert!(e.contains("sparse.safetensors: the header is not valid JSON at line 1 column 0"), "{e}");
    // a header longer than the file
    let long = d.path().join("long.safetensors");
    let mut bytes = (1u64 << 40).to_le_bytes().to_vec();
    bytes.extend(b"{}");
    std::fs::write(&long, bytes).unwrap();
    let e = fails(&["score", "--arch", TOP, "--input", long.to_str().unwrap()]);
    assert!(e.contains("the header length 1099511627776 is more than the file's 2 remaining bytes"), "{e}");
    // offsets past the data, and offsets that do not match the shape
    let bad = d.path().join("bad.safetensors");
    raw_safetensors(&bad, r#"{"x": {"dtype": "F32", "shape": [2, 3, 4, 4], "data_offsets": [0, 384]}}"#, 100);
    let e = fails(&["score", "--arch", TOP, "--input", bad.to_str().unwrap()]);
    assert!(e.contains("tensor 'x': data_offsets [0, 384] are outside the file's 100 data bytes (truncated?)"), "{e}");
    raw_safetensors(&bad, r#"{"x": {"dtype": "F32", "shape": [2, 3, 4, 4], "data_offsets": [0, 100]}}"#, 100);
    let e = fails(&["score", "--arch", TOP, "--input", bad.to_str().unwrap()]);
    assert!(e.contains("tensor 'x': data_offsets [0, 100] hold 100 bytes, but F32 [2, 3, 4, 4] needs 384"), "{e}");
    raw_safetensors(&bad, r#"{"x": {"dtype": "F32", "shape": [-2, 3], "data_offsets": [0, 0]}}"#, 0);
    let e = fails(&["score", "--arch", TOP, "--input", bad.to_str().unwrap()]);
    assert!(e.contains("tensor 'x': 'shape' is not a list of non-negative integers"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(30), "bounded reads must be quick");
}

#[test]
fn image_folders_do_not_loop_and_errors_say_things_once() {
    let d = tmp();
    for i in 0..3u8 {
        image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([x as u8 * 8, y as u8 * i, 100]))
            .save(d.path().join(format!("{i}.png")))
            .unwrap();
    }
    // a symlink cycle: the folder links to itself
    std::os::unix::fs::symlink(d.path(), d.path().join("loop")).unwrap();
    let v = ok_json(&["score", "--arch", TOP, "--images", d.path().to_str().unwrap(), "--batch", "3", "--json"]);
    assert!(common::num(&v["score"]).is_finite());
    let e = fails(&["score", "--arch", TOP, "--images", d.path().to_str().unwrap(), "--batch", "4"]);
    assert!(e.contains("holds only 3"), "{e}");

    let t0 = Instant::now();
    let e = fails(&["score", "--arch", TOP, "--images", "/dev"]);
    assert!(e.contains("holds no images"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(30));

    std::fs::write(d.path().join("broken.png"), b"not a png").unwrap();
    let e = fails(&["score", "--arch", TOP, "--images", d.path().to_str().unwrap()]);
    assert!(e.contains("cannot decode image") && e.contains("broken.png"), "{e}");
    assert_eq!(e.matches("Invalid PNG signature").count(), 1, "{e}");
}

#[test]
fn messages_say_what_the_user_can_type() {
    assert_eq!(
        fails(&["score", "--arch", TOP, "--dataset", "imagenet"]),
        "error: space 'nb201' has no dataset imagenet (it has: cifar10, cifar100, imagenet16-120)\n"
    );
    let long = "x".repeat(10_000);
    for space in ["nb201", "nats-sss", "transnas-micro", "nafbee-vgg19", "nds-darts"] {
        let e = fails(&["score", "--space", space, "--arch", &long]);
        assert!(e.len() < 400, "{space}: {} chars: {}", e.len(), &e[..400]);
    }
    let e = fails(&["score", "--space", "nb201", "--arch", &long]);
    assert!(e.contains(&format!("'{}... (10000 chars)'", "x".repeat(120))), "{e}");
    // a multi-line arch stays one line
    let e = fails(&["score", "--space", "nats-sss", "--arch", "8:8\n:8:8"]);
    assert!(e.contains(r"8:8\n:8:8"), "{e}");

    for g in ["1e-320", "0", "-1", "inf", "NaN"] {
        let e = fails(&["score", "--arch", TOP, &format!("--gamma-k={g}")]);
        assert!(
            e.starts_with("error: --gamma-k must be a positive number (a normal float, 2.2250738585072014e-308"),
            "{e}"
        );
    }
    let e = fails(&["score", "--arch", TOP, "--gamma-q", "4e-310"]);
    assert!(e.contains("--gamma-q must be a positive number") && e.contains("got 4e-310"), "{e}");
}

#[test]
fn inputs_too_small_for_the_network_are_user_errors() {
    let d = tmp();
    for (h, w) in [(1, 1), (30, 30)] {
        let p = d.path().join(format!("x{h}.safetensors"));
        let x = Tensor::rand([3, 3, h, w], (Kind::Float, tch::Device::Cpu));
        Tensor::write_safetensors(&[("x", x)], &p).unwrap();
        let e = fails(&["score", "--arch", TOP, "--input", p.to_str().unwrap()]);
        assert!(
            e.starts_with(&format!(
                "error: input file {} of shape [3, 3, {h}, {w}] does not fit this network",
                p.display()
            )),
            "{e}"
        );
        assert!(!e.contains("internal error"), "{e}");
        let e = fails(&["hda", "--networks", "1", "--input", p.to_str().unwrap()]);
        assert!(e.starts_with(&format!("error: the input batch of shape [3, 3, {h}, {w}] does not fit")), "{e}");
    }
}
