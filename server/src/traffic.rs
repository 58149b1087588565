//! Bytes the hub received and sent, counted on every request and response
//! (bodies as they stream, plus an estimate of the request/status line and
//! headers), so transfer sizes are measured, not guessed. Served at
//! `GET /v1/stats` and logged once a minute when they change.
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;
use ssync_common::api::Stats;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
pub struct Traffic {
    received: AtomicU64,
    sent: AtomicU64,
    requests: AtomicU64,
}

impl Traffic {
    pub fn stats(&self) -> Stats {
        Stats {
            bytes_received: self.received.load(Ordering::Relaxed),
            bytes_sent: self.sent.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
        }
    }
}

fn header_bytes(h: &HeaderMap) -> u64 {
    h.iter().map(|(k, v)| (k.as_str().len() + v.len() + 4) as u64).sum::<u64>() + 2
}

fn counted(body: Body, counter: Arc<Traffic>, sent: bool) -> Body {
    Body::new(body.map_frame(move |frame| {
        if let Some(data) = frame.data_ref() {
            let c = if sent { &counter.sent } else { &counter.received };
            c.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        frame
    }))
}

/// Middleware: counts one request and its response.
pub async fn count(State(t): State<Arc<Traffic>>, req: Request, next: Next) -> Response {
    t.requests.fetch_add(1, Ordering::Relaxed);
    let line = req.method().as_str().len() + req.uri().to_string().len() + 12;
    t.received.fetch_add(line as u64 + header_bytes(req.headers()), Ordering::Relaxed);
    let (parts, body) = req.into_parts();
    let req = Request::from_parts(parts, counted(body, t.clone(), false));
    let resp = next.run(req).await;
    t.sent.fetch_add(17 + header_bytes(resp.headers()), Ordering::Relaxed);
    let (parts, body) = resp.into_parts();
    Response::from_parts(parts, counted(body, t, true))
}

/// Logs the totals once a minute while they change, until `cancel`.
pub async fn log_periodically(t: Arc<Traffic>, cancel: CancellationToken) {
    let mut last = Stats::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = cancel.cancelled() => break,
        }
        let now = t.stats();
        if now != last {
            tracing::info!(received = now.bytes_received, sent = now.bytes_sent, requests = now.requests, "traffic");
            last = now;
        }
    }
    let s = t.stats();
    tracing::info!(received = s.bytes_received, sent = s.bytes_sent, requests = s.requests, "traffic since start");
}
