//! Argument parsing and command dispatch.

use std::ffi::OsString;

use clap::{Parser, Subcommand};

/// Exit code: every expectation held.
pub const EXIT_OK: i32 = 0;
/// Exit code: an expectation failed.
pub const EXIT_FAILED: i32 = 1;
/// Exit code: bad input or usage.
pub const EXIT_USAGE: i32 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    about = "Peer-to-peer sync for offline-first apps, and its deterministic simulator"
)]
struct Arguments {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one scenario with one seed.
    Run {
        /// Scenario file.
        file: std::path::PathBuf,
    },
    /// Run a real node on TCP; commands on stdin, one answer per line on stdout.
    Node(crate::node::NodeArguments),
    /// Serve the HTTP registry nodes bootstrap from.
    Registry(crate::node::RegistryArguments),
}

/// Runs the CLI on `args` and returns the process exit code.
pub fn main_with_args(args: impl IntoIterator<Item = OsString>) -> i32 {
    let arguments = match Arguments::try_parse_from(args) {
        Ok(arguments) => arguments,
        Err(error) => {
            let code = if error.use_stderr() { EXIT_USAGE } else { EXIT_OK };
            let _ = error.print();
            return code;
        }
    };
    match arguments.command {
        Command::Run { file } => {
            eprintln!("ferry run {}: not yet implemented", file.display());
            EXIT_USAGE
        }
        Command::Node(arguments) => exit_code(crate::node::run_node(arguments)),
        Command::Registry(arguments) => exit_code(crate::node::run_registry(arguments)),
    }
}

/// Prints a node error on stderr and turns the outcome into an exit code.
fn exit_code(result: Result<i32, crate::node::NodeError>) -> i32 {
    result.unwrap_or_else(|error| {
        eprintln!("error: {error}");
        error.exit_code()
    })
}
