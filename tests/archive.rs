//! NATS-Bench archives: values read in Rust equal what the `nats_bench`
//! package reports for the fixture archives (written in the official format
//! by tools/make_nats_fixture.py), and damaged archives give clear errors.

use rbflex::benchmarks::nats_archive::NatsArchive;
use rbflex::benchmarks::GroundTruth;
use rbflex::dataset::Dataset;
use std::path::{Path, PathBuf};
use std::process::Command;

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nats").join(name)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn archives_match_the_nats_bench_api() {
    for name in ["NATS-tss-v1_0-3ffb9-simple", "NATS-sss-v1_0-50262-simple"] {
        let a = NatsArchive::open(&dir(name)).unwrap();
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir(name).join("expected.json")).unwrap()).unwrap();
        let mut checked = 0;
        for e in expected.as_array().unwrap() {
            let info = a.info(e["index"].as_u64().unwrap() as usize).unwrap();
            let (hp, ds) = (e["hp"].as_str().unwrap(), e["dataset"].as_str().unwrap());
            if let Some(set) = e["set"].as_str() {
                let (acc, loss) = info.metric(hp, ds, set, None).unwrap();
                assert!(close(acc, e["accuracy"].as_f64().unwrap()), "{name} {e}");
                assert!(close(loss, e["loss"].as_f64().unwrap()), "{name} {e}");
            } else {
                let (params, flops, lat) = info.costs(hp, ds).unwrap();
                assert!(
                    close(params, e["params"].as_f64().unwrap()) && close(flops, e["flops"].as_f64().unwrap()),
                    "{name} {e}"
                );
                assert!(close(lat.unwrap(), e["latency"].as_f64().unwrap()), "{name} {e}");
            }
            checked += 1;
        }
        assert!(checked > 20);
        // the ground-truth convention: CIFAR-10 ori-test, others x-test, final budget
        let hp = a.hp.clone();
        let want = expected
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["index"] == 1 && e["hp"] == hp.as_str() && e["dataset"] == "cifar100" && e["set"] == "x-test")
            .unwrap()["accuracy"]
            .as_f64()
            .unwrap();
        assert!(close(a.accuracy(1, Dataset::Cifar100).unwrap(), want));
    }
}

#[test]
fn damaged_archives_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let src = dir("NATS-tss-v1_0-3ffb9-simple");
    for f in ["meta.pickle.pbz2", "000000.pickle.pbz2"] {
        std::fs::copy(src.join(f), tmp.path().join(f)).unwrap();
    }
    let bytes = std::fs::read(src.join("000001.pickle.pbz2")).unwrap();
    std::fs::write(tmp.path().join("000001.pickle.pbz2"), &bytes[..bytes.len() / 2]).unwrap();
    let a = NatsArchive::open(tmp.path()).unwrap();
    // an intact file next to a damaged one reads as in the untouched archive
    let intact = serde_json::to_value(&*NatsArchive::open(&src).unwrap().info(0).unwrap()).unwrap();
    assert_eq!(serde_json::to_value(&*a.info(0).unwrap()).unwrap(), intact);
    let e = format!("{:#}", a.info(1).unwrap_err());
    assert!(e.contains("000001.pickle.pbz2") && e.contains("truncated"), "{e}");
    let e = format!("{:#}", a.info(2).unwrap_err());
    assert!(e.contains("cannot open") && e.contains("2.pickle.pbz2"), "{e}");
    let e = format!("{:#}", NatsArchive::open(&tmp.path().join("nope")).err().unwrap());
    assert!(e.contains("is not a folder"), "{e}");
    std::fs::write(tmp.path().join("meta.pickle.pbz2"), b"BZh9garbage").unwrap();
    let e = format!("{:#}", NatsArchive::open(tmp.path()).err().unwrap());
    assert!(e.contains("meta.pickle.pbz2"), "{e}");

    // through the CLI: the archive as ground truth, and the archive command
    let out = Command::new(env!("CARGO_BIN_EXE_rbflex"))
        .args(["archive", "--benchmark", src.to_str().unwrap(), "--index", "2"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("3 networks") && text.contains("ori-test"), "{text}");
    let out = Command::new(env!("CARGO_BIN_EXE_rbflex"))
        .args([
            "search",
            "--space",
            "nats-sss",
            "--benchmark",
            src.to_str().unwrap(),
            "--trials",
            "1",
            "--networks",
            "2",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("not an archive of this space"), "{err}");
}
