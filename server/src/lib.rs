//! ssync-server: the hub. Metadata in SQLite, contents in a content-addressed
//! store, every change numbered by one sequence and served as a long-poll feed.
//!
//! Entry points: `app` builds the router, `serve` runs it on a listener until a
//! shutdown future resolves, `cli_main` is the binary.
pub mod auth;
mod body_limits;
pub mod cli;
pub mod db;
pub mod error;
mod extract;
pub mod feed;
pub mod gc;
pub mod listen;
pub mod openapi;
mod pack;
mod routes;
pub mod scope;
pub mod share_cli;
pub mod state;
pub mod store;
pub mod token_cli;
pub mod traffic;
pub mod tree;
mod upgrade;

pub use state::{AppState, Limits, Retention};

use std::future::Future;
use tokio::net::TcpListener;

pub fn app(state: AppState) -> axum::Router {
    routes::router(state)
}

/// Serves until `shutdown` resolves; open long-polls are answered at once then.
/// With `tls`, every connection is HTTPS.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let token = state.shutdown.clone();
    tokio::spawn(gc::run(state.clone(), token.clone()));
    tokio::spawn(traffic::log_periodically(state.traffic.clone(), token.clone()));
    let stop = token.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop.cancel();
    });
    let header_timeout = state.limits.header_timeout;
    listen::serve_on(listener, app(state), tls, header_timeout, token).await
}

pub use cli::cli_main;
