//! A data dir written before chunking (ids were the hash of the whole content,
//! stored as one object) is converted when the hub starts: each content is cut
//! into chunks, its versions take the new id, and it reads back unchanged.
//! One written before packs (a file per chunk) has its chunks moved into a pack.
mod support;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use ssync_common::api::{Entry, EntryKind};
use ssync_common::chunks::{file_id, list_of};
use ssync_common::{ContentHash, RelPath};
use ssync_server::db::{entries, DbError, Scoped, ShareId};
use ssync_server::{AppState, Limits};

fn pseudo_random(n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    blake3::Hasher::new().update(b"upgrade").finalize_xof().fill(&mut out);
    out
}

/// Where hubs before packs kept an object named `hash`.
fn write_object(data_dir: &std::path::Path, hash: &ContentHash, data: &[u8]) {
    let hex = hash.to_hex();
    let dir = data_dir.join("objects").join(&hex[..2]);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(&hex[2..]), data).unwrap();
}

async fn read_content(state: &AppState, id: ContentHash) -> Vec<u8> {
    let req = Request::get(format!("/v1/shares/default/content/{id}")).body(Body::empty()).unwrap();
    let resp = support::send(state, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes().to_vec()
}

#[tokio::test]
async fn chunk_files_move_into_packs() {
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random(900_000);
    let list = list_of(&data);
    {
        // What a hub before packs left: a chunk list, and a file per chunk.
        let state = AppState::open(dir.path(), Limits::default()).await.unwrap();
        for (off, c) in list.with_offsets() {
            write_object(dir.path(), &c.hash, &data[off as usize..off as usize + c.len as usize]);
        }
        support::put_file(&state, "f", &list).await;
    }
    let state = AppState::open(dir.path(), Limits::default()).await.unwrap();
    assert!(read_content(&state, list.id()).await == data, "the content reads back unchanged");
    assert!(!dir.path().join("objects").exists(), "nothing is left under objects/");
    assert_eq!(state.store.list_packs().unwrap().len(), 1);
}

#[tokio::test]
async fn whole_content_objects_become_chunk_lists() {
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random(700_000);
    let old_id = ContentHash::of(&data);
    {
        // What an older hub left: one object named by the whole content's hash.
        let state = AppState::open(dir.path(), Limits::default()).await.unwrap();
        write_object(dir.path(), &old_id, &data);
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
            origin: None,
            owner: None,
            xattrs: None,
            node: Some(ssync_common::NodeId::random()),
            parent: None,
        };
        state
            .db
            .call(move |c| {
                entries::put(&Scoped::new(c, ShareId::DEFAULT), &e).map_err(DbError::from)?;
                c.execute("UPDATE shares SET last_seq = 1 WHERE id = 1", []).map_err(DbError::from)?;
                Ok::<_, DbError>(())
            })
            .await
            .unwrap();
    }
    let state = AppState::open(dir.path(), Limits::default()).await.unwrap();
    let path = RelPath::parse("old.bin").unwrap();
    let now = state
        .db
        .call(move |c| Ok::<_, DbError>(entries::get(&Scoped::new(c, ShareId::DEFAULT), &path)?))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.hash, Some(file_id(&data)), "the entry takes the id of its chunk list");
    assert_eq!(now.version, 1, "converting is not a change");
    assert!(read_content(&state, file_id(&data)).await == data, "the content reads back unchanged");
    assert!(!dir.path().join("objects").exists(), "the old object is gone once converted");
}
