fn main() -> anyhow::Result<()> {
    ssync_server::cli_main()
}
