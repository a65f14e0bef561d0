//! UDP discovery: each node periodically sends a small JSON announce to a broadcast address
//! and listens on the same port for the announces of others.
//!
//! Owns the announce document and its validation, which the registry reuses for its peer
//! records. It only reports peers heard (`Input::Learned`); whom to dial is the runtime's
//! decision.
//!
//! Public for examples and other tools: [`Announce`], [`decode`] and their limits are the
//! whole announce format (`cargo run --example discovery_announce_json` shows it).
//!
//! Every node binds the discovery port with `SO_REUSEADDR`, so several nodes on one host
//! share it and each receives every broadcast. On a LAN the default target is the limited
//! broadcast address; on one host (tests) `127.255.255.255:PORT` reaches every node bound
//! to that port through the loopback interface.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use socket2::{Domain, Protocol, Socket, Type};
use thiserror::Error;

use crate::error::{NodeError, describe_io};
use crate::input::Input;
use crate::log::Logger;
use crate::transport::Transport;

/// Where announces go when `--discover-addr` is not given: the limited broadcast address.
pub const DISCOVERY_ADDRESS_DEFAULT: &str = "255.255.255.255:47474";
/// Largest announce accepted; a longer datagram is ignored.
pub const ANNOUNCE_BYTES_MAX: usize = 512;
/// Interval between two announces of one node.
pub const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(1);
/// The `protocol` field of every announce.
pub const ANNOUNCE_PROTOCOL: &str = "ferry";
/// The `version` field this implementation sends and accepts.
pub const ANNOUNCE_VERSION: u16 = 1;
/// Longest node id accepted in an announce or a registry record.
pub const NODE_ID_BYTES_MAX: usize = ferry_protocol::session::NAME_BYTES_MAX;

/// One node's announce, as sent on UDP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announce {
    /// Always `"ferry"`: tells ferry's datagrams from anything else on the port.
    pub protocol: String,
    /// Format version, 1.
    pub version: u16,
    /// The node's name (its `--id`).
    pub node_id: String,
    /// The IP the node listens on; `0.0.0.0` or `::` means "the address this came from".
    pub host: String,
    /// The node's port (TCP or UDP, as `transport` says; the name predates QUIC).
    pub tcp_port: u16,
    /// `tcp` or `quic`; left out for TCP.
    #[serde(default = "crate::transport::default_name", skip_serializing_if = "crate::transport::is_tcp")]
    pub transport: String,
    /// The first 8 bytes of the node's static public key, in hex: for logs and for an
    /// operator comparing keys; the handshake authenticates the full key.
    pub key_fingerprint: String,
}

/// Why an announce or a peer record was ignored.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AnnounceError {
    /// Longer than [`ANNOUNCE_BYTES_MAX`].
    #[error("announce of at least {length_bytes} bytes exceeds maximum {ANNOUNCE_BYTES_MAX}")]
    TooLong {
        /// The datagram's length.
        length_bytes: usize,
    },
    /// Not the JSON document expected.
    #[error("malformed announce: {reason}")]
    Malformed {
        /// serde_json's description.
        reason: String,
    },
    /// Another protocol or format version.
    #[error(
        "announce for protocol {protocol:?} version {version}, expected {ANNOUNCE_PROTOCOL:?} version {ANNOUNCE_VERSION}"
    )]
    WrongProtocol {
        /// The `protocol` field received.
        protocol: String,
        /// The `version` field received.
        version: u16,
    },
    /// An empty or overlong node id.
    #[error("node id of {length_bytes} bytes is not within 1..={NODE_ID_BYTES_MAX}")]
    InvalidNodeId {
        /// The id's length.
        length_bytes: usize,
    },
    /// A host that is not an IP address.
    #[error("host {host:?} is not an ip address")]
    InvalidHost {
        /// The host received.
        host: String,
    },
    /// A transport other than `tcp` or `quic`.
    #[error("unknown transport {transport:?}")]
    UnknownTransport {
        /// The transport named.
        transport: String,
    },
    /// Port 0.
    #[error("tcp port 0 is not a listening port")]
    InvalidPort,
}

impl Announce {
    /// The announce of a node named `node_id` listening on `listen`, whose static public
    /// key is `public_key`.
    #[must_use]
    pub fn new(node_id: &str, listen: SocketAddr, transport: Transport, public_key: &[u8]) -> Self {
        Self {
            protocol: ANNOUNCE_PROTOCOL.to_owned(),
            version: ANNOUNCE_VERSION,
            node_id: node_id.to_owned(),
            host: listen.ip().to_string(),
            tcp_port: listen.port(),
            transport: transport.name().to_owned(),
            key_fingerprint: ferry_protocol::session::hex(&public_key[..public_key.len().min(8)]),
        }
    }

