//! `Remote`: the only place the mount talks HTTP to the hub.
//!
//! Errors keep "the hub said no" (`Rejected`, with the hub's JSON body) apart
//! from "we could not reach the hub" (`Transport`), because the sync engine
//! resolves the first and retries the second.
use futures_util::StreamExt;
use reqwest::{Client, Response, StatusCode};
use serde::de::DeserializeOwned;
use ssync_common::api::{
    BatchRequest, BatchResponse, ChunksRequest, CommitRequest, DeleteRequest, DigestQuery, EntriesPage, Entry,
    ErrorBody, ExchangeRequest, FetchRequest, FolderDigest, FolderQuery, HashList, Health, ManifestResponse,
    ManifestsRequest, ManifestsResponse, MissingResponse, MkdirRequest, MutationResponse, RenameRequest,
    RestoreRequest, RestoreTreeRequest, SetAttrRequest, StoredResponse, VersionsResponse, DEVICE_HEADER, MOUNT_HEADER,
};
use ssync_common::frames::{Chunk, FrameReader};
use ssync_common::share::{ShareAccess, SharesResponse, DEFAULT_SHARE};
use ssync_common::{ChunkList, ContentHash, RelPath};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Most hashes the hub takes in one request.
const MAX_HASHES: usize = 16_384;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the hub refused ({status}): {} ({})", body.message, body.code)]
    Rejected { status: u16, body: Box<ErrorBody> },
    #[error("cannot reach the hub: {0}")]
    Transport(String),
    #[error("unexpected answer from the hub: {0}")]
    Protocol(String),
    #[error("local i/o during transfer: {0}")]
    Local(#[from] std::io::Error),
    /// The file was written while it was read: what was read may be torn,
    /// so it is not committed (it is read again).
    #[error("the file changed while it was read")]
    ChangedWhileRead,
    /// What the hub holds for one file does not add up (a chunk list whose
    /// lengths or total disagree with the bytes or the entry, as an old hub
    /// could accept): that entry is refused, the rest of the feed goes on.
    #[error("the hub's data for this file does not add up: {0}")]
    Inconsistent(String),
}

/// What a mount says when the hub refuses its token.
pub fn refused_token_message(e: &ApiError) -> String {
    format!(
        "the hub refused this mount's token ({e}): syncing stopped, local changes stay queued. \
         Put a valid token in the token file (or SSYNC_TOKEN) and restart ssync-mount"
    )
}

/// What a mount says when the hub refuses its token the share.
pub fn refused_grant_message(e: &ApiError) -> String {
    let why = match e {
        ApiError::Rejected { body, .. } => body.message.clone(),
        other => other.to_string(),
    };
    format!(
        "the hub refused this mount's share ({why}): syncing stopped, local changes stay queued. \
         Restart ssync-mount once the grant is back"
    )
}

/// What a mount says when the hub's change sequence is behind its own.
pub fn hub_behind_message(ours: u64, hubs: u64) -> String {
    format!(
        "the hub's change sequence ({hubs}) is behind this cache ({ours}): it is a different, wiped or \
         restored hub. Not applying its changes, so no local file is deleted; local changes stay queued. \
         To start over, stop this mount and start it with a new --cache-dir."
    )
}

impl ApiError {
    /// The hub does not accept this mount's token (missing, wrong or revoked).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, ApiError::Rejected { status: 401, .. })
    }

    /// The token has no grant on the share (revoked, or read-only where a
    /// change needs read-write).
    pub fn is_forbidden(&self) -> bool {
        matches!(self, ApiError::Rejected { status: 403, .. })
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Rejected { body, .. } => Some(&body.code),
            _ => None,
        }
    }

    /// With a refusal: the entry as the hub has it now.
    pub fn current(&self) -> Option<&Entry> {
        match self {
            ApiError::Rejected { body, .. } => body.current.as_ref(),
            _ => None,
        }
    }

    /// Worth trying again later: the hub was unreachable or failed on its side,
    /// or it lost chunks a commit named (the next try sends them again).
    pub fn is_retryable(&self) -> bool {
        match self {
            ApiError::Transport(_) | ApiError::Local(_) => true,
            ApiError::Rejected { status, body } => {
                *status >= 500 || body.code == ssync_common::api::codes::MISSING_CHUNKS
            }
            ApiError::Protocol(_) => true,
            ApiError::ChangedWhileRead | ApiError::Inconsistent(_) => false,
        }
    }
}

fn transport(e: reqwest::Error) -> ApiError {
    // Show the whole chain: reqwest's top message alone is "error sending request".
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    ApiError::Transport(msg)
}

