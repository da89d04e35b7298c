//! Entry point: hands control to the CLI.
fn main() -> std::process::ExitCode {
    portcullis::cli::run()
}
