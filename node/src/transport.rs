//! Which transport a node listens on and dials with: TCP or QUIC (PROTOCOL.md 6.9, 6.11).

use std::fmt;

/// A transport for ferry's frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Transport {
    /// One TCP connection per peer.
    #[default]
    Tcp,
    /// One QUIC connection per peer over one UDP socket, the frames on one stream.
    Quic,
}

impl Transport {
    /// The name used on the command line, in announces and in registry records.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Quic => "quic",
        }
    }

    /// The transport named `name`, as [`name`](Self::name) spells it.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "tcp" => Some(Self::Tcp),
            "quic" => Some(Self::Quic),
            _ => None,
        }
    }

    /// A dial address for `address` on this transport: `quic://HOST:PORT` or plain
    /// `HOST:PORT` for TCP (which every node dials without a scheme when it listens on TCP).
    #[must_use]
    pub fn address(self, address: &str) -> String {
        format!("{}://{address}", self.name())
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// Serde's default for a record or announce without a `transport` field: TCP, the only
/// transport before QUIC, so older nodes' records still parse.
#[must_use]
pub fn default_name() -> String {
    Transport::Tcp.name().to_owned()
}

/// Whether `name` is TCP's, which records and announces leave out.
#[must_use]
pub fn is_tcp(name: &str) -> bool {
    name == Transport::Tcp.name()
}

/// Splits a dial address into its transport and `HOST:PORT`: `quic://HOST:PORT` and
/// `tcp://HOST:PORT` name theirs, and a bare `HOST:PORT` is `default`'s (the node's own
/// `--transport`).
#[must_use]
pub fn split_address(address: &str, default: Transport) -> (Transport, &str) {
    for transport in [Transport::Tcp, Transport::Quic] {
        if let Some(rest) = address.strip_prefix(transport.name()).and_then(|rest| rest.strip_prefix("://")) {
            return (transport, rest);
        }
    }
    (default, address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scheme_names_the_transport_and_a_bare_address_takes_the_default() {
        assert_eq!(split_address("quic://10.0.0.1:7001", Transport::Tcp), (Transport::Quic, "10.0.0.1:7001"));
        assert_eq!(split_address("tcp://host:7001", Transport::Quic), (Transport::Tcp, "host:7001"));
        assert_eq!(split_address("host:7001", Transport::Quic), (Transport::Quic, "host:7001"));
        assert_eq!(split_address("udp://host:7001", Transport::Tcp), (Transport::Tcp, "udp://host:7001"));
        assert_eq!(Transport::from_name("quic"), Some(Transport::Quic));
        assert_eq!(Transport::from_name("QUIC"), None);
    }
}
