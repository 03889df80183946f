//! Hot reload: real files added, changed, replaced and removed under a
//! running server, which must notice within 5 seconds and swap only what
//! changed, while sessions already open keep the version they connected
//! with and every frame is answered. Also SIGHUP with the watcher off, the
//! content-hash cache (a large Python component is not recompiled when a
//! manifest beside it changes), and the tenants file: revoked tokens close
//! their sessions with 1008, new quotas apply to new sessions.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use streamhost::config::ReloadMode;
use streamhost::tenants::token_digest_hex;
use streamhost_tests::*;

/// A pipeline whose result says which version answered (`{"iterations": n}`).
fn versioned(id: &str, n: u64) -> String {
    wasm_pipeline(id, "fixture_slow.wasm", &format!("iterations = {n}"))
}

fn frame() -> Vec<u8> {
    solid_jpeg(16, 16, [90, 90, 90])
}

/// Sends a frame and returns its result, asserting it is answered as frame `index`.
async fn answered(client: &mut Client, index: u64) -> Value {
    let r = client.roundtrip(frame()).await;
    assert_eq!(r["frame_index"], index, "{r}");
    assert!(r.get("result").is_some(), "{r}");
    r["result"].clone()
}

fn ready(e: Option<&Value>) -> bool {
    e.is_some_and(|e| e["status"] == "ready")
}

async fn reloads(server: &TestServer, id: &str, outcome: &str) -> f64 {
    server
        .metric(&format!(
            "stream_pipeline_reloads{{outcome=\"{outcome}\",pipeline=\"{id}\"}}"
        ))
        .await
        .unwrap_or(0.0)
}

#[tokio::test]
async fn an_added_manifest_serves_within_five_seconds_and_other_files_are_ignored() {
    let server = TestServer::start_with(&[("p", &versioned("p", 1))], fast_reload).await;
    let dir = server.pipelines_dir().to_path_buf();
    // Neither dot files, editor leftovers nor other extensions are manifests.
    for name in [".hidden.toml", "added.toml~", "added.toml.swp", "notes.txt"] {
        std::fs::write(dir.join(name), versioned("ignored", 1)).unwrap();
    }
    write_then_rename(&dir.join("added.toml"), versioned("added", 7).as_bytes());
    let entry = server
        .wait_listing("added", "listed ready", ready)
        .await
        .unwrap();
    assert_eq!(entry["version"].as_str().map(str::len), Some(16), "{entry}");
    assert!(
        entry["loaded_at"].as_str().unwrap().ends_with('Z'),
        "{entry}"
    );
    assert!(entry["candidate"].is_null(), "{entry}");
    let mut client = server.connect("added").await;
    assert_eq!(answered(&mut client, 1).await["iterations"], 7);
    assert_eq!(reloads(&server, "added", "loaded").await, 1.0);
    assert!(server.listing("ignored").await.is_none());
    // The pipeline already there was not reloaded.
    assert_eq!(reloads(&server, "p", "loaded").await, 0.0);
}

