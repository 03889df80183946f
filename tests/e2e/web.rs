//! The live view over plain HTTP (no browser): the page and its assets with
//! their security headers, the Origin check on upgrades, and the plain GET
//! the page uses to learn why an upgrade was refused.

use serde_json::{json, Value};
use streamhost_tests::*;

const TOKEN: &str = "sh_web_test_5be1c0";

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_security_headers() {
    let server = TestServer::start(&[("frame_info", &shipped_pipeline("frame_info"))]).await;
    for (path, kind) in [
        ("/", "text/html"),
        ("/assets/app.js", "text/javascript"),
        ("/assets/stream.js", "text/javascript"),
        ("/assets/style.css", "text/css"),
    ] {
        let resp = http_request(server.addr, "GET", path, &[], None)
            .await
            .unwrap();
        assert_eq!(resp.status, 200, "{path}");
        assert!(
            resp.header("content-type").unwrap_or("").starts_with(kind),
            "{path}: {:?}",
            resp.header("content-type")
        );
        let csp = resp.header("content-security-policy").unwrap_or("");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(resp.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(resp.header("x-frame-options"), Some("DENY"));
        assert!(!resp.body.is_empty());
    }
    let page = server.get("/").await.1;
    assert!(page.contains("<script type=\"module\" src=\"/assets/app.js\">"));
    // Nothing is fetched from anywhere else.
    assert!(!page.contains("//cdn") && !page.contains("https://"));
    assert_eq!(server.get("/assets/nope.js").await.0, 404);
    assert_eq!(server.get("/assets/../Cargo.toml").await.0, 404);
}

async fn origin_server() -> TestServer {
    TestServer::start_with(&[("frame_info", &shipped_pipeline("frame_info"))], |c| {
        c.allowed_origins = vec!["https://kiosk.example".into()];
    })
    .await
}

#[tokio::test]
async fn upgrades_from_foreign_origins_are_refused_with_403_forbidden() {
    let server = origin_server().await;
    let query = "?pipeline_id=frame_info";
    let refused = server
        .try_connect(query, &[("origin", "https://evil.example")])
        .await
        .err()
        .expect("a foreign origin was let in");
    assert_eq!(refused.0, 403);
    assert_eq!(refused.1["error"], "forbidden");
    assert!(
        refused.1["detail"]
            .as_str()
            .unwrap()
            .contains("https://evil.example"),
        "{}",
        refused.1
    );
    // The configured list replaces the loopback default...
    let local = server
        .try_connect(query, &[("origin", "http://localhost:3000")])
        .await;
    assert_eq!(local.err().map(|e| e.0), Some(403));
    assert_eq!(
        server.metric("stream_errors{code=\"forbidden\"}").await,
        Some(2.0)
    );
    // ...while listed origins, the server's own and clients without Origin connect.
    let own = format!("http://{}", server.addr);
    for headers in [
        vec![("origin", "https://kiosk.example")],
        vec![("origin", own.as_str())],
        vec![],
    ] {
        let (mut client, _) = server
            .try_connect(query, &headers)
            .await
            .unwrap_or_else(|e| panic!("{headers:?} refused: {e:?}"));
        client.assert_serves(1).await;
    }
}

#[tokio::test]
async fn by_default_loopback_pages_connect_and_other_sites_do_not() {
    let server = TestServer::start(&[("frame_info", &shipped_pipeline("frame_info"))]).await;
    let query = "?pipeline_id=frame_info";
    let (mut client, _) = server
        .try_connect(query, &[("origin", "http://localhost:5173")])
        .await
        .unwrap_or_else(|e| panic!("loopback page refused: {e:?}"));
    client.assert_serves(1).await;
    let refused = server
        .try_connect(query, &[("origin", "https://evil.example")])
        .await;
    assert_eq!(refused.err().map(|e| e.0), Some(403));
}

#[tokio::test]
async fn a_plain_get_tells_a_page_why_its_upgrade_would_be_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = one_tenant_file(dir.path(), "web", TOKEN);
    let server = TestServer::start_with(&[("frame_info", &shipped_pipeline("frame_info"))], |c| {
        c.tenants_file = Some(tenants);
    })
    .await;
    let path = "/ws/video/stream?pipeline_id=frame_info";
    let get = |auth: Option<String>| {
        let addr = server.addr;
        async move {
            let headers: Vec<(&str, &str)> = auth
                .as_deref()
                .map(|a| vec![("authorization", a)])
                .unwrap_or_default();
            http_request(addr, "GET", path, &headers, None)
                .await
                .unwrap()
        }
    };
    let wrong = get(Some("Bearer nope".into())).await;
    assert_eq!(wrong.status, 401);
    let body: Value = serde_json::from_str(&wrong.body).unwrap();
    assert_eq!(body["error"], "unauthorized", "{body}");
    // With a good token the only objection left is that it is no upgrade.
    let good = get(Some(format!("Bearer {TOKEN}"))).await;
    assert!(
        good.status == 426 || good.status == 400,
        "{} {}",
        good.status,
        good.body
    );
    // Such questions are not refused connections.
    assert_eq!(
        server.metric("stream_errors{code=\"unauthorized\"}").await,
        Some(0.0)
    );
    let refused = server.try_connect("?pipeline_id=frame_info", &[]).await;
    assert_eq!(
        refused.err().map(|e| (e.0, e.1["error"].clone())),
        Some((401, json!("unauthorized")))
    );
    assert_eq!(
        server.metric("stream_errors{code=\"unauthorized\"}").await,
        Some(1.0)
    );
}