    /// The JSON bytes sent.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a struct of strings and integers always serializes")
    }
}

/// Parses a datagram received from `source`: the announce and the TCP address to dial.
///
/// # Errors
/// An [`AnnounceError`] naming the first problem; never panics, whatever the bytes.
pub fn decode(datagram: &[u8], source: SocketAddr) -> Result<(Announce, SocketAddr), AnnounceError> {
    if datagram.len() > ANNOUNCE_BYTES_MAX {
        return Err(AnnounceError::TooLong { length_bytes: datagram.len() });
    }
    let announce: Announce = serde_json::from_slice(datagram)
        .map_err(|error| AnnounceError::Malformed { reason: error.to_string() })?;
    if announce.protocol != ANNOUNCE_PROTOCOL || announce.version != ANNOUNCE_VERSION {
        return Err(AnnounceError::WrongProtocol { protocol: announce.protocol, version: announce.version });
    }
    validate_node_id(&announce.node_id)?;
    if Transport::from_name(&announce.transport).is_none() {
        return Err(AnnounceError::UnknownTransport { transport: announce.transport });
    }
    let address = peer_address(&announce.host, announce.tcp_port, source.ip())?;
    Ok((announce, address))
}

/// Checks a node id's length.
///
/// # Errors
/// [`AnnounceError::InvalidNodeId`].
pub fn validate_node_id(node_id: &str) -> Result<(), AnnounceError> {
    if node_id.is_empty() || node_id.len() > NODE_ID_BYTES_MAX {
        return Err(AnnounceError::InvalidNodeId { length_bytes: node_id.len() });
    }
    Ok(())
}

/// The address to dial for a peer announcing `host` and `tcp_port`, heard from `source`:
/// an empty or unspecified host means the source's address.
///
/// # Errors
/// [`AnnounceError::InvalidHost`] or [`AnnounceError::InvalidPort`].
pub fn peer_address(host: &str, tcp_port: u16, source: IpAddr) -> Result<SocketAddr, AnnounceError> {
    if tcp_port == 0 {
        return Err(AnnounceError::InvalidPort);
    }
    let ip = if host.is_empty() {
        source
    } else {
        let ip: IpAddr = host.parse().map_err(|_| AnnounceError::InvalidHost { host: host.to_owned() })?;
        if ip.is_unspecified() { source } else { ip }
    };
    Ok(SocketAddr::new(ip, tcp_port))
}

/// Binds the discovery port of `target` on every interface, shared with other nodes on the
/// host, with broadcast enabled.
///
/// # Errors
/// [`NodeError::Discovery`].
pub(crate) fn bind(target: SocketAddr, target_text: &str) -> Result<UdpSocket, NodeError> {
    let error = |source| NodeError::Discovery { address: target_text.to_owned(), source };
    let domain = Domain::for_address(target);
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(error)?;
    socket.set_reuse_address(true).map_err(error)?;
    socket.set_broadcast(target.is_ipv4()).map_err(error)?;
    let any: IpAddr = if target.is_ipv4() { [0, 0, 0, 0].into() } else { [0u16; 8].into() };
    socket.bind(&SocketAddr::new(any, target.port()).into()).map_err(error)?;
    Ok(socket.into())
}

