//! Extractors whose rejections are `ApiError`s, so malformed JSON or query
//! strings get the same JSON error body as every other failure. Every path a
//! request names is held to the hub's length limits here.
use crate::error::ApiError;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::Json;
use serde::de::DeserializeOwned;
use ssync_common::api::RequestPaths;
use ssync_common::PathLimits;

fn within_limits<S, T: RequestPaths>(state: &S, v: T) -> Result<T, ApiError>
where
    PathLimits: FromRef<S>,
{
    let limits = PathLimits::from_ref(state);
    v.paths().into_iter().try_for_each(|p| limits.check(p))?;
    Ok(v)
}

pub struct AppJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + RequestPaths> FromRequest<S> for AppJson<T>
where
    PathLimits: FromRef<S>,
{
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(AppJson(within_limits(state, v)?)),
            Err(rej) if rej.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::TooLarge(format!("{} (--max-body-mib)", rej.body_text())))
            }
            Err(JsonRejection::BytesRejection(rej)) => Err(crate::body_limits::body_error("the request body", &rej)),
            Err(rej) => Err(ApiError::BadRequest(rej.body_text())),
        }
    }
}

pub struct AppQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + RequestPaths> FromRequestParts<S> for AppQuery<T>
where
    PathLimits: FromRef<S>,
{
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // The query decoder would turn bytes that are not UTF-8 into U+FFFD
        // and carry on; a path made of them is refused instead.
        let raw = parts.uri.query().unwrap_or_default().replace('+', " ");
        if percent_encoding::percent_decode_str(&raw).decode_utf8().is_err() {
            return Err(ApiError::BadRequest("the query string is not valid UTF-8 once percent-decoded".into()));
        }
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(AppQuery(within_limits(state, v)?)),
            Err(rej) => Err(ApiError::BadRequest(rej.body_text())),
        }
    }
}

/// Who a request comes from: the `X-Ssync-Device` header (a short name
/// recorded with each change) and the `X-Ssync-Mount` header (the mount's id).
pub struct Device(pub crate::tree::Author);

fn header_value(parts: &Parts, name: &str, max: usize) -> Result<Option<String>, ApiError> {
    let Some(v) = parts.headers.get(name) else { return Ok(None) };
    let ok = |s: &str| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    };
    match v.to_str() {
        Ok(s) if ok(s) => Ok(Some(s.to_string())),
        _ => {
            Err(ApiError::BadRequest(format!("{name} must be 1 to {max} characters of A-Z, a-z, 0-9, '.', '_' or '-'")))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Device {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Ok(Device(crate::tree::Author {
            device: header_value(parts, ssync_common::api::DEVICE_HEADER, 64)?,
            origin: header_value(parts, ssync_common::api::MOUNT_HEADER, 64)?,
        }))
    }
}
