//! `--device` on a machine with or without a usable GPU: `cpu` is the
//! reference path (bit-identical to `auto` when no GPU is usable), `cuda`
//! without one is one clear error, a results folder never mixes devices.

mod common;

use common::{fails, num, ok_json, rbflex};

const SCORE: [&str; 5] = ["score", "--index", "1234", "--json", "--proxy=rbflex,naswot,synflow"];

#[test]
fn cpu_is_the_reference_path_and_auto_falls_back_to_it() {
    let cpu = ok_json(&[&SCORE[..], &["--device", "cpu"]].concat());
    let auto = ok_json(&[&SCORE[..], &["--device", "auto"]].concat());
    let gpu = rbflex(&[&SCORE[..], &["--device", "cuda"]].concat());
    if gpu.status.success() {
        // a usable GPU: auto takes it, and its scores agree with the CPU's to 1e-3
        let gpu: serde_json::Value = serde_json::from_slice(&gpu.stdout).unwrap();
        for k in ["score", "naswot", "synflow"] {
            let (a, b) = (num(&cpu[k]), num(&gpu[k]));
            assert!((a - b).abs() <= 1e-3 * a.abs().max(1.0), "{k}: cpu {a}, gpu {b}");
        }
    } else {
        // no usable GPU: one line saying why, and auto is the CPU bit for bit
        let err = String::from_utf8_lossy(&gpu.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.starts_with("error: --device cuda:0: no usable CUDA device: "), "{err}");
        assert!(err.trim_end().ends_with("; use --device cpu"), "{err}");
        assert_eq!(cpu, auto);
    }
    let e = rbflex(&["score", "--index", "1", "--device", "tpu"]);
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(err.contains("'tpu' is not a device (auto, cpu, cuda or cuda:N)"), "{err}");
}

#[test]
fn a_results_folder_is_resumed_on_its_own_device_only() {
    let o = tempfile::tempdir().unwrap();
    let out = o.path().to_str().unwrap();
    let args = ["correlate", "--sample", "6", "--quiet", "--json", "--device", "cpu", "--out", out];
    ok_json(&args);
    let run = o.path().join("run.json");
    let text = std::fs::read_to_string(&run).unwrap();
    assert!(text.contains("\"device\": \"cpu\""), "{text}");
    std::fs::write(&run, text.replace("\"device\": \"cpu\"", "\"device\": \"cuda\"")).unwrap();
    let e = fails(&args);
    assert!(
        e.contains("device was \"cuda\" (now \"cpu\") (CPU and GPU scores differ in the last digits: resume a folder on the device that began it)"),
        "{e}"
    );
    // a folder from before devices were recorded ran on the CPU
    let old = text.replace("  \"device\": \"cpu\",\n", "");
    assert!(!old.contains("device"), "{old}");
    std::fs::write(&run, old).unwrap();
    let v = ok_json(&args);
    assert_eq!(v["n"], 6);
    let bench = ok_json(&["bench", "--networks", "2", "--device", "cpu", "--json"]);
    assert_eq!(bench["device"], "cpu");
}