/// Starts the thread that announces `announce` to `target` every [`ANNOUNCE_INTERVAL`] and
/// reports every valid announce heard.
///
/// # Errors
/// When the thread cannot start.
pub(crate) fn spawn(
    socket: UdpSocket,
    target: SocketAddr,
    announce: &Announce,
    inputs: SyncSender<Input>,
    logger: Logger,
) -> io::Result<()> {
    let announce = announce.encode();
    std::thread::Builder::new().name("ferry-discovery".to_owned()).spawn(move || {
        let mut buffer = vec![0; ANNOUNCE_BYTES_MAX + 1];
        let mut next_announce = Instant::now();
        let mut send_failures_count = 0u64;
        loop {
            let now = Instant::now();
            if now >= next_announce {
                match socket.send_to(&announce, target) {
                    Ok(_) => send_failures_count = 0,
                    Err(error) => {
                        send_failures_count += 1;
                        let text = format!("cannot send announce to {target}: {}", describe_io(&error));
                        // The first failure is worth a line; repeats only in verbose mode.
                        if send_failures_count == 1 {
                            logger.info(format_args!("{text}"));
                        } else {
                            logger.debug(format_args!("{text}"));
                        }
                    }
                }
                next_announce = now + ANNOUNCE_INTERVAL;
            }
            let wait = next_announce.saturating_duration_since(now).max(Duration::from_millis(1));
            if socket.set_read_timeout(Some(wait)).is_err() {
                std::thread::sleep(wait);
                continue;
            }
            match socket.recv_from(&mut buffer) {
                Ok((length, source)) => match decode(&buffer[..length], source) {
                    Ok((announce, address)) => {
                        let transport = Transport::from_name(&announce.transport).unwrap_or_default();
                        let input =
                            Input::Learned { name: announce.node_id, address, transport, via: "discovery" };
                        if inputs.send(input).is_err() {
                            return;
                        }
                    }
                    Err(error) => logger.debug(format_args!("ignored datagram from {source}: {error}")),
                },
                Err(error) if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                }
                Err(error) => {
                    logger.debug(format_args!("discovery receive failed: {}", describe_io(&error)));
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 7], 47474))
    }

    #[test]
    fn announce_round_trips_and_resolves_unspecified_hosts() {
        let announce =
            Announce::new("a", SocketAddr::from(([0, 0, 0, 0], 7001)), Transport::Tcp, &[0xab; 32]);
        assert_eq!(announce.key_fingerprint, "abababababababab");
        let (decoded, address) = decode(&announce.encode(), source()).expect("valid");
        assert_eq!(decoded, announce);
        assert_eq!(address, SocketAddr::from(([192, 0, 2, 7], 7001)));
        let announce =
            Announce::new("a", SocketAddr::from(([127, 0, 0, 1], 7001)), Transport::Tcp, &[0xab; 32]);
        let (_, address) = decode(&announce.encode(), source()).expect("valid");
        assert_eq!(address, SocketAddr::from(([127, 0, 0, 1], 7001)));
    }

    #[test]
    fn bad_datagrams_are_refused_with_exact_errors() {
        assert_eq!(
            decode(&[b' '; ANNOUNCE_BYTES_MAX + 1], source()),
            Err(AnnounceError::TooLong { length_bytes: ANNOUNCE_BYTES_MAX + 1 })
        );
        assert!(matches!(decode(b"\xff\x00garbage", source()), Err(AnnounceError::Malformed { .. })));
        assert!(matches!(
            decode(b"{\"protocol\":\"ferry\"}", source()),
            Err(AnnounceError::Malformed { .. })
        ));
        let mut announce =
            Announce::new("a", SocketAddr::from(([127, 0, 0, 1], 7001)), Transport::Tcp, &[1; 32]);
        announce.version = 2;
        assert_eq!(
            decode(&announce.encode(), source()),
            Err(AnnounceError::WrongProtocol { protocol: "ferry".to_owned(), version: 2 })
        );
        announce.version = ANNOUNCE_VERSION;
        announce.node_id = String::new();
        assert_eq!(
            decode(&announce.encode(), source()),
            Err(AnnounceError::InvalidNodeId { length_bytes: 0 })
        );
        announce.node_id = "a".to_owned();
        announce.host = "example.org".to_owned();
        assert_eq!(
            decode(&announce.encode(), source()),
            Err(AnnounceError::InvalidHost { host: "example.org".to_owned() })
        );
        announce.host = "127.0.0.1".to_owned();
        announce.tcp_port = 0;
        assert_eq!(decode(&announce.encode(), source()), Err(AnnounceError::InvalidPort));
        announce.tcp_port = 7001;
        announce.transport = "sctp".to_owned();
        assert_eq!(
            decode(&announce.encode(), source()),
            Err(AnnounceError::UnknownTransport { transport: "sctp".to_owned() })
        );
    }

    #[test]
    fn a_quic_announce_names_its_transport_and_a_tcp_one_stays_as_before() {
        let tcp = Announce::new("a", SocketAddr::from(([127, 0, 0, 1], 7001)), Transport::Tcp, &[1; 32]);
        let text = String::from_utf8(tcp.encode()).expect("json");
        assert!(!text.contains("transport"), "{text}");
        let quic = Announce::new("a", SocketAddr::from(([127, 0, 0, 1], 7001)), Transport::Quic, &[1; 32]);
        let text = String::from_utf8(quic.encode()).expect("json");
        assert!(text.contains(r#""transport":"quic""#), "{text}");
        let (decoded, _) = decode(text.as_bytes(), source()).expect("valid");
        assert_eq!(decoded.transport, "quic");
        let (decoded, _) = decode(&tcp.encode(), source()).expect("valid");
        assert_eq!(decoded.transport, "tcp");
    }
}
