//! A data dir written before chunking (ids were the hash of the whole content,
//! stored as one object) is converted when the hub starts: each content is cut
//! into chunks, its versions take the new id, and it reads back unchanged.
use axum::body::Body;
use axum::http::{Request, StatusCode};
use ssync_common::api::{Entry, EntryKind};
use ssync_common::chunks::file_id;
use ssync_common::{ContentHash, RelPath};
use ssync_server::db::{entries, DbError};
use ssync_server::{app, AppState, Limits};
use tower::ServiceExt;

fn pseudo_random(n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    blake3::Hasher::new().update(b"upgrade").finalize_xof().fill(&mut out);
    out
}

#[tokio::test]
async fn whole_content_objects_become_chunk_lists() {
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random(700_000);
    let old_id = ContentHash::of(&data);
    {
        // What an older hub left: one object named by the whole content's hash.
        let state = AppState::open(dir.path(), Limits::default()).await.unwrap();
        std::fs::create_dir_all(state.store.object_path(&old_id).parent().unwrap()).unwrap();
        std::fs::write(state.store.object_path(&old_id), &data).unwrap();
        let e = Entry {
            path: RelPath::parse("old.bin").unwrap(),
            kind: EntryKind::File,
            version: 1,
            deleted: false,
            hash: Some(old_id),
            size: data.len() as u64,
            mode: 0o644,
            mtime_ns: 1,
            device: None,
            moved_to: None,
        };
        state
            .db
            .call(move |c| {
                entries::put(c, &e).map_err(DbError::from)?;
                c.execute("UPDATE sequence SET last = 1", []).map_err(DbError::from)?;
                Ok::<_, DbError>(())
            })
            .await
            .unwrap();
    }
    let state = AppState::open(dir.path(), Limits::default()).await.unwrap();
    let path = RelPath::parse("old.bin").unwrap();
    let now = state.db.call(move |c| Ok::<_, DbError>(entries::get(c, &path)?)).await.unwrap().unwrap();
    assert_eq!(now.hash, Some(file_id(&data)), "the entry takes the id of its chunk list");
    assert_eq!(now.version, 1, "converting is not a change");
    let req = Request::get(format!("/v1/content/{}", file_id(&data))).body(Body::empty()).unwrap();
    let resp = app(state.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
    assert!(body[..] == data[..], "the content reads back unchanged");
}
