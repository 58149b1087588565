//! The hub over HTTP, as a `Remote`: each request of the engine becomes the
//! hub's endpoint call through `client::Remote` (the one place the mount
//! talks HTTP), a new file's content is sent the chunked way first
//! (`chunk_upload`), and the hub's refusals are kept apart from failures to
//! reach it.
//!
//! The engine runs on a thread of its own and waits for each answer; the
//! calls run on the mount's tokio runtime.
use super::canopy::Meta;
use super::hub_view::Request;
use super::remote::{BatchAnswer, Refusal, Remote};
use super::upload_lane::{UploadLane, LANE_MIN};
use crate::content::file_chunks::list_of_file;
use crate::local::clock::now_ns;
use crate::remote::chunk_upload::{read_small_file, send_listed_files, FileMeta, Listed};
use crate::remote::client::{self, ApiError};
use ssync_common::api::{
    BatchRequest, Change, CommitRequest, ContentKind, DeleteRequest, EntriesPage, Entry, ExchangeRequest, MkdirRequest,
    RenameRequest, SetAttrRequest, WireList, INLINE_MAX,
};
use ssync_common::{ChunkList, ContentHash, NodeId as WireId};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

/// Where this machine holds node `id`'s bytes (its cache file), if it holds
/// them and they are the content given.
pub type Contents = Box<dyn Fn(u128, &ContentHash) -> Option<Held> + Send>;

/// A content's bytes here: the file, and the modification time the file
/// holding them has (sent with it; None: the time it is sent).
pub struct Held {
    pub file: PathBuf,
    pub mtime_ns: Option<i64>,
    /// Its chunk list, when identifying the content recorded it (big
    /// files): sending then reads only the chunks the hub lacks.
    pub list: Option<ChunkList>,
}

pub struct HttpRemote {
    client: client::Remote,
    runtime: tokio::runtime::Handle,
    contents: Contents,
    lane: UploadLane,
}

impl HttpRemote {
    /// `client` must not name a mount (`for_mount`): the engine reads its
    /// own changes in the feed too, which is how a lost answer is confirmed.
    /// `wake` is called when a big file's chunks reached the hub.
    pub fn new(
        client: client::Remote,
        runtime: tokio::runtime::Handle,
        contents: Contents,
        wake: std::sync::Arc<dyn Fn() + Send + Sync>,
    ) -> HttpRemote {
        let lane = UploadLane::new(client.clone(), runtime.clone(), wake);
        HttpRemote { client, runtime, contents, lane }
    }

    /// The metadata a commit of `content` at `path` sends.
    fn file_meta(
        path: &ssync_common::RelPath,
        base: u64,
        node: u128,
        kind: super::canopy::Kind,
        mode: u32,
        meta: &Option<Box<Meta>>,
        mtime_ns: Option<i64>,
    ) -> FileMeta {
        let (owner, xattrs) = carried(meta);
        FileMeta {
            path: path.clone(),
            kind: if kind == super::canopy::Kind::Symlink { ContentKind::Symlink } else { ContentKind::File },
            base,
            mode,
            mtime_ns: mtime_ns.unwrap_or_else(now_ns),
            owner,
            xattrs,
            node: Some(WireId(node)),
        }
    }

    fn file_of(&self, node: u128, content: &ContentHash) -> Result<Held, ApiError> {
        (self.contents)(node, content)
            .ok_or_else(|| ApiError::Local(std::io::Error::other(format!("content {content} is not here"))))
    }

    /// What carries out `request` in a batch: the change itself, or for a
    /// file too big to go inline, its commit and the chunk list whose
    /// chunks must reach the hub first (sent for the whole batch at once,
    /// `send_listed_files`).
    async fn prepare(&self, request: &Request) -> Result<Prepared, ApiError> {
        Ok(Prepared::Ready(match request {
            Request::Mkdir { path, node, mode, meta } => Change::Mkdir(Self::mkdir(path, *node, *mode, meta)),
            Request::Commit { path, base, node, kind, content, mode, meta } => {
                match self.commit_of(path, *base, *node, *kind, content, *mode, meta).await? {
                    (commit, None) => Change::Commit(commit),
                    (commit, Some(listed)) => return Ok(Prepared::Chunked(commit, listed)),
                }
            }
            Request::SetAttr { path, base, mode, meta } => Change::Setattr(Self::set_attr(path, *base, *mode, meta)),
            Request::Rename { from, to, base, to_parent } => Change::Rename(Self::rename(from, to, *base, *to_parent)),
            Request::Exchange { a, a_base, b, b_base } => {
                Change::Exchange(ExchangeRequest { a: a.clone(), b: b.clone(), a_base: *a_base, b_base: *b_base })
            }
            Request::Delete { path, base } => Change::Delete(DeleteRequest { path: path.clone(), base: *base }),
        }))
    }

