//! HTTPS and WSS: the same routes over TLS when `--tls-cert` and `--tls-key`
//! (`STREAMHOST_TLS_CERT`, `STREAMHOST_TLS_KEY`) name a PEM certificate chain
//! and its private key.
//!
//! Browsers give a page the camera only in a secure context, which plain HTTP
//! is on loopback hosts alone; serving the live view to a phone or laptop on
//! the LAN needs HTTPS, and its WebSocket then needs WSS. rustls with the
//! `ring` provider (no cmake or Go at build time, unlike aws-lc-rs), TLS 1.2
//! and 1.3, ALPN `http/1.1` (the server speaks HTTP/1 only). The files are
//! read once at start and a bad pair stops the server with the reason. The
//! handshake runs in the connection's own task under the header-read timeout,
//! after the connection took its slot, so a client that never finishes it
//! holds one slot for that long and no more (see `server::serve`).

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "--tls-cert and --tls-key (STREAMHOST_TLS_CERT, STREAMHOST_TLS_KEY) must be set together"
    )]
    OnlyOne,
    #[error("cannot read the TLS certificate chain {path}: {why}")]
    Cert { path: String, why: String },
    #[error("cannot read the TLS private key {path}: {why}")]
    Key { path: String, why: String },
    #[error("the TLS certificate and key cannot be used: {0}")]
    Unusable(String),
}

/// The acceptor for `cert` and `key` (PEM files), or `None` for plain HTTP when neither is set.
pub fn acceptor(cert: Option<&Path>, key: Option<&Path>) -> Result<Option<TlsAcceptor>, TlsError> {
    let (cert, key) = match (cert, key) {
        (None, None) => return Ok(None),
        (Some(c), Some(k)) => (c, k),
        _ => return Err(TlsError::OnlyOne),
    };
    let cert_error = |why: String| TlsError::Cert {
        path: cert.display().to_string(),
        why,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_error("no CERTIFICATE block in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.display().to_string(),
        why: e.to_string(),
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsError::Unusable(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| TlsError::Unusable(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neither_is_plain_http_and_one_alone_is_refused() {
        assert!(matches!(acceptor(None, None), Ok(None)));
        assert!(matches!(
            acceptor(Some(Path::new("c.pem")), None),
            Err(TlsError::OnlyOne)
        ));
        assert!(matches!(
            acceptor(None, Some(Path::new("k.pem"))),
            Err(TlsError::OnlyOne)
        ));
    }

    #[test]
    fn unreadable_or_empty_files_are_named_in_the_error() {
        let missing = acceptor(
            Some(Path::new("/nonexistent/cert.pem")),
            Some(Path::new("/nonexistent/key.pem")),
        )
        .map(|a| a.is_some());
        assert!(
            matches!(&missing, Err(TlsError::Cert { path, .. }) if path == "/nonexistent/cert.pem"),
            "{missing:?}"
        );
        let dir = std::env::temp_dir().join(format!("streamhost-tls-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let empty = dir.join("empty.pem");
        let _ = std::fs::write(&empty, "no pem here\n");
        let none = acceptor(Some(&empty), Some(&empty)).map(|a| a.is_some());
        assert!(matches!(none, Err(TlsError::Cert { .. })), "{none:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
