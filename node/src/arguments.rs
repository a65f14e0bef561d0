//! What `ferry node` and `ferry registry` are told on the command line.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use crate::error::{NodeError, describe_io};
use crate::transport::Transport;

/// `ferry node`: a real node on TCP or QUIC, driven by one command per line on stdin.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeArguments {
    /// This node's name; its node id derives from it
    #[arg(long, value_name = "NAME")]
    pub id: String,
    /// Address to accept peers on, TCP or UDP as --transport says (port 0 picks a free
    /// port, printed on stderr)
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// Transport to accept peers on and dial them with
    #[arg(long, value_name = "TRANSPORT", value_enum, default_value_t = Transport::Tcp)]
    pub transport: Transport,
    /// A peer to dial, redialed with backoff whenever it is away (repeatable); HOST:PORT on
    /// this node's transport, or quic://HOST:PORT / tcp://HOST:PORT for the other
    #[arg(long = "connect", value_name = "ADDR")]
    pub connect: Vec<String>,
    /// Directory for the WAL and the identity key [default: ferry-node-NAME in the temp dir]
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Announce this node over UDP and dial the nodes heard
    #[arg(long)]
    pub discover: bool,
    /// Broadcast address and port for announces [default: 255.255.255.255:47474]
    #[arg(long, value_name = "ADDR", requires = "discover")]
    pub discover_addr: Option<String>,
    /// Registry to register with and fetch peers from, e.g. http://127.0.0.1:7000
    #[arg(long, value_name = "URL")]
    pub bootstrap: Option<String>,
    /// The registry's bearer token, read from the first line of FILE (the registry's
    /// --token-file)
    #[arg(long, value_name = "FILE", requires = "bootstrap")]
    pub bootstrap_token_file: Option<PathBuf>,
    /// Serve the node's counters on http://ADDR/metrics (Prometheus text format) and its
    /// state on /status (JSON); bind it to a private address
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Take commands over HTTP: POST one command line to http://ADDR/command and get its
    /// answer; /status too. Whoever reaches it can write: bind it to a private address
    #[arg(long, value_name = "ADDR")]
    pub control: Option<String>,
    /// Log more: dials, rejected frames, ignored announces
    #[arg(short, long)]
    pub verbose: bool,
    /// Run as a service: do not read commands from stdin, run until SIGTERM or SIGINT
    #[arg(long)]
    pub no_stdin: bool,
    /// Accept only the peers listed in FILE, one `NAME HEX-KEY` line each (the format of a
    /// data directory's known_peers); without it, peers are trusted on first use
    #[arg(long, value_name = "FILE")]
    pub trust: Option<PathBuf>,
    /// A cluster secret: FILE holds 64 hex digits (`openssl rand -hex 32`), the same on
    /// every node; only its holders complete a handshake (Noise_XXpsk3, PROTOCOL.md 6.10)
    #[arg(long, value_name = "FILE")]
    pub psk_file: Option<PathBuf>,
    /// Compact the WAL once its log above the last compaction holds this many bytes (and at
    /// least as many as the data): PROTOCOL.md 8.11
    #[arg(long, value_name = "BYTES", default_value_t = COMPACT_FROM_BYTES_DEFAULT)]
    pub compact_from: u64,
    /// How long a peer that went away still holds back compaction; after that it catches
    /// up by snapshot when it returns (e.g. 30m, 1h, 7d)
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_forget_after)]
    pub forget_after: u64,
}

/// Default of `--compact-from`: 4 MiB, the protocol's default.
pub const COMPACT_FROM_BYTES_DEFAULT: u64 = 4 * 1024 * 1024;

/// `--forget-after` in nanoseconds: a whole number and a unit (`ms`, `s`, `m`, `h`, `d`).
fn parse_forget_after(text: &str) -> Result<u64, String> {
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let unit_ns: u64 = match unit {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        _ => return Err("expected a whole number and a unit: ms, s, m, h or d (e.g. 30m, 7d)".to_owned()),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|count| count.checked_mul(unit_ns))
        .ok_or_else(|| "expected a whole number and a unit: ms, s, m, h or d (e.g. 30m, 7d)".to_owned())
}

impl NodeArguments {
    /// Arguments for a node named `id` listening on `listen`, with every option off.
    #[must_use]
    pub fn new(id: impl Into<String>, listen: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            listen: listen.into(),
            transport: Transport::Tcp,
            connect: Vec::new(),
            data: None,
            discover: false,
            discover_addr: None,
            bootstrap: None,
            bootstrap_token_file: None,
            metrics: None,
            control: None,
            verbose: false,
            no_stdin: false,
            trust: None,
            psk_file: None,
            compact_from: COMPACT_FROM_BYTES_DEFAULT,
            forget_after: 3_600_000_000_000,
        }
    }
}

/// `ferry registry`: the HTTP registry nodes bootstrap from.
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryArguments {
    /// TCP address to serve HTTP on (port 0 picks a free port, printed on stderr)
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// Serve only requests carrying `Authorization: Bearer TOKEN`, TOKEN being the first
    /// line of FILE (at least 16 characters); without it anyone who reaches the port may
    /// register
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// A reverse proxy in front of the registry: a request from this address is taken to
    /// come from the last address of its X-Forwarded-For header (repeatable)
    #[arg(long = "trusted-proxy", value_name = "IP")]
    pub trusted_proxies: Vec<IpAddr>,
    /// Log every request
    #[arg(short, long)]
    pub verbose: bool,
}

impl RegistryArguments {
    /// Arguments for a registry listening on `listen`, open to anyone, with no proxy.
    #[must_use]
    pub fn new(listen: impl Into<String>) -> Self {
        Self { listen: listen.into(), token_file: None, trusted_proxies: Vec::new(), verbose: false }
    }
}

/// Resolves the value of an address flag to its first socket address.
pub(crate) fn resolve_address(flag: &'static str, address: &str) -> Result<SocketAddr, NodeError> {
    let invalid = |reason: String| NodeError::InvalidAddress { flag, address: address.to_owned(), reason };
    let mut resolved = address.to_socket_addrs().map_err(|error| invalid(describe_io(&error)))?;
    resolved.next().ok_or_else(|| invalid("resolves to no address".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forget_after_takes_a_whole_number_and_a_unit() {
        assert_eq!(parse_forget_after("1h"), Ok(3_600_000_000_000));
        assert_eq!(parse_forget_after("250ms"), Ok(250_000_000));
        assert_eq!(parse_forget_after("7d"), Ok(7 * 86_400_000_000_000));
        for bad in ["", "h", "1", "1.5h", "-1s", "99999999999999d", "1 h"] {
            assert!(parse_forget_after(bad).is_err(), "{bad:?} accepted");
        }
    }
}
