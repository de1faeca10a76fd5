//! Helpers the command-line test files share: run the binary, read its JSON,
//! check its one-line errors.

#![allow(dead_code)] // each test file uses its own subset

use std::process::{Command, Output};

/// Runs `rbflex` with `args`.
pub fn rbflex(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rbflex")).args(args).output().expect("the binary runs")
}

/// Runs a command that must succeed; returns its stdout as JSON.
pub fn ok_json(args: &[&str]) -> serde_json::Value {
    let out = rbflex(args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// Runs a command that must fail; returns its stderr after checking it is one
/// clear line and no panic.
pub fn fails(args: &[&str]) -> String {
    let out = rbflex(args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{args:?}: expected a one-line error, got {err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

/// A JSON number, or one of the strings `-inf`, `inf`, `NaN`.
pub fn num(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| v.as_str().and_then(|s| s.parse().ok()).expect("a number or -inf"))
}

/// A CSV file rbflex wrote: its header and rows, as text.
pub fn csv_table(path: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).expect("a CSV file");
    let header = r.headers().expect("a header").iter().map(String::from).collect();
    let rows = r.records().map(|rec| rec.expect("a CSV row").iter().map(String::from).collect()).collect();
    (header, rows)
}

/// Column `name` of a [`csv_table`] as numbers (`-inf` allowed).
pub fn csv_column(table: &(Vec<String>, Vec<Vec<String>>), name: &str) -> Vec<f64> {
    let at = table.0.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name} in {:?}", table.0));
    table
        .1
        .iter()
        .map(|row| row[at].parse().unwrap_or_else(|_| panic!("{name}: '{}' is not a number", row[at])))
        .collect()
}

/// Kendall's tau-b by its definition, over every pair (to check the tool's
/// O(n log n) one): (concordant - discordant) / sqrt((n0 - ties in x)(n0 - ties in y)).
pub fn tau_b(x: &[f64], y: &[f64]) -> f64 {
    let (mut s, mut tx, mut ty, mut n0) = (0.0, 0.0, 0.0, 0.0);
    for i in 0..x.len() {
        for j in i + 1..x.len() {
            n0 += 1.0;
            let (a, b) = (x[i].partial_cmp(&x[j]).unwrap() as i8, y[i].partial_cmp(&y[j]).unwrap() as i8);
            s += f64::from(a * b);
            tx += f64::from(u8::from(a == 0));
            ty += f64::from(u8::from(b == 0));
        }
    }
    s / ((n0 - tx) * (n0 - ty)).sqrt()
}

/// Pearson's r.
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    let vy: f64 = y.iter().map(|b| (b - my) * (b - my)).sum();
    cov / (vx * vy).sqrt()
}

/// Spearman's rho: Pearson's r of the ranks (ties share their mean rank).
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    let ranks = |v: &[f64]| -> Vec<f64> {
        v.iter()
            .map(|a| {
                let below = v.iter().filter(|b| *b < a).count() as f64;
                let equal = v.iter().filter(|b| *b == a).count() as f64;
                below + (equal + 1.0) / 2.0
            })
            .collect()
    };
    pearson(&ranks(x), &ranks(y))
}

/// Mean and population standard deviation.
pub fn mean_std(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    (m, (x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n).sqrt())
}
