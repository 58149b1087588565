fn main() -> anyhow::Result<()> {
    ssync_fs::cmd::user_cli::main()
}
