//! `ferry node` and `ferry registry`: the protocol on real sockets (see the real-node issue).

use clap::Args;

use crate::cli::{EXIT_USAGE, Error};

/// Flags of `ferry node`.
#[derive(Debug, Args)]
pub struct NodeArguments {
    /// Node name (unique in the cluster).
    #[arg(long)]
    pub id: String,
    /// Address to listen on, e.g. 127.0.0.1:7001.
    #[arg(long)]
    pub listen: String,
    /// Peers to connect to.
    #[arg(long)]
    pub connect: Vec<String>,
    /// Data directory (WAL and identity key).
    #[arg(long)]
    pub data: Option<std::path::PathBuf>,
}

/// Flags of `ferry registry`.
#[derive(Debug, Args)]
pub struct RegistryArguments {
    /// Address to listen on.
    #[arg(long)]
    pub listen: String,
}

/// Runs a real node.
///
/// # Errors
/// Always, for now: the real node is not built yet.
pub fn run_node(arguments: NodeArguments) -> Result<i32, Error> {
    Err(Error::Usage(format!(
        "ferry node --id {}: the real TCP node is not available in this build yet",
        arguments.id
    )))
}

/// Runs a registry.
///
/// # Errors
/// Always, for now.
pub fn run_registry(arguments: RegistryArguments) -> Result<i32, Error> {
    let _ = EXIT_USAGE;
    Err(Error::Usage(format!(
        "ferry registry --listen {}: not available in this build yet",
        arguments.listen
    )))
}
