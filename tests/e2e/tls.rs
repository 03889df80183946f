//! HTTPS and WSS (`--tls-cert`, `--tls-key`): the page and a session over
//! TLS with a self-signed certificate made by `openssl` as the README shows,
//! plain HTTP refused on that port, and a bad key refused at start.

use futures_util::{SinkExt, StreamExt};
use streamhost::config::Config;
use streamhost::AppState;
use streamhost_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

async fn tls_server(dir: &std::path::Path) -> (TestServer, std::path::PathBuf) {
    let (cert, key) = self_signed_cert(dir, &["127.0.0.1"]);
    let server = TestServer::start_with(&[("frame_info", &shipped_pipeline("frame_info"))], |c| {
        c.tls_cert = Some(cert.clone());
        c.tls_key = Some(key);
    })
    .await;
    (server, cert)
}

#[tokio::test]
async fn the_page_and_a_session_are_served_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (server, cert) = tls_server(dir.path()).await;

    let mut https = tls_connect(server.addr, &cert, "localhost").await.unwrap();
    https
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut page = String::new();
    https.read_to_string(&mut page).await.unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page:.200}");
    assert!(page
        .to_ascii_lowercase()
        .contains("content-security-policy:"));
    assert!(page.contains("/assets/app.js"));

    // WSS, checked against the certificate by IP as well as by name.
    let tls = tls_connect(server.addr, &cert, "127.0.0.1").await.unwrap();
    let url = format!(
        "wss://127.0.0.1:{}/ws/video/stream?pipeline_id=frame_info",
        server.addr.port()
    );
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls).await.unwrap();
    ws.send(Message::Binary(solid_jpeg(64, 48, [200, 10, 10]).into()))
        .await
        .unwrap();
    let reply = loop {
        match ws.next().await.unwrap().unwrap() {
            Message::Text(t) => break serde_json::from_str::<serde_json::Value>(&t).unwrap(),
            _ => continue,
        }
    };
    assert_eq!(reply["frame_index"], 1, "{reply}");
    assert_eq!(reply["result"]["width"], 64, "{reply}");
}

#[tokio::test]
async fn plain_http_on_a_tls_port_gets_no_page() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = tls_server(dir.path()).await;
    // Either the failed handshake drops the connection (Err) or something other than the page comes back.
    if let Ok((status, body)) = server.try_get("/").await {
        assert_ne!(status, 200, "served over plain HTTP: {body:.200}");
    }
}

#[tokio::test]
async fn a_certificate_without_its_key_stops_the_server_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = self_signed_cert(dir.path(), &[]);
    let config = Config {
        tls_cert: Some(cert.clone()),
        ..Config::default()
    };
    let err = AppState::build(config)
        .err()
        .expect("started with half a TLS pair");
    assert!(err.to_string().contains("--tls-key"), "{err}");
    // A key that is not the certificate's is refused with the reason.
    let other = tempfile::tempdir().unwrap();
    let (_, wrong_key) = self_signed_cert(other.path(), &[]);
    let config = Config {
        tls_cert: Some(cert),
        tls_key: Some(wrong_key),
        ..Config::default()
    };
    let err = AppState::build(config)
        .err()
        .expect("started with a mismatched key");
    assert!(err.to_string().contains("TLS"), "{err}");
}