#[tokio::test]
async fn a_changed_manifest_serves_new_sessions_while_open_ones_keep_theirs() {
    let server = TestServer::start_with(&[("p", &versioned("p", 1))], fast_reload).await;
    let before = server.listing("p").await.unwrap();
    let mut old = server.connect("p").await;
    assert_eq!(answered(&mut old, 1).await["iterations"], 1);
    // An in-place write (not a rename).
    std::fs::write(server.pipelines_dir().join("p.toml"), versioned("p", 2)).unwrap();
    // The open session goes on streaming through the reload, every frame answered by v1.
    let mut index = 1;
    let deadline = tokio::time::Instant::now() + RELOAD_WITHIN;
    loop {
        index += 1;
        assert_eq!(answered(&mut old, index).await["iterations"], 1);
        if server.listing("p").await.unwrap()["version"] != before["version"] {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "p not reloaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = server.listing("p").await.unwrap();
    assert_eq!(after["status"], "ready", "{after}");
    assert_ne!(after["loaded_at"], before["loaded_at"], "{after}");
    let mut new = server.connect("p").await;
    assert_eq!(answered(&mut new, 1).await["iterations"], 2);
    for _ in 0..3 {
        index += 1;
        assert_eq!(answered(&mut old, index).await["iterations"], 1);
    }
    assert_eq!(reloads(&server, "p", "loaded").await, 1.0);
}

#[tokio::test]
async fn a_removed_manifest_refuses_new_connects_while_open_sessions_go_on() {
    let server = TestServer::start_with(
        &[("p", &versioned("p", 1)), ("q", &versioned("q", 1))],
        fast_reload,
    )
    .await;
    let mut open = server.connect("p").await;
    assert_eq!(answered(&mut open, 1).await["iterations"], 1);
    std::fs::remove_file(server.pipelines_dir().join("p.toml")).unwrap();
    server.wait_listing("p", "unlisted", |e| e.is_none()).await;
    let mut refused = server.connect("p").await;
    let r = refused.recv_json().await;
    assert_eq!(r["error"], "invalid_pipeline", "{r}");
    refused.expect_close(1008).await;
    for i in 2..5 {
        assert_eq!(answered(&mut open, i).await["iterations"], 1);
    }
    assert_eq!(reloads(&server, "p", "removed").await, 1.0);
    assert!(ready(server.listing("q").await.as_ref()));
}

#[tokio::test]
async fn a_failing_candidate_leaves_the_previous_version_serving_and_is_shown() {
    let server = TestServer::start_with(&[("p", &versioned("p", 1))], fast_reload).await;
    let path = server.pipelines_dir().join("p.toml");
    let serving = server.listing("p").await.unwrap();
    // Broken TOML: still p's file (the id it last declared), so p's candidate.
    write_then_rename(&path, b"id = \"p\"\nthis is [ not toml");
    let entry = server
        .wait_listing("p", "shown with a failed candidate", |e| {
            e.is_some_and(|e| !e["candidate"].is_null())
        })
        .await
        .unwrap();
    assert_eq!(entry["status"], "ready", "{entry}");
    assert_eq!(entry["version"], serving["version"], "{entry}");
    assert_eq!(entry["loaded_at"], serving["loaded_at"], "{entry}");
    let candidate = &entry["candidate"];
    assert!(
        candidate["reason"]
            .as_str()
            .unwrap()
            .contains("not valid TOML"),
        "{entry}"
    );
    assert_ne!(candidate["version"], serving["version"], "{entry}");
    let mut client = server.connect("p").await;
    assert_eq!(answered(&mut client, 1).await["iterations"], 1);
    // A manifest that parses but whose component is missing fails at load the same way.
    let components = tempfile::tempdir().unwrap();
    let late = components.path().join("late.wasm");
    write_then_rename(
        &path,
        wasm_pipeline("p", late.to_str().unwrap(), "").as_bytes(),
    );
    let entry = server
        .wait_listing("p", "shown with the missing component", |e| {
            e.is_some_and(|e| {
                e["candidate"]["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("cannot read component"))
            })
        })
        .await
        .unwrap();
    assert_eq!(entry["version"], serving["version"], "{entry}");
    let mut client = server.connect("p").await;
    assert_eq!(answered(&mut client, 1).await["iterations"], 1);
    assert!(reloads(&server, "p", "failed").await >= 2.0);
    // The component appears (the manifest unchanged): watched too, so that
    // version loads, replaces the serving one, and the candidate is gone.
    std::fs::copy(plugin_dir().join("frame_info.wasm"), &late).unwrap();
    let entry = server
        .wait_listing_within(RELOAD_WITH_COMPILE_WITHIN, "p", "reloaded", |e| {
            e.is_some_and(|e| e["version"] != serving["version"])
        })
        .await
        .unwrap();
    assert!(entry["candidate"].is_null(), "{entry}");
    let mut client = server.connect("p").await;
    assert_eq!(answered(&mut client, 1).await["width"], 16);
}

#[tokio::test]
async fn a_changed_component_file_is_reloaded() {
    let components = tempfile::tempdir().unwrap();
    let node = components.path().join("node.wasm");
    std::fs::copy(plugin_dir().join("frame_info.wasm"), &node).unwrap();
    let manifest = wasm_pipeline("c", node.to_str().unwrap(), "");
    let server = TestServer::start_with(&[("c", &manifest)], fast_reload).await;
    let before = server.listing("c").await.unwrap();
    let compiled = server
        .metric("stream_component_compilations")
        .await
        .unwrap();
    let mut old = server.connect("c").await;
    assert_eq!(answered(&mut old, 1).await["width"], 16);
    // Another plugin copied over it, in place.
    std::fs::copy(plugin_dir().join("motion.wasm"), &node).unwrap();
    let after = server
        .wait_listing_within(RELOAD_WITH_COMPILE_WITHIN, "c", "reloaded", |e| {
            e.is_some_and(|e| e["version"] != before["version"] && e["candidate"].is_null())
        })
        .await
        .unwrap();
    assert_eq!(after["status"], "ready", "{after}");
    let mut new = server.connect("c").await;
    assert_eq!(answered(&mut new, 1).await["first_frame"], true);
    // The open session still runs the component it connected with.
    assert_eq!(answered(&mut old, 2).await["width"], 16);
    let now = server
        .metric("stream_component_compilations")
        .await
        .unwrap();
    assert!(
        now > compiled,
        "motion.wasm was compiled: {compiled} -> {now}"
    );
}

#[tokio::test]
async fn a_changed_id_is_a_removal_plus_an_addition() {
    let server = TestServer::start_with(&[("file", &versioned("one", 1))], fast_reload).await;
    let mut open = server.connect("one").await;
    assert_eq!(answered(&mut open, 1).await["iterations"], 1);
    write_then_rename(
        &server.pipelines_dir().join("file.toml"),
        versioned("two", 2).as_bytes(),
    );
    server.wait_listing("two", "listed ready", ready).await;
    assert!(server.listing("one").await.is_none());
    let mut refused = server.connect("one").await;
    assert_eq!(refused.recv_json().await["error"], "invalid_pipeline");
    let mut two = server.connect("two").await;
    assert_eq!(answered(&mut two, 1).await["iterations"], 2);
    assert_eq!(answered(&mut open, 2).await["iterations"], 1);
    assert_eq!(reloads(&server, "one", "removed").await, 1.0);
    assert_eq!(reloads(&server, "two", "loaded").await, 1.0);
}

#[tokio::test]
async fn two_manifests_with_one_id_both_fail_naming_both_files() {
    let server = TestServer::start_with(&[("a", &versioned("dup", 1))], fast_reload).await;
    let dir = server.pipelines_dir().to_path_buf();
    let serving = server.listing("dup").await.unwrap();
    // A second file with the serving id: that candidate fails, the serving version stays.
    write_then_rename(&dir.join("b.toml"), versioned("dup", 2).as_bytes());
    let entry = server
        .wait_listing("dup", "shown with the duplicate", |e| {
            e.is_some_and(|e| !e["candidate"].is_null())
        })
        .await
        .unwrap();
    let reason = entry["candidate"]["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("more than one manifest")
            && reason.contains("a.toml")
            && reason.contains("b.toml"),
        "{entry}"
    );
    assert_eq!(entry["version"], serving["version"]);
    let mut client = server.connect("dup").await;
    assert_eq!(answered(&mut client, 1).await["iterations"], 1);
    // Two new files with one id: nothing serves, both named.
    write_then_rename(&dir.join("c.toml"), versioned("twin", 1).as_bytes());
    write_then_rename(&dir.join("d.toml"), versioned("twin", 2).as_bytes());
    let twin = server
        .wait_listing("twin", "failed naming both files", |e| {
            e.is_some_and(|e| {
                e["status"] == "failed"
                    && e["reason"]
                        .as_str()
                        .is_some_and(|r| r.contains("c.toml") && r.contains("d.toml"))
            })
        })
        .await
        .unwrap();
    assert!(twin["candidate"].is_null(), "{twin}");
    let mut refused = server.connect("twin").await;
    assert_eq!(refused.recv_json().await["error"], "invalid_pipeline");
    // Removing the second file leaves one manifest: dup's candidate is withdrawn.
    std::fs::remove_file(dir.join("b.toml")).unwrap();
    let entry = server
        .wait_listing("dup", "without its candidate", |e| {
            e.is_some_and(|e| e["candidate"].is_null())
        })
        .await
        .unwrap();
    assert_eq!(entry["version"], serving["version"]);
}

#[tokio::test]
async fn sighup_forces_a_reload_when_the_watcher_is_off() {
    let server = TestServer::start_with(&[("p", &versioned("p", 1))], |c| {
        fast_reload(c);
        c.reload = ReloadMode::Signal;
    })
    .await;
    // With reloading off, SIGHUP is logged and ignored (and ends nothing).
    let off = TestServer::start_with(&[("p", &versioned("p", 1))], |c| {
        fast_reload(c);
        c.reload = ReloadMode::Off;
    })
    .await;
    let before = server.listing("p").await.unwrap();
    let off_before = off.listing("p").await.unwrap();
    for s in [&server, &off] {
        std::fs::write(s.pipelines_dir().join("p.toml"), versioned("p", 2)).unwrap();
    }
    // Several polls' worth: nothing watches.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        server.listing("p").await.unwrap()["version"],
        before["version"]
    );
    // Both servers' SIGHUP listeners are installed (they answered /pipelines),
    // so the signal cannot end this test process.
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    server
        .wait_listing("p", "reloaded after SIGHUP", |e| {
            e.is_some_and(|e| e["version"] != before["version"])
        })
        .await;
    let mut client = server.connect("p").await;
    assert_eq!(answered(&mut client, 1).await["iterations"], 2);
    wait_log("SIGHUP: reloading pipelines and tenants", &[]).await;
    wait_log("SIGHUP ignored: STREAMHOST_RELOAD=off", &[]).await;
    assert_eq!(
        off.listing("p").await.unwrap()["version"],
        off_before["version"]
    );
    let mut client = off.connect("p").await;
    assert_eq!(answered(&mut client, 1).await["iterations"], 1);
}

#[tokio::test]
async fn a_large_component_is_not_recompiled_when_a_manifest_beside_it_changes() {
    // The 18 MB CPython component takes 20-40 s to compile on two cores.
    let server = TestServer::start_with(
        &[
            ("py", &wasm_pipeline("py", "py_wasi_attack.wasm", "")),
            ("small", &versioned("small", 1)),
        ],
        |c| {
            fast_reload(c);
            c.wasm_call_timeout = Duration::from_secs(10);
        },
    )
    .await;
    let py = server.listing("py").await.unwrap();
    assert_eq!(py["status"], "ready", "{py}");
    let compiled = server
        .metric("stream_component_compilations")
        .await
        .unwrap();
    assert_eq!(compiled, 2.0, "one compilation per component");
    let path = server.pipelines_dir().join("small.toml");
    // A new config for a component already compiled: nothing to compile.
    let v1 = server.listing("small").await.unwrap()["version"].clone();
    write_then_rename(&path, versioned("small", 2).as_bytes());
    let v2 = server
        .wait_listing("small", "reloaded", |e| {
            e.is_some_and(|e| e["version"] != v1)
        })
        .await
        .unwrap()["version"]
        .clone();
    assert_eq!(
        server.metric("stream_component_compilations").await,
        Some(compiled)
    );
    // A component not compiled before: exactly that one.
    write_then_rename(&path, wasm_pipeline("small", "motion.wasm", "").as_bytes());
    server
        .wait_listing_within(
            RELOAD_WITH_COMPILE_WITHIN,
            "small",
            "reloaded on motion",
            |e| e.is_some_and(|e| e["version"] != v2),
        )
        .await;
    let mut client = server.connect("small").await;
    assert_eq!(answered(&mut client, 1).await["first_frame"], true);
    assert_eq!(
        server.metric("stream_component_compilations").await,
        Some(compiled + 1.0)
    );
    // The cache is bounded: no serving version used fixture_slow any more, so
    // it was dropped, and going back to it compiles it again (Python stays).
    let v3 = server.listing("small").await.unwrap()["version"].clone();
    write_then_rename(&path, versioned("small", 3).as_bytes());
    server
        .wait_listing_within(
            RELOAD_WITH_COMPILE_WITHIN,
            "small",
            "back on fixture_slow",
            |e| e.is_some_and(|e| e["version"] != v3),
        )
        .await;
    assert_eq!(
        server.metric("stream_component_compilations").await,
        Some(compiled + 2.0)
    );
    let py_after = server.listing("py").await.unwrap();
    assert_eq!(py_after["version"], py["version"]);
    assert_eq!(py_after["loaded_at"], py["loaded_at"]);
    assert_eq!(reloads(&server, "py", "loaded").await, 0.0);
}

// ---------------------------------------------------------------- tenants

const A1: &str = "sh_reload_acme_first_61c2";
const A2: &str = "sh_reload_acme_second_0b7e";
const B: &str = "sh_reload_globex_93aa";

fn tenants_text(acme_tokens: &[&str], acme_max_sessions: usize) -> String {
    let acme: Vec<String> = acme_tokens
        .iter()
        .map(|t| format!("\"{}\"", token_digest_hex(t)))
        .collect();
    format!(
        "[[tenants]]\nid = \"acme\"\ntoken_sha256 = [{}]\npipelines = [\"*\"]\nmax_sessions = {acme_max_sessions}\n\n\
         [[tenants]]\nid = \"globex\"\ntoken_sha256 = [\"{}\"]\npipelines = [\"*\"]\n",
        acme.join(", "),
        token_digest_hex(B)
    )
}

async fn tenant_server(dir: &Path, text: &str) -> TestServer {
    let path = dir.join("tenants.toml");
    std::fs::write(&path, text).unwrap();
    TestServer::start_with(&[("p", &versioned("p", 1))], move |c| {
        fast_reload(c);
        c.tenants_file = Some(path);
    })
    .await
}

async fn refused_status(server: &TestServer, token: &str) -> Option<u16> {
    let auth = format!("Bearer {token}");
    server
        .try_connect("?pipeline_id=p", &[("authorization", &auth)])
        .await
        .err()
        .map(|(status, _)| status)
}

#[tokio::test]
async fn a_revoked_token_closes_its_sessions_with_1008_and_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = tenant_server(dir.path(), &tenants_text(&[A1, A2], 4)).await;
    let mut revoked = server.connect_as(A1, "p").await;
    let mut kept = server.connect_as(A2, "p").await;
    let mut other = server.connect_as(B, "p").await;
    for c in [&mut revoked, &mut kept, &mut other] {
        answered(c, 1).await;
    }
    write_then_rename(
        &dir.path().join("tenants.toml"),
        tenants_text(&[A2], 4).as_bytes(),
    );
    // Closed within the reload promise, with the contract's error first.
    let r = tokio::time::timeout(RELOAD_WITHIN, revoked.recv_json())
        .await
        .expect("revoked session not told within 5 s");
    assert_eq!(r["error"], "unauthorized", "{r}");
    assert!(r["detail"].as_str().unwrap().contains("revoked"), "{r}");
    revoked.expect_close(1008).await;
    assert_eq!(refused_status(&server, A1).await, Some(401));
    // The tenant's other token and the other tenant go on.
    for i in 2..4 {
        answered(&mut kept, i).await;
        answered(&mut other, i).await;
    }
    let mut again = server.connect_as(A2, "p").await;
    answered(&mut again, 1).await;
    server
        .wait_metric("stream_tenants_reloads{outcome=\"loaded\"}", 1.0)
        .await;
}

#[tokio::test]
async fn changed_quotas_apply_to_new_sessions_and_a_bad_file_keeps_the_one_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tenants.toml");
    let server = tenant_server(dir.path(), &tenants_text(&[A1], 1)).await;
    let mut first = server.connect_as(A1, "p").await;
    answered(&mut first, 1).await;
    assert_eq!(refused_status(&server, A1).await, Some(429));
    // Raised to 2: the open session still counts, so one more fits.
    write_then_rename(&path, tenants_text(&[A1], 2).as_bytes());
    server
        .wait_metric("stream_tenants_reloads{outcome=\"loaded\"}", 1.0)
        .await;
    let mut second = server.connect_as(A1, "p").await;
    answered(&mut second, 1).await;
    assert_eq!(refused_status(&server, A1).await, Some(429));
    answered(&mut first, 2).await;
    // A file that does not parse: the one in force stays, tokens and quotas alike.
    write_then_rename(
        &path,
        b"[[tenants]]\nid = \"acme\"\ntoken_sha256 = [\"nothex\"]\n",
    );
    server
        .wait_metric("stream_tenants_reloads{outcome=\"failed\"}", 1.0)
        .await;
    assert_eq!(refused_status(&server, A1).await, Some(429));
    second.close().await;
    server
        .wait_metric("stream_tenant_sessions_active{tenant=\"acme\"}", 1.0)
        .await;
    let mut third = server.connect_as(A1, "p").await;
    answered(&mut third, 1).await;
    answered(&mut first, 3).await;
}

