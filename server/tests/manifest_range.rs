//! `GET /v1/shares/default/manifest/{id}?from=A&to=B`: only the chunks that hold bytes of
//! the range, and where the first one starts. What a mount reading part of a
//! file it does not cache asks for.
mod support;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use ssync_common::api::ManifestResponse;
use ssync_common::chunks::list_of;
use ssync_server::{AppState, Limits};

#[tokio::test]
async fn a_ranged_manifest_names_only_the_chunks_that_cover_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(dir.path(), Limits::default()).await.unwrap();
    let mut data = vec![0u8; 3_000_000];
    blake3::Hasher::new().update(b"ranged manifest").finalize_xof().fill(&mut data);
    let list = list_of(&data);
    assert!(list.len() > 10, "the file has many chunks");
    support::put_file(&state, "f", &list).await;
    let get =
        |q: &str| Request::get(format!("/v1/shares/default/manifest/{}?{q}", list.id())).body(Body::empty()).unwrap();

    let (status, v) = support::call_json(&state, get("from=2000000&to=2004096")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let m: ManifestResponse = serde_json::from_value(v).unwrap();
    let part = m.list.resolve(None).unwrap();
    let (want_off, want) = list.slice(2_000_000, 2_004_096);
    assert_eq!((m.offset, &part, m.size), (Some(want_off), &want, data.len() as u64));
    assert!(!part.is_empty() && part.len() <= 2, "one or two chunks, not {}", part.len());
    let start = want_off as usize;
    let mut at = start;
    for c in &part.0 {
        assert_eq!(ssync_common::ContentHash::of(&data[at..at + c.len as usize]), c.hash);
        at += c.len as usize;
    }
    assert!(start <= 2_000_000 && at >= 2_004_096, "the slice covers the range");

    let (status, v) = support::call_json(&state, get("from=10&to=5")).await;
    assert_eq!((status, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")), "{v}");
    assert!(v["message"].as_str().unwrap().contains("from (10) is past to (5)"), "{v}");

    let (status, v) = support::call_json(&state, get("inline=true")).await;
    assert_eq!(status, StatusCode::OK);
    let whole: ManifestResponse = serde_json::from_value(v).unwrap();
    assert_eq!((whole.offset, whole.list.resolve(None).unwrap()), (None, list));
}
