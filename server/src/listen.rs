//! Accepting connections and serving the router on them: plain TCP, or TLS
//! (rustls) when the hub has a certificate. Each connection is served by
//! hyper with a bound on how long request headers may take to arrive, and a
//! TLS handshake gets the same bound, so a slow or silent client cannot hold
//! a connection (and its memory) open for ever.
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// How long connections still open at shutdown get to finish.
const DRAIN: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate chain {}: {source}", path.display())]
    Cert { path: PathBuf, source: rustls::pki_types::pem::Error },
    #[error("{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", .0.display())]
    NoCert(PathBuf),
    #[error("cannot read the private key {}: {source} (PKCS#8, PKCS#1 or SEC1 PEM expected)", path.display())]
    Key { path: PathBuf, source: rustls::pki_types::pem::Error },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A TLS acceptor for the PEM certificate chain (leaf first) and private key.
pub fn load_tls(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .map_err(|source| TlsError::Cert { path: cert.into(), source })?;
    if chain.is_empty() {
        return Err(TlsError::NoCert(cert.into()));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Key { path: key.into(), source })?;
    // One crypto provider named here, so nothing depends on a process default.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, private)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` on every connection `listener` accepts until `stop` is
/// cancelled, then lets open connections finish (bounded by `DRAIN`).
pub async fn serve_on(
    listener: TcpListener,
    app: axum::Router,
    tls: Option<TlsAcceptor>,
    header_timeout: Duration,
    stop: CancellationToken,
) -> std::io::Result<()> {
    // HTTP/1.1 only: mounts speak nothing else, and guessing the protocol
    // would wait for a first byte with no time limit.
    let mut http = auto::Builder::new(TokioExecutor::new()).http1_only();
    http.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: wait a little rather than spin.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        // Small request/response pairs must not wait for delayed ACKs (Nagle).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        let (http, tls, watcher) = (http.clone(), tls.clone(), graceful.watcher());
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let served = match tls {
                None => watcher.watch(http.serve_connection(TokioIo::new(tcp), service).into_owned()).await,
                Some(acceptor) => match tokio::time::timeout(header_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let conn = http.serve_connection(TokioIo::new(stream), service).into_owned();
                        watcher.watch(conn).await
                    }
                    Ok(Err(e)) => return tracing::debug!(%peer, "TLS handshake failed: {e}"),
                    Err(_) => return tracing::debug!(%peer, "TLS handshake took longer than {header_timeout:?}"),
                },
            };
            if let Err(e) = served {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open {DRAIN:?} after shutdown were cut");
    }
    Ok(())
}