    /// The commit that makes `content` the file's: a small file's bytes go
    /// inline; a big file's chunks pushed by the upload lane are on the
    /// hub already; another big file's chunk list is returned beside the
    /// commit, for its chunks to be sent first. The bytes read must be the
    /// content planned, checked before anything is committed: a file
    /// written since is another content, planned anew. (Committing what was
    /// read and refusing after made the hub hold a version this mount did
    /// not know as its own, which came back through the feed as another
    /// device's edit: a conflict copy of a file only this mount wrote, as
    /// configure's config.log showed.)
    #[allow(clippy::too_many_arguments)]
    async fn commit_of(
        &self,
        path: &ssync_common::RelPath,
        base: u64,
        node: u128,
        kind: super::canopy::Kind,
        content: &ContentHash,
        mode: u32,
        meta: &Option<Box<Meta>>,
    ) -> Result<(CommitRequest, Option<Listed>), ApiError> {
        let Held { file, mtime_ns, list } = self.file_of(node, content)?;
        let meta = Self::file_meta(path, base, node, kind, mode, meta, mtime_ns);
        if let Some(pushed) = self.lane.take(content) {
            let list = pushed?;
            return Ok((meta.commit(&list, WireList::whole(&list), None), None));
        }
        if std::fs::metadata(&file).map_err(ApiError::Local)?.len() <= INLINE_MAX {
            let (list, inline) = read_small_file(&file, &HashSet::new()).map_err(ApiError::Local)?;
            if list.id() != *content {
                return Err(ApiError::ChangedWhileRead);
            }
            return Ok((meta.commit(&list, WireList::whole(&list), inline), None));
        }
        let list = match list.filter(|l| l.id() == *content) {
            Some(list) => list,
            None => {
                let of = file.clone();
                tokio::task::spawn_blocking(move || list_of_file(&of))
                    .await
                    .map_err(|e| ApiError::Local(std::io::Error::other(e)))??
            }
        };
        if list.id() != *content {
            return Err(ApiError::ChangedWhileRead);
        }
        Ok((meta.commit(&list, WireList::whole(&list), None), Some(Listed { file, list })))
    }

    fn mkdir(path: &ssync_common::RelPath, node: u128, mode: u32, meta: &Option<Box<Meta>>) -> MkdirRequest {
        let (owner, xattrs) = carried(meta);
        MkdirRequest { path: path.clone(), base: 0, mode, mtime_ns: now_ns(), owner, xattrs, node: Some(WireId(node)) }
    }

    fn set_attr(path: &ssync_common::RelPath, base: u64, mode: u32, meta: &Option<Box<Meta>>) -> SetAttrRequest {
        let (owner, xattrs) = carried(meta);
        SetAttrRequest { path: path.clone(), base, mode: Some(mode), mtime_ns: None, owner, xattrs }
    }

    fn rename(
        from: &ssync_common::RelPath,
        to: &ssync_common::RelPath,
        base: u64,
        to_parent: Option<u128>,
    ) -> RenameRequest {
        RenameRequest { from: from.clone(), to: to.clone(), base, to_base: 0, to_parent: to_parent.map(WireId) }
    }

    async fn call(&self, request: &Request) -> Result<Vec<Entry>, ApiError> {
        let c = &self.client;
        let answer = match request {
            Request::Mkdir { path, node, mode, meta } => c.mkdir(&Self::mkdir(path, *node, *mode, meta)).await?,
            Request::Commit { path, base, node, kind, content, mode, meta } => {
                // As in a batch of one: the chunks the hub lacks first.
                let (commit, listed) = self.commit_of(path, *base, *node, *kind, content, *mode, meta).await?;
                if let Some(listed) = listed {
                    if send_listed_files(c, vec![listed]).await?.contains(&true) {
                        return Err(ApiError::ChangedWhileRead);
                    }
                }
                c.commit(&commit).await?
            }
            Request::SetAttr { path, base, mode, meta } => {
                c.set_attr(&Self::set_attr(path, *base, *mode, meta)).await?
            }
            Request::Rename { from, to, base, to_parent } => {
                c.rename(&Self::rename(from, to, *base, *to_parent)).await?
            }
            Request::Exchange { a, a_base, b, b_base } => {
                let r = ExchangeRequest { a: a.clone(), b: b.clone(), a_base: *a_base, b_base: *b_base };
                c.exchange(&r).await?
            }
            Request::Delete { path, base } => c.delete(&DeleteRequest { path: path.clone(), base: *base }).await?,
        };
        Ok(answer.entries)
    }

