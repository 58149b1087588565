//! The API document: served without a token, self-consistent (every `$ref`
//! resolves), and true of the router: every documented operation is routed
//! and answers a malformed request with a status it documents.
mod support;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use ssync_server::{app, AppState, Limits};
use tower::ServiceExt;

async fn document(state: &AppState) -> Value {
    let req = Request::get("/v1/openapi.json").body(Body::empty()).unwrap();
    let resp = app(state.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "the document needs no token");
    assert_eq!(resp.headers()["content-type"], "application/json");
    serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap()
}

/// Every (method, path, operation) of the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.push((method.to_uppercase(), path.clone(), op.clone()));
        }
    }
    out
}

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|v| refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_describes_the_router() {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(dir.path(), Limits::default()).await.unwrap();
    let doc = document(&state).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{}", doc["openapi"]);

    let mut all_refs = Vec::new();
    refs(&doc, &mut all_refs);
    for r in &all_refs {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(doc["components"]["schemas"].get(name).is_some(), "{r} does not resolve");
    }

    let ops = operations(&doc);
    assert!(ops.len() >= 19, "only {} operations documented", ops.len());
    let zero = "0".repeat(64);
    for (method, path, op) in &ops {
        let open = op["security"] == serde_json::json!([{}]);
        let documented: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
        if !open {
            assert!(documented.contains(&&"401".to_string()), "{method} {path} does not document 401");
        }
        // A malformed request: an empty JSON object, no query, a zero hash.
        let uri = path.replace("{id}", &zero);
        let body = if method == "POST" { Body::from("{}") } else { Body::empty() };
        let req = Request::builder().method(method.as_str()).uri(&uri).header("content-type", "application/json");
        let resp = support::send(&state, req.body(body).unwrap()).await;
        let status = resp.status().as_u16().to_string();
        let text = String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes()).to_string();
        assert!(!text.contains("no such endpoint"), "{method} {path} is documented but not routed");
        assert!(documented.contains(&&status), "{method} {path} answered {status}, not in {documented:?}: {text}");
    }
    let open: Vec<&String> =
        ops.iter().filter(|(_, _, op)| op["security"] == serde_json::json!([{}])).map(|(_, p, _)| p).collect();
    assert_eq!(open, ["/v1/health", "/v1/openapi.json"], "only these need no token");
}
