//! Limits every request body shares, applied before a handler reads a byte:
//! - a `Content-Length` over the endpoint's limit is answered 413 at once
//!   (without it, a client that declares 1 GiB and sends nothing would hold
//!   the request until the idle limit, and one that sends it would be read);
//! - a body that stalls for `--body-idle-timeout` ends the request with 408
//!   (the timer restarts with every piece that arrives), so a client that
//!   sends one byte of a JSON body cannot hold a connection for ever.
//!
//! Handlers see a stalled body as a read error; `body_error` turns any body
//! read error into the answer, so the JSON extractor and the streamed chunk
//! upload say the same thing.
use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use std::time::Duration;
use tower_http::timeout::{TimeoutBody, TimeoutError};

/// The one endpoint that takes more than a JSON body: chunk uploads.
const UPLOAD_PATH: &str = "/v1/chunks";

/// The most bytes a request to `path` may carry, and the flag that sets it.
pub fn limit_for(state: &AppState, path: &str) -> (u64, &'static str) {
    match path {
        UPLOAD_PATH => (state.limits.max_upload_bytes, "--max-upload-mib"),
        _ => (state.limits.max_json_bytes as u64, "--max-body-mib"),
    }
}

pub async fn enforce(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (max, flag) = limit_for(&state, req.uri().path());
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > max) {
        let msg = format!("this request declares {n} bytes; this endpoint takes at most {max} ({flag})");
        tokio::spawn(linger(req.into_body()));
        return ApiError::TooLarge(msg).into_response();
    }
    let idle = state.limits.body_idle;
    next.run(req.map(|b| Body::new(TimeoutBody::new(idle, b)))).await
}

/// How long a refused body is read and thrown away after its answer.
const LINGER_FOR: Duration = Duration::from_secs(10);
/// How long the reading waits for the next piece before it gives up.
const LINGER_IDLE: Duration = Duration::from_secs(2);

/// Reads a refused body to its end (within `LINGER_FOR`) and throws it away,
/// as nginx's lingering close does. A client sends its whole body before it
/// reads an answer; if the hub closed the connection with the body unread,
/// the kernel would reset it and the client would see a broken pipe instead
/// of the 413 that says what to change. Bounded in time, so a client that
/// declares a huge body costs at most `LINGER_FOR` of a connection.
async fn linger(body: Body) {
    let mut stream = body.into_data_stream();
    let give_up = tokio::time::Instant::now() + LINGER_FOR;
    loop {
        let next = tokio::time::timeout(LINGER_IDLE, stream.next());
        match tokio::time::timeout_at(give_up, next).await {
            Ok(Ok(Some(Ok(_)))) => continue,
            _ => return,
        }
    }
}

/// What a failed body read means for the client: a stall is 408, anything
/// else (a connection cut mid-body, a malformed chunked encoding) a 400.
pub fn body_error(what: &str, e: &(dyn std::error::Error + 'static)) -> ApiError {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<TimeoutError>() {
            return ApiError::Timeout(format!("{what} stalled longer than the hub waits (--body-idle-timeout)"));
        }
        cause = c.source();
    }
    ApiError::BadRequest(format!("{what} was cut off: {e}"))
}