    /// Sends the requests in one `POST /v1/batch`, after the chunks the hub
    /// lacks of the files too big to go inline (all of the batch's at once).
    /// A change that cannot be made (a file written since it was planned)
    /// ends the batch before it; if it is the first, it is refused.
    fn batch(&mut self, requests: &[Request]) -> BatchAnswer {
        use futures_util::StreamExt;
        let made: Vec<Result<Prepared, ApiError>> = self.runtime.block_on(
            futures_util::stream::iter(requests.iter().map(|r| self.prepare(r))).buffered(PREPARED_AT_ONCE).collect(),
        );
        // The changes up to the first that cannot be made.
        let (mut changes, mut files, mut chunked_at) = (Vec::new(), Vec::new(), Vec::new());
        let mut stop = None;
        for p in made {
            match p {
                Ok(Prepared::Ready(c)) => changes.push(c),
                Ok(Prepared::Chunked(commit, listed)) => {
                    chunked_at.push(changes.len());
                    files.push(listed);
                    changes.push(Change::Commit(commit));
                }
                Err(e) => {
                    stop = Some(e);
                    break;
                }
            }
        }
        // Their chunks first; a file written since, or chunks that did not
        // reach the hub, end the batch before that file's commit.
        if !files.is_empty() {
            let cut = match self.runtime.block_on(send_listed_files(&self.client, files)) {
                Ok(changed) => {
                    chunked_at.iter().zip(changed).find(|(_, c)| *c).map(|(at, _)| (*at, ApiError::ChangedWhileRead))
                }
                Err(e) => Some((chunked_at[0], e)),
            };
            if let Some((at, why)) = cut {
                changes.truncate(at);
                stop = Some(why);
            }
        }
        if changes.is_empty() {
            return BatchAnswer { done: vec![], stopped: stop.map(refusal) };
        }
        match self.runtime.block_on(self.client.batch(&BatchRequest { changes })) {
            Ok(answer) => BatchAnswer {
                done: answer.done.into_iter().map(|m| m.entries).collect(),
                stopped: answer.refused.map(|r| {
                    let why = format!("{}: {} ({})", r.error.code, r.error.message, r.status);
                    match r.status {
                        401 | 403 => Refusal::Halt(why),
                        s if s < 500 => Refusal::Refused(why),
                        _ => Refusal::NoAnswer(why),
                    }
                }),
            },
            Err(e) => BatchAnswer { done: vec![], stopped: Some(refusal(e)) },
        }
    }
}

/// The owner and extended attributes a request carries: the node's owner
/// (None: the hub keeps the one it has) and all of its `user.` attributes
/// (an empty set clears the hub's).
fn carried(meta: &Option<Box<Meta>>) -> (Option<ssync_common::api::Owner>, Option<ssync_common::xattrs::Xattrs>) {
    let owner = meta.as_ref().and_then(|m| m.owner.clone());
    (owner, Some(meta.as_ref().and_then(|m| m.xattrs.clone()).unwrap_or_default()))
}

/// Changes of a batch made ready at once (small files read, big files'
/// lists read where identifying them did not record one).
const PREPARED_AT_ONCE: usize = 4;

/// A change of a batch, made ready to send.
enum Prepared {
    Ready(Change),
    /// A commit by chunk list, whose chunks the hub may lack.
    Chunked(CommitRequest, Listed),
}

/// The hub said no (nothing changed there), or the answer did not come (it
/// may have been carried out: the feed will tell).
fn refusal(e: ApiError) -> Refusal {
    match e {
        e if e.is_unauthorized() => Refusal::Halt(client::refused_token_message(&e)),
        e if e.is_forbidden() => Refusal::Halt(client::refused_grant_message(&e)),
        ApiError::Rejected { status, .. } if status < 500 => Refusal::Refused(e.to_string()),
        ApiError::ChangedWhileRead | ApiError::Inconsistent(_) | ApiError::Local(_) => Refusal::Refused(e.to_string()),
        _ => Refusal::NoAnswer(e.to_string()),
    }
}

impl Remote for HttpRemote {
    fn ready(&mut self, request: &Request) -> bool {
        let Request::Commit { content, node, .. } = request else { return true };
        // Small files go in their batch. One whose content is not here
        // (written again since it was planned; the next plan has its new
        // content) waits, and the rest of the batch goes: as the batch's
        // first change it was refused, which ended the round, and under
        // fsstress a mount sent almost nothing until the writing stopped.
        let Some(Held { file, list, .. }) = (self.contents)(*node, content) else { return false };
        if std::fs::metadata(&file).map_or(true, |m| m.len() < LANE_MIN) {
            return true;
        }
        self.lane.ready(*content, file, list)
    }

    fn send(&mut self, request: &Request) -> Result<Vec<Entry>, Refusal> {
        self.runtime.block_on(self.call(request)).map_err(refusal)
    }

    fn send_batch(&mut self, requests: &[Request]) -> BatchAnswer {
        match requests {
            [one] => match self.send(one) {
                Ok(rows) => BatchAnswer { done: vec![rows], stopped: None },
                Err(e) => BatchAnswer { done: vec![], stopped: Some(e) },
            },
            _ => self.batch(requests),
        }
    }

    fn changes_since(&mut self, cursor: u64) -> Result<EntriesPage, Refusal> {
        let page = self.runtime.block_on(self.client.changes(cursor, Duration::ZERO)).map_err(refusal)?;
        if page.cursor < cursor {
            return Err(Refusal::Halt(client::hub_behind_message(cursor, page.cursor)));
        }
        Ok(page)
    }
}
