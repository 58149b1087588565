//! The programs: `ssync-mount` (its flags, and the wiring of a mount), and
//! the `ssync` CLI (status, history, restore, pins).
pub mod cli;
pub mod config;
pub mod mount;
mod pin_cli;
mod share_choice;
pub mod status_file;
mod units;
pub mod user_cli;
