//! `streamhost settings` and `--config`, run as an operator runs them: the
//! real binary, a real config file, the environment on top.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn streamhost(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_streamhost"));
    cmd.args(args);
    // Only what the test sets: no STREAMHOST_* from the caller's shell.
    for (key, _) in std::env::vars() {
        if key.starts_with("STREAM") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn settings_prints_each_value_and_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("streamhost.toml");
    std::fs::write(
        &file,
        "listen = \"0.0.0.0:9000\"\nmax_sessions = 10\nstream_max_frame_size_mb = 2\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (code, out, err) = streamhost(
        &["settings", "--config", path],
        &[("STREAMHOST_MAX_SESSIONS", "12")],
    );
    assert_eq!(code, 0, "{out}{err}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{name}\t")))
            .unwrap_or_else(|| panic!("no {name} in {out}"))
            .to_string()
    };
    assert_eq!(
        line("STREAMHOST_LISTEN"),
        "STREAMHOST_LISTEN\t0.0.0.0:9000\tfile"
    );
    assert_eq!(
        line("STREAMHOST_MAX_SESSIONS"),
        "STREAMHOST_MAX_SESSIONS\t12\tenvironment"
    );
    assert_eq!(
        line("STREAM_MAX_FRAME_SIZE_MB"),
        "STREAM_MAX_FRAME_SIZE_MB\t2\tfile"
    );
    assert_eq!(
        line("STREAMHOST_IDLE_TIMEOUT_SECS").split('\t').nth(2),
        Some("default")
    );
    // One line per setting, three fields each.
    assert!(out.lines().all(|l| l.split('\t').count() == 3), "{out}");
    // STREAMHOST_CONFIG names the file as --config does.
    let (code, out, _) = streamhost(&["settings"], &[("STREAMHOST_CONFIG", path)]);
    assert_eq!(code, 0);
    assert!(
        out.contains("STREAMHOST_LISTEN\t0.0.0.0:9000\tfile"),
        "{out}"
    );
}

#[test]
fn a_bad_config_file_stops_the_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let unknown = dir.path().join("unknown.toml");
    std::fs::write(&unknown, "max_sesions = 10\n").unwrap();
    // serve logs (JSON, on stdout) why it stops.
    let (code, out, err) = streamhost(&["serve", "--config", unknown.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("unknown key `max_sesions`"), "{out}{err}");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "max_sessions = \"lots\"\n").unwrap();
    let (code, _, err) = streamhost(&["check", "--config", bad.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`max_sessions`"), "{err}");
}

/// The config file the Kubernetes ConfigMap ships (deploy/kubernetes/configmap-config.yaml)
/// is one this binary accepts, and makes the server bind every interface in the pod.
#[test]
fn the_kubernetes_config_file_is_accepted() {
    let yaml = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy/kubernetes/configmap-config.yaml"),
    )
    .unwrap();
    let toml: String = yaml
        .split("streamhost.toml: |\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| l.starts_with("    ") || l.is_empty())
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("streamhost.toml");
    std::fs::write(&file, toml).unwrap();
    let (code, out, err) = streamhost(&["settings", "--config", file.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("STREAMHOST_LISTEN\t0.0.0.0:8000\tfile"),
        "{out}"
    );
    assert!(
        out.contains("STREAMHOST_TENANTS_FILE\t/etc/streamhost/tenants/tenants.toml\tfile"),
        "{out}"
    );
    assert!(
        out.contains("STREAMHOST_SHUTDOWN_GRACE_SECS\t20\tfile"),
        "{out}"
    );
}
