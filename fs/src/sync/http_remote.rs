//! The hub over HTTP, as a `Remote`: each request of the engine becomes the
//! hub's endpoint call through `client::Remote` (the one place the mount
//! talks HTTP), a new file's content is sent the chunked way first
//! (`chunk_upload`), and the hub's refusals are kept apart from failures to
//! reach it.
//!
//! The engine runs on a thread of its own and waits for each answer; the
//! calls run on the mount's tokio runtime.
use super::hub_view::Request;
use super::remote::{Refusal, Remote};
use crate::chunk_upload::{upload_file, FileMeta};
use crate::client::{self, ApiError};
use crate::fs::now_ns;
use ssync_common::api::{
    ContentKind, DeleteRequest, Entry, ExchangeRequest, MkdirRequest, RenameRequest, SetAttrRequest,
};
use ssync_common::{ContentHash, NodeId as WireId};
use std::path::PathBuf;
use std::time::Duration;

/// Where this machine holds a content's bytes (a cache file), if it does.
pub type Contents = Box<dyn Fn(&ContentHash) -> Option<PathBuf> + Send>;

pub struct HttpRemote {
    client: client::Remote,
    runtime: tokio::runtime::Handle,
    contents: Contents,
}

impl HttpRemote {
    /// `client` must not name a mount (`for_mount`): the engine reads its
    /// own changes in the feed too, which is how a lost answer is confirmed.
    pub fn new(client: client::Remote, runtime: tokio::runtime::Handle, contents: Contents) -> HttpRemote {
        HttpRemote { client, runtime, contents }
    }

    async fn call(&self, request: &Request) -> Result<Vec<Entry>, ApiError> {
        let c = &self.client;
        let answer = match request {
            Request::Mkdir { path, node, mode } => {
                let r = MkdirRequest {
                    path: path.clone(),
                    base: 0,
                    mode: *mode,
                    mtime_ns: now_ns(),
                    owner: None,
                    xattrs: None,
                    node: Some(WireId(*node)),
                };
                c.mkdir(&r).await?
            }
            Request::Commit { path, base, node, kind, content, mode } => {
                let file = (self.contents)(content)
                    .ok_or_else(|| ApiError::Local(std::io::Error::other(format!("content {content} is not here"))))?;
                let meta = FileMeta {
                    path: path.clone(),
                    kind: if *kind == super::canopy::Kind::Symlink { ContentKind::Symlink } else { ContentKind::File },
                    base: *base,
                    mode: *mode,
                    mtime_ns: now_ns(),
                    owner: None,
                    xattrs: None,
                    node: Some(WireId(*node)),
                };
                let (answer, list) = upload_file(c, file, &meta, None, &|| true).await;
                // The bytes read must be the content planned: a file changed
                // since is another content, planned anew.
                if list.is_some_and(|l| l.id() != *content) {
                    return Err(ApiError::ChangedWhileRead);
                }
                answer?
            }
            Request::SetMode { path, base, mode } => {
                let r = SetAttrRequest {
                    path: path.clone(),
                    base: *base,
                    mode: Some(*mode),
                    mtime_ns: None,
                    owner: None,
                    xattrs: None,
                };
                c.set_attr(&r).await?
            }
            Request::Rename { from, to, base, to_parent } => {
                let r = RenameRequest {
                    from: from.clone(),
                    to: to.clone(),
                    base: *base,
                    to_base: 0,
                    to_parent: to_parent.map(WireId),
                };
                c.rename(&r).await?
            }
            Request::Exchange { a, a_base, b, b_base } => {
                let r = ExchangeRequest { a: a.clone(), b: b.clone(), a_base: *a_base, b_base: *b_base };
                c.exchange(&r).await?
            }
            Request::Delete { path, base } => c.delete(&DeleteRequest { path: path.clone(), base: *base }).await?,
        };
        Ok(answer.entries)
    }
}

/// The hub said no (nothing changed there), or the answer did not come (it
/// may have been carried out: the feed will tell).
fn refusal(e: ApiError) -> Refusal {
    match e {
        ApiError::Rejected { status, .. } if status < 500 => Refusal::Refused(e.to_string()),
        ApiError::ChangedWhileRead | ApiError::Inconsistent(_) | ApiError::Local(_) => Refusal::Refused(e.to_string()),
        _ => Refusal::NoAnswer(e.to_string()),
    }
}

impl Remote for HttpRemote {
    fn send(&mut self, request: &Request) -> Result<Vec<Entry>, Refusal> {
        self.runtime.block_on(self.call(request)).map_err(refusal)
    }

    fn changes_since(&mut self, cursor: u64) -> Result<Vec<Entry>, Refusal> {
        let page = self.runtime.block_on(self.client.changes(cursor, Duration::ZERO)).map_err(refusal)?;
        Ok(page.entries)
    }
}
