//! `ApiError`: every way a request can fail, mapped to one status and one JSON
//! `ErrorBody`. Internal details (SQL, file paths) go to the log, never the wire.
use crate::db::DbError;
use crate::store::StoreError;
use crate::tree::TreeError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ssync_common::api::{codes, Entry, ErrorBody};
use ssync_common::PathError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid path: {0}")]
    BadPath(#[from] PathError),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    BadHash(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict { message: String, current: Option<Box<Entry>> },
    #[error("{message}")]
    Blocked { message: String, current: Option<Box<Entry>> },
    #[error("{0}")]
    MissingChunks(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    TooMany(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Put on error responses so the logging middleware can log the cause once.
#[derive(Clone)]
pub struct LoggedError(pub String);

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadPath(_) => (StatusCode::BAD_REQUEST, codes::BAD_PATH),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, codes::BAD_REQUEST),
            ApiError::BadHash(_) => (StatusCode::BAD_REQUEST, codes::BAD_HASH),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, codes::NOT_FOUND),
            ApiError::Conflict { .. } => (StatusCode::CONFLICT, codes::CONFLICT),
            ApiError::Blocked { .. } => (StatusCode::CONFLICT, codes::PATH_BLOCKED),
            ApiError::MissingChunks(_) => (StatusCode::UNPROCESSABLE_ENTITY, codes::MISSING_CHUNKS),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, codes::TOO_LARGE),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, codes::FORBIDDEN),
            ApiError::Timeout(_) => (StatusCode::REQUEST_TIMEOUT, codes::TIMEOUT),
            ApiError::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, codes::TOO_MANY),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, codes::METHOD_NOT_ALLOWED),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL),
        }
    }
}

impl ApiError {
    /// The status and the JSON body this error is answered with.
    pub fn answer(self) -> (StatusCode, ErrorBody) {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Internal(_) => "internal error; see the hub's log".to_string(),
            other => other.to_string(),
        };
        let current = match self {
            ApiError::Conflict { current, .. } | ApiError::Blocked { current, .. } => current.map(|b| *b),
            _ => None,
        };
        (status, ErrorBody { code: code.to_string(), message, current })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let logged = LoggedError(self.to_string());
        let (status, body) = self.answer();
        let mut resp = (status, Json(body)).into_response();
        resp.extensions_mut().insert(logged);
        resp
    }
}

impl From<TreeError> for ApiError {
    fn from(e: TreeError) -> Self {
        match e {
            TreeError::Conflict { .. } => {
                let message = e.to_string();
                let TreeError::Conflict { current, .. } = e else { unreachable!() };
                ApiError::Conflict { message, current }
            }
            TreeError::Blocked { message, current } => ApiError::Blocked { message, current },
            TreeError::BadPath(e) => ApiError::BadPath(e),
            TreeError::NotFound(m) => ApiError::NotFound(m),
            TreeError::Db(e) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => ApiError::NotFound(e.to_string()),
            StoreError::Io(_) => ApiError::Internal(e.to_string()),
            StoreError::Db(d) => d.into(),
        }
    }
}

impl From<ssync_common::frames::FrameError> for ApiError {
    fn from(e: ssync_common::frames::FrameError) -> Self {
        use ssync_common::frames::FrameError;
        match e {
            FrameError::HashMismatch { .. } => ApiError::BadHash(e.to_string()),
            FrameError::TooLarge(_) => ApiError::TooLarge(e.to_string()),
            _ => ApiError::BadRequest(e.to_string()),
        }
    }
}

impl From<ssync_common::api::WireError> for ApiError {
    fn from(e: ssync_common::api::WireError) -> Self {
        ApiError::BadRequest(e.0)
    }
}
