fn main() -> anyhow::Result<()> {
    ssync_fs::cli_main()
}
