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