/// decode -> the detector's pre-processing -> the PP-OCRv6 detector (`model`).
fn detector(description: &str, model: &str) -> String {
    format!(
        "id = \"det\"\ndescription = \"{description}\"\n\n[[nodes]]\nid = \"decode\"\nkind = \"jpeg_decode\"\nconfig = {{ format = \"bgr8\" }}\n\n\
         [[nodes]]\nid = \"det_pre\"\nkind = \"to_tensor\"\ninputs = [\"decode\"]\n\
         config = {{ name = \"x\", channels = \"bgr\", scale = 0.00392156862745098, mean = [0.5, 0.5, 0.5], std = [0.5, 0.5, 0.5], resize = {{ mode = \"fit\", limit_side_len = 640, limit_type = \"max\" }} }}\n\n\
         [[nodes]]\nid = \"det\"\nkind = \"onnx\"\ninputs = [\"det_pre.x\"]\nconfig = {{ model = \"{model}\" }}\n"
    )
}

#[tokio::test]
async fn a_model_is_opened_again_only_when_its_bytes_change() {
    const MODEL: &str = "PP-OCRv6_det_small.onnx";
    let server = TestServer::start_with(&[("det", &detector("one", MODEL))], fast_reload).await;
    assert!(ready(server.listing("det").await.as_ref()));
    let opened = server.metric("stream_model_loads").await.unwrap();
    assert_eq!(opened, 1.0);
    let path = server.pipelines_dir().join("det.toml");
    let reloaded_from = |before: Value| {
        move |e: Option<&Value>| e.is_some_and(|e| e["version"] != before && e["status"] == "ready")
    };
    // The manifest changes, the model does not: not opened again.
    let v1 = server.listing("det").await.unwrap()["version"].clone();
    write_then_rename(&path, detector("two", MODEL).as_bytes());
    server
        .wait_listing("det", "reloaded", reloaded_from(v1))
        .await;
    assert_eq!(server.metric("stream_model_loads").await, Some(opened));
    // The same bytes under another name: the cache is by content.
    let copies = tempfile::tempdir().unwrap();
    let copy = copies.path().join("copy.onnx");
    let models = std::path::PathBuf::from(env!("STREAMHOST_TEST_MODEL_DIR"));
    std::fs::copy(models.join(MODEL), &copy).unwrap();
    let v2 = server.listing("det").await.unwrap()["version"].clone();
    write_then_rename(&path, detector("two", copy.to_str().unwrap()).as_bytes());
    server
        .wait_listing("det", "reloaded on the copy", reloaded_from(v2))
        .await;
    assert_eq!(server.metric("stream_model_loads").await, Some(opened));
    let mut client = server.connect("det").await;
    let r = client.roundtrip(gradient_jpeg(64, 48)).await;
    assert!(r.get("result").is_some(), "{r}");
}
