//! The OpenAPI 3 document of the hub's API, served without a token at
//! `GET /v1/openapi.json`. It is built from the same `#[utoipa::path]`
//! annotations that register the routes (`routes.rs`), so every route is in
//! it and the document cannot describe one that does not exist.
use axum::http::header;
use axum::response::IntoResponse;
use axum::Extension;
use ssync_common::api::{ErrorBody, MutationResponse};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};
use utoipa::{Modify, PartialSchema, ToSchema};

pub const DOCUMENT_PATH: &str = "/v1/openapi.json";
/// The security scheme's name; `security(("bearer" = []))` above must match.
const BEARER: &str = "bearer";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "ssync hub API",
        description = "The API between ssync mounts and their hub. Every change gets the next number of one \
                       sequence; the change feed is everything newer than a cursor. Mutations carry the base \
                       version the client saw; a stale one gets 409 and changes nothing. Errors are JSON \
                       `ErrorBody`s."
    ),
    // Named only by `MutationAnswers`, which does not collect the schemas it refers to.
    components(schemas(ErrorBody, MutationResponse)),
    security(("bearer" = [])),
    tags(
        (name = "hub", description = "Liveness, traffic and this document"),
        (name = "feed", description = "The tree and the long-poll change feed"),
        (name = "content", description = "File contents as chunks"),
        (name = "tree", description = "Metadata mutations"),
        (name = "history", description = "Kept versions and restores"),
    )
)]
pub struct ApiDoc;

/// The document, serialized once when the router is built.
#[derive(Clone)]
pub struct Document(pub bytes::Bytes);

impl Document {
    /// `api`: what the routes' annotations made (`OpenApiRouter::split_for_parts`).
    pub fn from_routes(mut api: OpenApi) -> Document {
        // Here, not as a derive modifier: those run before the routes add their paths.
        CommonResponses.modify(&mut api);
        Document(serde_json::to_vec_pretty(&api).expect("an OpenAPI document serializes").into())
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "hub",
    security(()),
    responses((status = 200, description = "This OpenAPI 3 document", content_type = "application/json"))
)]
pub async fn document(Extension(doc): Extension<Document>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], doc.0)
}

/// Raw bytes: a file's content, or a stream of chunk frames (see `ssync_common::frames`).
pub struct Binary;

impl PartialSchema for Binary {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .content_media_type("application/octet-stream")
            .into()
    }
}
impl ToSchema for Binary {}

/// Adds the bearer scheme, and the error answers every operation can give, so
/// each handler lists only its own.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, api: &mut OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        for item in api.paths.paths.values_mut() {
            let ops = [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch];
            for op in ops.into_iter().flatten() {
                add_common(op);
            }
        }
    }
}

fn add_common(op: &mut Operation) {
    let open = op.security.as_ref().is_some_and(|s| s.iter().any(|r| *r == SecurityRequirement::default()));
    let mut add = |status: &str, description: &str| {
        if !op.responses.responses.contains_key(status) {
            let body = ContentBuilder::new().schema(Some(Ref::from_schema_name(ErrorBody::name()))).build();
            let response = ResponseBuilder::new().description(description).content("application/json", body);
            op.responses.responses.insert(status.to_string(), response.build().into());
        }
    };
    if !open {
        add("401", "No token, or one the hub does not know (mistyped or revoked)");
        add("400", "A malformed request: bad path, hash, JSON, query or header");
        if op.parameters.iter().flatten().any(|p| p.name == "share") {
            add("403", "The token has no grant on the share, or only a read-only one where a change needs read-write");
        }
    }
}

/// The share a tree endpoint works on (`/v1/shares/{share}/…`).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // describes the path segment `scope::resolve` reads; never built
pub struct SharePath {
    /// The share's name: 1 to 64 of a-z 0-9 . _ -
    #[param(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    share: String,
}

/// The header every mutation may carry.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // describes the header `extract::Device` reads; never built
pub struct DeviceHeader {
    /// The device making the change, recorded with it: 1 to 64 of A-Z a-z 0-9 . _ -
    #[param(rename = "x-ssync-device", pattern = "^[A-Za-z0-9._-]{1,64}$")]
    device: Option<String>,
    /// The mount making the change (its random id), recorded with it, so the
    /// mount knows its own changes in the feed: 1 to 64 of A-Z a-z 0-9 . _ -
    #[param(rename = "x-ssync-mount", pattern = "^[A-Za-z0-9._-]{1,64}$")]
    mount: Option<String>,
}

/// The answers of every mutation.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // describes the answers; handlers return `MutationResponse` or `ApiError`
pub enum MutationAnswers {
    /// What changed, in sequence order: created parents, moved entries and tombstones included
    #[response(status = 200)]
    Done(MutationResponse),
    /// The base version is stale, or the tree's shape forbids it; `current` is the entry now
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// Too large a body (--max-body-mib)
    #[response(status = 413)]
    TooLarge(ErrorBody),
}
