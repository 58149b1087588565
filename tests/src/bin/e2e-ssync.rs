fn main() -> anyhow::Result<()> {
    ssync_fs::user_cli::main()
}
