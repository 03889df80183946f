//! `STREAMHOST_COMPILE_CACHE_DIR`: a second start loads its components from
//! the cache instead of compiling them, and a file that cannot be loaded is
//! compiled again and replaced, the server serving throughout.

use std::path::{Path, PathBuf};

use streamhost_tests::*;

async fn start(dir: &Path) -> TestServer {
    let dir = dir.to_path_buf();
    TestServer::start_with(&[("frame_info", &shipped_pipeline("frame_info"))], |c| {
        c.compile_cache_dir = Some(dir)
    })
    .await
}

fn cached(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

async fn serves_and_compiled(server: &TestServer) -> f64 {
    let mut client = server.connect("frame_info").await;
    let reply = client.roundtrip(solid_jpeg(32, 24, [10, 20, 30])).await;
    assert_eq!(reply["result"]["width"], 32, "{reply}");
    server
        .metric("stream_component_compilations")
        .await
        .unwrap()
}

#[tokio::test]
async fn a_second_start_loads_compiled_components_and_a_bad_file_is_compiled_again() {
    let cache = tempfile::tempdir().unwrap();
    let first = start(cache.path()).await;
    assert_eq!(serves_and_compiled(&first).await, 1.0);
    first.stop().await;
    let files = cached(cache.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].extension().is_some_and(|x| x == "cwasm"),
        "{files:?}"
    );

    let second = start(cache.path()).await;
    assert_eq!(
        serves_and_compiled(&second).await,
        0.0,
        "loaded, not compiled"
    );
    second.stop().await;

    // A file that is not a compiled component: compiled again, and rewritten.
    std::fs::write(&files[0], b"not native code").unwrap();
    let third = start(cache.path()).await;
    assert_eq!(serves_and_compiled(&third).await, 1.0);
    third.stop().await;
    assert!(std::fs::metadata(&files[0]).unwrap().len() > 1000);
    assert_eq!(cached(cache.path()).len(), 1, "no temporary file left");
}
