//! The hub's data dir: `meta.db` (names, modes, small files' contents),
//! `packs/` (every other content) and `tmp/`. Only the hub's user may read
//! any of it (see `ssync_common::private`): folders 0700, files 0600.
use ssync_common::private;
use std::path::Path;

/// Creates the data dir private, or tightens an existing one that lets
/// group or others in (made by an older version or by hand), saying so.
pub fn prepare(data_dir: &Path) -> std::io::Result<()> {
    private::dir(data_dir)?;
    let done = private::tighten(data_dir)?;
    if done.any() {
        tracing::warn!(
            dir = %data_dir.display(),
            folders = done.dirs,
            files = done.files,
            "the hub's data dir let other users read it; narrowed it to folders 0700 and files 0600"
        );
    }
    Ok(())
}