#[derive(Debug, thiserror::Error)]
#[error("--server '{0}' is not a hub address; give HOST:PORT, http://HOST:PORT or https://HOST:PORT")]
pub struct BadServerAddress(String);

#[derive(Debug, thiserror::Error)]
pub enum CaCertError {
    #[error("cannot read the CA certificate {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{} holds no PEM certificate (-----BEGIN CERTIFICATE-----): {reason}", path.display())]
    NotPem { path: PathBuf, reason: String },
}

/// The certificates in a PEM file (a CA, or a bundle of them).
fn load_ca_cert(path: &Path) -> Result<Vec<reqwest::Certificate>, CaCertError> {
    let pem = std::fs::read(path).map_err(|source| CaCertError::Read { path: path.into(), source })?;
    let not_pem = |reason: String| CaCertError::NotPem { path: path.into(), reason };
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| not_pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(not_pem("no certificate in it".into()));
    }
    Ok(certs)
}

/// Accepts `host:port` or a URL (`http://host:port`), returns the base URL.
pub fn parse_server(s: &str) -> Result<String, BadServerAddress> {
    let with_scheme = if s.contains("://") { s.to_string() } else { format!("http://{s}") };
    let url = reqwest::Url::parse(&with_scheme).map_err(|_| BadServerAddress(s.into()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(BadServerAddress(s.into()));
    }
    Ok(with_scheme.trim_end_matches('/').to_string())
}

#[derive(Clone)]
pub struct Remote {
    http: Client,
    /// `X-Ssync-Mount`, sent with every change (not by the `ssync` command:
    /// its restores are news to the mount).
    mount_id: Option<reqwest::header::HeaderValue>,
    base: String,
    /// The share every tree and content call works on (`for_share`).
    share: String,
}

/// Long-polls wait this long on the hub; the read timeout must exceed it.
pub const FEED_WAIT: Duration = Duration::from_secs(25);

impl Remote {
    /// A client for the hub at `base_url`; every request names `device`. An
    /// `https://` hub is verified against the system's roots, or only against
    /// the CA in the PEM file `ca` when given (a hub with its own CA).
    pub fn new(
        base_url: &str,
        device: &str,
        token: &crate::remote::token::Token,
        ca: Option<&Path>,
    ) -> Result<Remote, CaCertError> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Ok(mut v) = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.as_str())) {
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        let device: String =
            device.chars().filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c)).take(64).collect();
        if let Ok(v) = reqwest::header::HeaderValue::from_str(&device) {
            if !device.is_empty() {
                headers.insert(DEVICE_HEADER, v);
            }
        }
        let mut http = Client::builder();
        if let Some(ca) = ca {
            http = load_ca_cert(ca)?
                .iter()
                .fold(http.tls_built_in_root_certs(false), |b, c| b.add_root_certificate(c.clone()));
        }
        let http = http
            .https_only(base_url.starts_with("https://"))
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(FEED_WAIT + Duration::from_secs(15))
            // Before the hub closes idle connections (its --header-timeout,
            // 30 s by default), so a request never races that close.
            .pool_idle_timeout(Duration::from_secs(20))
            .tcp_nodelay(true)
            .build()
            .expect("the HTTP client builds with checked settings");
        Ok(Remote { http, base: base_url.to_string(), mount_id: None, share: DEFAULT_SHARE.to_string() })
    }

    /// The same client, naming this mount on every change it sends, so the
    /// hub records it and the mount knows its own changes in the feed.
    pub fn for_mount(mut self, mount_id: &str) -> Remote {
        self.mount_id = reqwest::header::HeaderValue::from_str(mount_id).ok();
        self
    }

    /// The same client, working on share `share` (until then, the default
    /// share, which a hub made before shares holds its tree in). The name
    /// is checked (`check_share_name`), so it is safe in a URL.
    pub fn for_share(mut self, share: &str) -> Remote {
        self.share = share.to_string();
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn share(&self) -> &str {
        &self.share
    }

    /// A tree or content endpoint of the share.
    fn url(&self, path: &str) -> String {
        format!("{}/v1/shares/{}/{path}", self.base, self.share)
    }

    /// An endpoint of the hub itself (health, the token's shares).
    fn hub_url(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.base)
    }

    async fn decode<T: DeserializeOwned>(resp: Response) -> Result<T, ApiError> {
        let status = resp.status();
        if status.is_success() {
            return resp.json::<T>().await.map_err(|e| ApiError::Protocol(e.to_string()));
        }
        let text = resp.text().await.map_err(transport)?;
        let body = serde_json::from_str::<ErrorBody>(&text).unwrap_or(ErrorBody {
            code: "unknown".into(),
            message: text.chars().take(200).collect(),
            current: None,
        });
        Err(ApiError::Rejected { status: status.as_u16(), body: Box::new(body) })
    }

    async fn post<B: serde::Serialize, R: DeserializeOwned>(&self, path: &str, body: &B) -> Result<R, ApiError> {
        let mut req = self.http.post(self.url(path)).json(body);
        if let Some(id) = &self.mount_id {
            req = req.header(MOUNT_HEADER, id.clone());
        }
        let resp = req.send().await.map_err(transport)?;
        Self::decode(resp).await
    }

    pub async fn health(&self) -> Result<Health, ApiError> {
        let resp =
            self.http.get(self.hub_url("health")).timeout(Duration::from_secs(5)).send().await.map_err(transport)?;
        Self::decode(resp).await
    }

    /// The shares this client's token may use, and how.
    pub async fn shares(&self) -> Result<Vec<ShareAccess>, ApiError> {
        let resp =
            self.http.get(self.hub_url("shares")).timeout(Duration::from_secs(10)).send().await.map_err(transport)?;
        Self::decode::<SharesResponse>(resp).await.map(|r| r.shares)
    }

    pub async fn tree(&self) -> Result<EntriesPage, ApiError> {
        let resp = self.http.get(self.url("tree")).send().await.map_err(transport)?;
        Self::decode(resp).await
    }

    /// The hub's digests of folder `dir` (None: the root), with its
    /// subfolders' if `folders`.
    pub async fn digest(&self, dir: Option<&RelPath>, folders: bool) -> Result<FolderDigest, ApiError> {
        let q = DigestQuery { dir: dir.cloned(), folders };
        let resp = self.http.get(self.url("digest")).query(&q).send().await.map_err(transport)?;
        Self::decode(resp).await
    }

    /// The live entries directly in folder `dir` (None: the root).
    pub async fn list(&self, dir: Option<&RelPath>) -> Result<EntriesPage, ApiError> {
        let q = FolderQuery { dir: dir.cloned() };
        let resp = self.http.get(self.url("list")).query(&q).send().await.map_err(transport)?;
        Self::decode(resp).await
    }

    pub async fn changes(&self, since: u64, wait: Duration) -> Result<EntriesPage, ApiError> {
        let resp = self
            .http
            .get(self.url("changes"))
            .query(&[("since", since), ("wait", wait.as_secs())])
            .query(&[("omit_origin", self.mount_id.as_ref().and_then(|m| m.to_str().ok()))])
            .send()
            .await
            .map_err(transport)?;
        Self::decode(resp).await
    }

    /// Of `hashes`, the chunks the hub lacks.
    pub async fn missing(&self, hashes: &[ContentHash]) -> Result<Vec<ContentHash>, ApiError> {
        let mut out = Vec::new();
        for part in hashes.chunks(MAX_HASHES) {
            let req = ChunksRequest { chunks: HashList::encode(part) };
            let resp = self.http.post(self.url("chunks/missing")).json(&req).send().await.map_err(transport)?;
            let m: MissingResponse = Self::decode(resp).await?;
            out.extend(m.missing.decode().map_err(|e| ApiError::Protocol(e.0))?);
        }
        Ok(out)
    }

    /// Sends encoded chunk frames (see `ssync_common::frames`).
    pub async fn send_chunks(&self, frames: Vec<u8>) -> Result<StoredResponse, ApiError> {
        let resp = self.http.post(self.url("chunks")).body(frames).send().await.map_err(transport)?;
        Self::decode(resp).await
    }

    /// The chunks named, checked against their hashes, in order.
    pub async fn fetch_chunks(&self, hashes: &[ContentHash]) -> Result<Vec<Chunk>, ApiError> {
        let req = FetchRequest { chunks: HashList::encode(hashes), zstd: true };
        let resp = self.http.post(self.url("chunks/fetch")).json(&req).send().await.map_err(transport)?;
        if resp.status() != StatusCode::OK {
            return Err(Self::decode::<()>(resp).await.err().unwrap_or(ApiError::Protocol("empty error".into())));
        }
        let mut reader = FrameReader::default();
        let mut out = Vec::with_capacity(hashes.len());
        let mut body = resp.bytes_stream();
        while let Some(piece) = body.next().await {
            reader.push(&piece.map_err(transport)?);
            while let Some(c) = reader.next_chunk().map_err(|e| ApiError::Protocol(e.to_string()))? {
                out.push(c);
            }
        }
        reader.finish().map_err(|e| ApiError::Protocol(e.to_string()))?;
        if out.iter().map(|c| c.hash).ne(hashes.iter().copied()) {
            return Err(ApiError::Protocol("the hub sent other chunks than asked".into()));
        }
        Ok(out)
    }

    /// Makes the chunk list in `req` the new content of its path.
    pub async fn commit(&self, req: &CommitRequest) -> Result<MutationResponse, ApiError> {
        self.post("commit", req).await
    }

    /// Many changes in one request and one transaction on the hub.
    pub async fn batch(&self, req: &BatchRequest) -> Result<BatchResponse, ApiError> {
        self.post("batch", req).await
    }

    /// File `id`'s chunk list, as a delta from `have`'s when the hub knows it.
    /// A small file's chunks come along (`ManifestResponse::inline`).
    pub async fn manifest(&self, id: &ContentHash, have: Option<&ContentHash>) -> Result<ManifestResponse, ApiError> {
        let mut req = self.http.get(self.url(&format!("manifest/{id}"))).query(&[("inline", "true")]);
        if let Some(h) = have {
            req = req.query(&[("have", h.to_hex())]);
        }
        Self::decode(req.send().await.map_err(transport)?).await
    }

    /// The chunks of file `id` that hold bytes of `range`, and the offset of
    /// the first of them; the file's size.
    pub async fn manifest_range(
        &self,
        id: &ContentHash,
        range: std::ops::Range<u64>,
    ) -> Result<(u64, ChunkList, u64), ApiError> {
        let req = self.http.get(self.url(&format!("manifest/{id}"))).query(&[("from", range.start), ("to", range.end)]);
        let m: ManifestResponse = Self::decode(req.send().await.map_err(transport)?).await?;
        let list = m.list.resolve(None).map_err(|e| ApiError::Protocol(e.0))?;
        let offset =
            m.offset.ok_or_else(|| ApiError::Protocol("the hub sent no offset for a ranged manifest".into()))?;
        Ok((offset, list, m.size))
    }

    /// Small files' lists with their bytes inline, many in one request.
    pub async fn manifests(&self, ids: &[ContentHash]) -> Result<ManifestsResponse, ApiError> {
        self.post("manifests", &ManifestsRequest { ids: ids.to_vec() }).await
    }

    pub async fn mkdir(&self, r: &MkdirRequest) -> Result<MutationResponse, ApiError> {
        self.post("mkdir", r).await
    }

    pub async fn delete(&self, r: &DeleteRequest) -> Result<MutationResponse, ApiError> {
        self.post("delete", r).await
    }

    pub async fn rename(&self, r: &RenameRequest) -> Result<MutationResponse, ApiError> {
        self.post("rename", r).await
    }

    pub async fn exchange(&self, r: &ExchangeRequest) -> Result<MutationResponse, ApiError> {
        self.post("exchange", r).await
    }

    pub async fn set_attr(&self, r: &SetAttrRequest) -> Result<MutationResponse, ApiError> {
        self.post("setattr", r).await
    }

    /// The hub's entry for `path` (tombstones included); `None` if it never existed.
    pub async fn entry(&self, path: &RelPath) -> Result<Option<Entry>, ApiError> {
        let resp =
            self.http.get(self.url("entry")).query(&[("path", path.as_str())]).send().await.map_err(transport)?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Self::decode(resp).await.map(Some)
    }

    pub async fn versions(&self, path: &RelPath) -> Result<VersionsResponse, ApiError> {
        let resp =
            self.http.get(self.url("versions")).query(&[("path", path.as_str())]).send().await.map_err(transport)?;
        Self::decode(resp).await
    }

    pub async fn restore(&self, r: &RestoreRequest) -> Result<MutationResponse, ApiError> {
        self.post("restore", r).await
    }

    pub async fn restore_tree(&self, r: &RestoreTreeRequest) -> Result<MutationResponse, ApiError> {
        self.post("restore-tree", r).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_address_forms() {
        assert_eq!(parse_server("hub:7878").unwrap(), "http://hub:7878");
        assert_eq!(parse_server("127.0.0.1:7878").unwrap(), "http://127.0.0.1:7878");
        assert_eq!(parse_server("http://hub:7878/").unwrap(), "http://hub:7878");
        assert_eq!(parse_server("https://hub.example:443").unwrap(), "https://hub.example:443");
        assert!(parse_server("ftp://hub").is_err());
        assert!(parse_server("").is_err());
    }
}
