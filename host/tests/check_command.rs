//! `streamhost check`, run as an operator runs it: the real binary on real
//! manifests, its output and its exit status (0 all ready, 1 any not, 2 usage).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

const DECODE_ONLY: &str =
    "id = \"decode_only\"\n[[nodes]]\nid = \"decode\"\nkind = \"jpeg_decode\"\n";
const UNKNOWN_KIND: &str = "id = \"typo\"\n[[nodes]]\nid = \"decode\"\nkind = \"jpeg_decod\"\n";

fn check(dir: &std::path::Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_streamhost"))
        .arg("check")
        .arg("--pipelines")
        .arg(dir)
        .args(extra)
        .env_remove("STREAMHOST_TENANTS_FILE")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_exits_0_when_every_pipeline_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("decode_only.toml"), DECODE_ONLY).unwrap();
    let (code, out, err) = check(dir.path(), &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), "decode_only\tready", "{out}");
}

#[test]
fn check_exits_1_and_names_the_reason_when_a_pipeline_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("decode_only.toml"), DECODE_ONLY).unwrap();
    std::fs::write(dir.path().join("typo.toml"), UNKNOWN_KIND).unwrap();
    let (code, out, err) = check(dir.path(), &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("decode_only\tready"), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("typo\t"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.starts_with("typo\tfailed\tnode 'decode': unknown kind 'jpeg_decod'"),
        "{line}"
    );
}

#[test]
fn check_exits_2_on_a_usage_error_or_a_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = check(dir.path(), &["--no-such-flag"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = check(&dir.path().join("missing"), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot check"), "{err}");
}

#[test]
fn check_names_a_mis_wired_edge() {
    let dir = tempfile::tempdir().unwrap();
    let miswired = "id = \"miswired\"\n[[nodes]]\nid = \"decode\"\nkind = \"jpeg_decode\"\n\
        [[nodes]]\nid = \"max\"\nkind = \"argmax\"\ninputs = [\"decode\"]\n";
    std::fs::write(dir.path().join("miswired.toml"), miswired).unwrap();
    let (code, out, err) = check(dir.path(), &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        out.trim(),
        "miswired\tfailed\tedge decode -> max: 'decode' gives image, but 'max' takes tensors",
        "{out}"
    );
}
