//! The tree snapshot and the long-poll change feed.
use crate::auth::Caller;
use crate::db::{digests, entries, Scoped};
use crate::error::ApiError;
use crate::extract::AppQuery;
use crate::openapi::SharePath;
use crate::scope::{recheck, ReadShare};
use crate::state::AppState;
use axum::extract::State;
use axum::Extension;
use axum::Json;
use ssync_common::api::{
    ChangesQuery, DigestQuery, EntriesPage, ErrorBody, FolderDigest, FolderQuery, SubfolderDigest,
};
use std::time::Duration;
use tokio::time::Instant;

const DEFAULT_PAGE: u32 = 1000;
/// How often a held long-poll checks that its token and grant were not revoked.
const REVOCATION_CHECK: Duration = Duration::from_millis(500);

#[utoipa::path(get, path = "/v1/shares/{share}/tree", params(SharePath), tag = "feed",
    responses((status = 200, description = "Every live entry, and the cursor to follow the feed from", body = EntriesPage)))]
pub async fn tree(State(state): State<AppState>, ReadShare(scope): ReadShare) -> Result<Json<EntriesPage>, ApiError> {
    let share = scope.share;
    let page = state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            let tx = Scoped::new(&tx, share);
            let page = EntriesPage { cursor: entries::last_seq(&tx)?, entries: entries::all_live(&tx)? };
            Ok::<_, ApiError>(page)
        })
        .await?;
    Ok(Json(page))
}

#[utoipa::path(get, path = "/v1/shares/{share}/digest", tag = "feed", params(SharePath, DigestQuery),
    responses((status = 200, description = "The folder's digests and its subfolders': what an idle mount compares instead of the whole tree", body = FolderDigest)))]
pub async fn digest(
    State(state): State<AppState>,
    ReadShare(scope): ReadShare,
    AppQuery(q): AppQuery<DigestQuery>,
) -> Result<Json<FolderDigest>, ApiError> {
    let share = scope.share;
    let dir = q.dir.map_or(String::new(), |d| d.as_str().to_string());
    let with_folders = q.folders;
    let answer = state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            let tx = Scoped::new(&tx, share);
            let (direct, subtree) = digests::get(&tx, &dir)?;
            let folders = match with_folders {
                true => digests::subfolders(&tx, &dir)?
                    .into_iter()
                    .map(|(name, subtree)| SubfolderDigest { name, subtree })
                    .collect(),
                false => Vec::new(),
            };
            Ok::<_, ApiError>(FolderDigest { cursor: entries::last_seq(&tx)?, direct, subtree, folders })
        })
        .await?;
    Ok(Json(answer))
}

#[utoipa::path(get, path = "/v1/shares/{share}/list", tag = "feed", params(SharePath, FolderQuery),
    responses((status = 200, description = "The live entries directly in the folder", body = EntriesPage)))]
pub async fn list(
    State(state): State<AppState>,
    ReadShare(scope): ReadShare,
    AppQuery(q): AppQuery<FolderQuery>,
) -> Result<Json<EntriesPage>, ApiError> {
    let share = scope.share;
    let page = state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            let tx = Scoped::new(&tx, share);
            let page =
                EntriesPage { cursor: entries::last_seq(&tx)?, entries: entries::live_children(&tx, q.dir.as_ref())? };
            Ok::<_, ApiError>(page)
        })
        .await?;
    Ok(Json(page))
}

/// Answers at once when anything is newer than `since`; otherwise holds the
/// request until a commit wakes the feed, `wait` runs out, or the hub stops.
#[utoipa::path(get, path = "/v1/shares/{share}/changes", tag = "feed", params(SharePath, ChangesQuery),
    responses(
        (status = 200, description = "Entries changed after `since`, oldest first; empty if `wait` ran out", body = EntriesPage),
        (status = 429, description = "Too many change-feed requests held open for this token", body = ErrorBody),
    ))]
pub async fn changes(
    State(state): State<AppState>,
    ReadShare(scope): ReadShare,
    Extension(caller): Extension<Caller>,
    AppQuery(q): AppQuery<ChangesQuery>,
) -> Result<Json<EntriesPage>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_PAGE).clamp(1, state.limits.max_page);
    let omit = q.omit_origin.clone();
    if let Some(o) = &omit {
        let valid = (1..=64).contains(&o.len()) && o.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !valid {
            return Err(ApiError::BadRequest(
                "omit_origin is a mount id: 1 to 64 letters, digits, '.', '_' or '-'".into(),
            ));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(q.wait).min(state.limits.max_wait);
    let share = scope.share;
    let mut woken = state.feed.subscribe(share);
    let mut slot = None;
    loop {
        woken.borrow_and_update();
        let since = q.since;
        let omit = omit.clone();
        let (page, any) = state
            .db
            .call(move |c| {
                let tx = c.transaction()?;
                let mut page = entries::feed_page(&Scoped::new(&tx, share), since, limit)?;
                let any = !page.entries.is_empty();
                if omit.is_some() {
                    page.entries.retain(|e| e.origin != omit);
                }
                Ok::<_, ApiError>((page, any))
            })
            .await?;
        if any {
            return Ok(Json(page));
        }
        if slot.is_none() {
            slot = Some(PollSlot::take(&state, &caller)?);
        }
        // Wait in slices, so a token or grant revoked meanwhile ends the wait.
        let slice = deadline.min(Instant::now() + REVOCATION_CHECK);
        tokio::select! {
            changed = woken.changed() => if changed.is_err() { return Ok(Json(page)) },
            _ = tokio::time::sleep_until(slice) => {
                if slice >= deadline {
                    return Ok(Json(page));
                }
                recheck(&state, &scope).await?;
            }
            _ = state.shutdown.cancelled() => return Ok(Json(page)),
        }
    }
}

/// A held change-feed request, counted against its token's cap while it lives.
struct PollSlot {
    polls: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
    name: String,
}

impl PollSlot {
    fn take(state: &AppState, caller: &Caller) -> Result<PollSlot, ApiError> {
        let max = state.limits.max_polls_per_token;
        let mut polls = state.polls.lock().unwrap_or_else(|p| p.into_inner());
        let held = polls.entry(caller.0.clone()).or_default();
        if *held >= max {
            return Err(ApiError::TooMany(format!(
                "{max} change-feed requests are already held open for token '{}' (--max-polls-per-token)",
                caller.0
            )));
        }
        *held += 1;
        Ok(PollSlot { polls: state.polls.clone(), name: caller.0.clone() })
    }
}

impl Drop for PollSlot {
    fn drop(&mut self) {
        let mut polls = self.polls.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(held) = polls.get_mut(&self.name) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                polls.remove(&self.name);
            }
        }
    }
}
