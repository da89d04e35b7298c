//! Entry point: hands control to the CLI.
fn main() -> std::process::ExitCode {
    portcullis::alloc::tune();
    portcullis::cli::run()
}
