//! ferry frames over QUIC, sans-IO, on [`quinn_proto`].
//!
//! A [`QuicEndpoint`] is one UDP socket's worth of QUIC connections. Its owner feeds it the
//! datagrams that arrive and the time, sends the datagrams it produces, and calls
//! [`handle_timeout`](QuicEndpoint::handle_timeout) by [`poll_timeout`](QuicEndpoint::poll_timeout);
//! it never reads a clock or touches a socket itself. Each connection carries one
//! bidirectional stream, opened by the dialer, on which ferry's frames flow exactly as on a
//! TCP connection: the Noise handshake, then encrypted envelopes (PROTOCOL.md 6.11). What
//! this crate adds to TCP's behaviour is QUIC's: one UDP port, no head-of-line blocking
//! below the stream, and connections that survive an address change.
//!
//! ```
//! use ferry_quic::{QuicEndpoint, QuicEvent};
//! use std::time::Instant;
//!
//! let epoch = Instant::now();
//! let a_address = "127.0.0.1:7001".parse().unwrap();
//! let b_address = "127.0.0.1:7002".parse().unwrap();
//! let mut a = QuicEndpoint::new(epoch, true, b"a's lasting secret").unwrap();
//! let mut b = QuicEndpoint::new(epoch, true, b"b's lasting secret").unwrap();
//! let link = a.connect(0, b_address).unwrap();
//! a.send(link, b"hello over quic").unwrap();
//! // Carry datagrams both ways until b has the bytes (a lossless, instant network).
//! let mut received = Vec::new();
//! for _ in 0..20 {
//!     while let Some(datagram) = a.poll_transmit(0) {
//!         b.handle_datagram(0, a_address, &datagram.bytes);
//!     }
//!     while let Some(datagram) = b.poll_transmit(0) {
//!         a.handle_datagram(0, b_address, &datagram.bytes);
//!     }
//!     while let Some(event) = b.poll_event() {
//!         if let QuicEvent::Received { bytes, .. } = event {
//!             received.extend_from_slice(&bytes);
//!         }
//!     }
//! }
//! assert_eq!(received, b"hello over quic");
//! ```

mod seeded;
mod tls;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use quinn_proto::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn_proto::{
    ClientConfig, ConnectionError, ConnectionHandle, DatagramEvent, Dir, Endpoint, EndpointConfig, Event,
    ServerConfig, StreamEvent, StreamId, TransportConfig, VarInt, WriteError,
};

use crate::seeded::Seeded;

pub use tls::{ALPN, SERVER_NAME};

/// Connections one endpoint holds at most; a further incoming one is refused at once.
pub const CONNECTIONS_MAX: usize = 256;
/// Bytes queued on one link beyond what QUIC's flow control lets out, at most: a peer that
/// lets more pile up gets [`SendError::QueueFull`].
pub const SEND_QUEUE_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Flow-control window of the one stream, and so what a peer can make this side buffer.
pub const STREAM_WINDOW_BYTES: u32 = 1024 * 1024;
/// A connection that hears nothing for this long is closed (keep-alives every
/// [`KEEP_ALIVE_INTERVAL`] keep a live one open); a dial that gets no answer fails after it.
pub const IDLE_TIMEOUT: Duration = Duration::from_millis(IDLE_TIMEOUT_MS as u64);
const IDLE_TIMEOUT_MS: u32 = 10_000;
/// How often a connection with nothing to send proves it is alive.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(2);
/// How long a closing link may take to deliver what it queued (the Close that says why).
pub const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);
/// Bytes of one UDP datagram this endpoint sends, at most (quinn's default MTU).
pub const DATAGRAM_BYTES_MAX: usize = 1452;

/// Why a dial failed when its peer never answered.
const NO_ANSWER: &str = "no answer over QUIC (is the peer a TCP node, or gone?)";

/// The application error code of a connection closed on purpose.
const CLOSE_CODE: u32 = 0;
/// The error code that stops a stream the peer had no right to open.
const STREAM_REFUSED_CODE: u32 = 1;

/// Why an endpoint could not be made or a link opened.
#[derive(Debug, thiserror::Error)]
pub enum QuicError {
    /// The TLS configuration could not be built.
    #[error("cannot configure TLS for QUIC: {0}")]
    Tls(String),
    /// quinn refused to start a connection.
    #[error("cannot dial over QUIC: {0}")]
    Connect(String),
    /// [`CONNECTIONS_MAX`] connections are open.
    #[error("{CONNECTIONS_MAX} QUIC connections are open")]
    TooManyConnections,
}

/// Why bytes could not be queued on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// No such link, or it is closing.
    Closed,
    /// [`SEND_QUEUE_BYTES_MAX`] bytes are waiting.
    QueueFull,
}

/// One connection, as this endpoint's owner knows it: numbered from 1, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QuicLink(pub u64);

impl std::fmt::Display for QuicLink {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "quic link {}", self.0)
    }
}

/// What happened on the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuicEvent {
    /// A peer dialed this endpoint and completed QUIC's handshake.
    Accepted {
        /// The new link.
        link: QuicLink,
        /// The peer's address.
        remote: SocketAddr,
    },
    /// A dial completed QUIC's handshake.
    Connected {
        /// The link [`QuicEndpoint::connect`] returned.
        link: QuicLink,
    },
    /// Bytes arrived on the link's stream, in order.
    Received {
        /// The link.
        link: QuicLink,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The link ended; nothing more comes from it.
    Closed {
        /// The link.
        link: QuicLink,
        /// Why, for a log line (QUIC's own words; the peer's reason escaped by the caller).
        reason: String,
    },
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Where to.
    pub destination: SocketAddr,
    /// The UDP payload.
    pub bytes: Vec<u8>,
}

/// One connection's state beside quinn's.
struct Link {
    handle: ConnectionHandle,
    connection: quinn_proto::Connection,
    /// The one stream, once open (dialer) or accepted (acceptor).
    stream: Option<StreamId>,
    /// Bytes written by the owner that QUIC has not taken yet.
    queued: VecDeque<Bytes>,
    queued_bytes: usize,
    outgoing: bool,
    /// The owner heard Accepted or Connected.
    announced: bool,
    /// The owner asked to close: nothing more is delivered, the stream finishes once the
    /// queue is out, and the connection closes at the deadline at the latest.
    closing_deadline_ns: Option<u64>,
    /// The stream is finished (sent FIN) after the queue drained.
    finished: bool,
    /// Closed was reported; the link waits only for quinn to drain it.
    reported: bool,
}

/// One UDP socket's worth of QUIC connections carrying ferry frames; see the crate docs.
pub struct QuicEndpoint {
    endpoint: Endpoint,
    client: ClientConfig,
    server: Option<Arc<ServerConfig>>,
    /// `now_ns` counts from this instant (quinn-proto works in `Instant`s).
    epoch: Instant,
    links: BTreeMap<QuicLink, Link>,
    by_handle: BTreeMap<usize, QuicLink>,
    link_next: u64,
    events: VecDeque<QuicEvent>,
    transmits: VecDeque<Datagram>,
    buffer: Vec<u8>,
    /// For a [`seeded`](Self::seeded) endpoint, its random stream.
    seeded: Option<Seeded>,
}

impl std::fmt::Debug for QuicEndpoint {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("QuicEndpoint").field("links", &self.links.len()).finish_non_exhaustive()
    }
}

fn transport_config() -> TransportConfig {
    let mut transport = TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(VarInt::from_u32(1))
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .stream_receive_window(VarInt::from_u32(STREAM_WINDOW_BYTES))
        .receive_window(VarInt::from_u32(2 * STREAM_WINDOW_BYTES))
        .send_window(u64::from(2 * STREAM_WINDOW_BYTES))
        .datagram_receive_buffer_size(None)
        .keep_alive_interval(Some(KEEP_ALIVE_INTERVAL))
        .max_idle_timeout(Some(quinn_proto::IdleTimeout::from(VarInt::from_u32(IDLE_TIMEOUT_MS))));
    transport
}

impl QuicEndpoint {
    /// An endpoint that dials and, with `accept`, also takes incoming connections, drawing
    /// its keys and connection ids from the operating system. Times given to it are
    /// nanoseconds since `epoch`. `identity` is a secret that stays the same across restarts
    /// of the node (its static private key): the stateless-reset key derives from it, so a
    /// restarted node's peers learn at its first packet that their old connections are
    /// gone instead of waiting out [`IDLE_TIMEOUT`].
    ///
    /// # Errors
    /// [`QuicError::Tls`] when the certificate or the TLS configuration cannot be made.
    pub fn new(epoch: Instant, accept: bool, identity: &[u8]) -> Result<Self, QuicError> {
        let provider = tls::os_provider();
        let mut client = ClientConfig::new(Arc::new(
            QuicClientConfig::try_from(tls::client_config(Arc::clone(&provider))?)
                .map_err(|error| QuicError::Tls(error.to_string()))?,
        ));
        let server = if accept {
            let (certificate, key) = tls::os_certificate()?;
            let crypto = QuicServerConfig::try_from(tls::server_config(provider, certificate, key)?)
                .map_err(|error| QuicError::Tls(error.to_string()))?;
            Some(ServerConfig::with_crypto(Arc::new(crypto)))
        } else {
            None
        };
        client.transport_config(Arc::new(transport_config()));
        let mut endpoint_config = EndpointConfig::new(Arc::new(reset_key(identity)));
        // Connection ids a restarted endpoint still recognises as its own, so that it answers
        // packets of its old connections with a stateless reset instead of dropping them.
        let cid_key =
            u64::from_le_bytes(derive(identity, b"connection id key")[..8].try_into().unwrap_or_default());
        endpoint_config
            .cid_generator(move || Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key)));
        Ok(Self::assemble(epoch, endpoint_config, client, server, None))
    }

    /// Like [`new`](Self::new), but every random draw (connection ids, keys, TLS randoms and
    /// key shares, the certificate) comes from `seed`, and validation tokens read the
    /// endpoint's own time: two endpoints made with the same seed and fed the same datagrams
    /// at the same times send the same bytes. TLS randomness drawn outside this endpoint's
    /// calls panics. For the simulator.
    ///
    /// # Errors
    /// [`QuicError::Tls`] when the certificate or the TLS configuration cannot be made.
    pub fn seeded(epoch: Instant, accept: bool, seed: [u8; 32], identity: &[u8]) -> Result<Self, QuicError> {
        let config = Seeded::config(seed);
        let mut endpoint_config = EndpointConfig::new(Arc::new(reset_key(identity)));
        endpoint_config.rng_seed(Some(config.rng_seed));
        let cids = std::sync::Mutex::new(Some(config.cids));
        endpoint_config.cid_generator(move || {
            // Called once, when the endpoint is made.
            let generator = cids.lock().ok().and_then(|mut cids| cids.take());
            Box::new(generator.unwrap_or_else(|| panic!("the connection id generator is made once")))
        });
        let mut client = ClientConfig::new(Arc::new(
            QuicClientConfig::try_from(tls::client_config(Arc::clone(&config.provider))?)
                .map_err(|error| QuicError::Tls(error.to_string()))?,
        ));
        let initial_cids = config.initial_cids;
        client.initial_dst_cid_provider(Arc::new(move || match initial_cids.lock() {
            Ok(mut cids) => cids.next(),
            Err(poisoned) => poisoned.into_inner().next(),
        }));
        client.transport_config(Arc::new(transport_config()));
        let server = if accept {
            let (certificate, key) = seeded::certificate(config.certificate_seed)?;
            let crypto = QuicServerConfig::try_from(tls::server_config(config.provider, certificate, key)?)
                .map_err(|error| QuicError::Tls(error.to_string()))?;
            let mut server = ServerConfig::new(Arc::new(crypto), Arc::new(config.token_key));
            server.time_source(config.time);
            Some(server)
        } else {
            None
        };
        Ok(Self::assemble(epoch, endpoint_config, client, server, Some(config.seeded)))
    }

    fn assemble(
        epoch: Instant,
        endpoint_config: EndpointConfig,
        client: ClientConfig,
        server: Option<ServerConfig>,
        seeded: Option<Seeded>,
    ) -> Self {
        let server = server.map(|mut server| {
            server.transport_config(Arc::new(transport_config()));
            Arc::new(server)
        });
        let endpoint = Endpoint::new(Arc::new(endpoint_config), server.clone(), false, None);
        Self {
            endpoint,
            client,
            server,
            epoch,
            links: BTreeMap::new(),
            by_handle: BTreeMap::new(),
            link_next: 1,
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            buffer: Vec::new(),
            seeded,
        }
    }

    /// Lends a seeded endpoint's random stream to TLS for one call at `now_ns`.
    fn lend(&mut self, now_ns: Option<u64>) {
        if let Some(seeded) = &mut self.seeded {
            seeded.lend(now_ns);
        }
    }

    fn reclaim(&mut self) {
        if let Some(seeded) = &mut self.seeded {
            seeded.reclaim();
        }
    }

    fn instant(&self, now_ns: u64) -> Instant {
        self.epoch + Duration::from_nanos(now_ns)
    }

    /// Links open or closing.
    pub fn links_count(&self) -> usize {
        self.links.len()
    }

    /// Starts a connection to `remote`. Bytes may be [`send`](Self::send) at once; they
    /// leave when QUIC's handshake completes.
    ///
    /// # Errors
    /// [`QuicError::TooManyConnections`], or [`QuicError::Connect`] for an address quinn
    /// cannot dial (port 0, an unspecified address).
    pub fn connect(&mut self, now_ns: u64, remote: SocketAddr) -> Result<QuicLink, QuicError> {
        self.lend(Some(now_ns));
        let result = self.connect_inner(now_ns, remote);
        self.reclaim();
        result
    }

    fn connect_inner(&mut self, now_ns: u64, remote: SocketAddr) -> Result<QuicLink, QuicError> {
        if self.links.len() >= CONNECTIONS_MAX {
            return Err(QuicError::TooManyConnections);
        }
        let now = self.instant(now_ns);
        let (handle, connection) = self
            .endpoint
            .connect(now, self.client.clone(), remote, SERVER_NAME)
            .map_err(|error| QuicError::Connect(error.to_string()))?;
        let link = self.insert(handle, connection, true);
        self.drive(now_ns, link);
        Ok(link)
    }

    fn insert(
        &mut self,
        handle: ConnectionHandle,
        connection: quinn_proto::Connection,
        outgoing: bool,
    ) -> QuicLink {
        let link = QuicLink(self.link_next);
        self.link_next += 1;
        self.by_handle.insert(handle.0, link);
        self.links.insert(
            link,
            Link {
                handle,
                connection,
                stream: None,
                queued: VecDeque::new(),
                queued_bytes: 0,
                outgoing,
                announced: false,
                closing_deadline_ns: None,
                finished: false,
                reported: false,
            },
        );
        link
    }

    /// Takes one datagram that arrived from `remote`.
    pub fn handle_datagram(&mut self, now_ns: u64, remote: SocketAddr, bytes: &[u8]) {
        self.lend(Some(now_ns));
        self.handle_datagram_inner(now_ns, remote, bytes);
        self.reclaim();
    }

    fn handle_datagram_inner(&mut self, now_ns: u64, remote: SocketAddr, bytes: &[u8]) {
        let now = self.instant(now_ns);
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.clear();
        let event = self.endpoint.handle(now, remote, None, None, BytesMut::from(bytes), &mut buffer);
        match event {
            Some(DatagramEvent::ConnectionEvent(handle, event)) => {
                if let Some(&link) = self.by_handle.get(&handle.0)
                    && let Some(state) = self.links.get_mut(&link)
                {
                    state.connection.handle_event(event);
                    self.drive(now_ns, link);
                }
            }
            Some(DatagramEvent::NewConnection(incoming)) => {
                if self.server.is_none() || self.links.len() >= CONNECTIONS_MAX {
                    let transmit = self.endpoint.refuse(incoming, &mut buffer);
                    self.push_transmit(transmit.destination, &buffer[..transmit.size]);
                } else {
                    match self.endpoint.accept(incoming, now, &mut buffer, None) {
                        Ok((handle, connection)) => {
                            let link = self.insert(handle, connection, false);
                            self.drive(now_ns, link);
                        }
                        Err(error) => {
                            if let Some(transmit) = error.response {
                                self.push_transmit(transmit.destination, &buffer[..transmit.size]);
                            }
                        }
                    }
                }
            }
            Some(DatagramEvent::Response(transmit)) => {
                self.push_transmit(transmit.destination, &buffer[..transmit.size]);
            }
            None => {}
        }
        self.buffer = buffer;
    }

    fn push_transmit(&mut self, destination: SocketAddr, bytes: &[u8]) {
        self.transmits.push_back(Datagram { destination, bytes: bytes.to_vec() });
    }

    /// Queues `bytes` on the link's stream, in order after everything queued before.
    ///
    /// # Errors
    /// [`SendError::Closed`] for a link that is gone or closing; [`SendError::QueueFull`]
    /// when the peer lets [`SEND_QUEUE_BYTES_MAX`] bytes pile up.
    pub fn send(&mut self, link: QuicLink, bytes: &[u8]) -> Result<(), SendError> {
        self.lend(None);
        let result = self.send_inner(link, bytes);
        self.reclaim();
        result
    }

    fn send_inner(&mut self, link: QuicLink, bytes: &[u8]) -> Result<(), SendError> {
        let state = self.links.get_mut(&link).ok_or(SendError::Closed)?;
        if state.closing_deadline_ns.is_some() || state.reported {
            return Err(SendError::Closed);
        }
        if state.queued_bytes + bytes.len() > SEND_QUEUE_BYTES_MAX {
            return Err(SendError::QueueFull);
        }
        state.queued_bytes += bytes.len();
        state.queued.push_back(Bytes::copy_from_slice(bytes));
        Self::flush(state);
        Ok(())
    }

    /// Stops delivering the link's bytes at once, lets what is queued (the Close that says
    /// why) reach the peer within [`CLOSE_FLUSH_TIMEOUT`], then closes the connection and
    /// reports [`QuicEvent::Closed`] with `reason`.
    pub fn close(&mut self, now_ns: u64, link: QuicLink) {
        self.lend(Some(now_ns));
        self.close_inner(now_ns, link);
        self.reclaim();
    }

    fn close_inner(&mut self, now_ns: u64, link: QuicLink) {
        let Some(state) = self.links.get_mut(&link) else { return };
        if state.closing_deadline_ns.is_none() && !state.reported {
            let flush_ns = u64::try_from(CLOSE_FLUSH_TIMEOUT.as_nanos()).unwrap_or(u64::MAX);
            state.closing_deadline_ns = Some(now_ns.saturating_add(flush_ns));
            self.drive(now_ns, link);
        }
    }

    /// Whether every link has ended and been reported closed.
    pub fn is_idle(&self) -> bool {
        self.links.values().all(|state| state.reported)
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<QuicEvent> {
        self.events.pop_front()
    }

    /// The next datagram to send, if any.
    pub fn poll_transmit(&mut self, now_ns: u64) -> Option<Datagram> {
        self.lend(Some(now_ns));
        let result = self.poll_transmit_inner(now_ns);
        self.reclaim();
        result
    }

    fn poll_transmit_inner(&mut self, now_ns: u64) -> Option<Datagram> {
        if let Some(datagram) = self.transmits.pop_front() {
            return Some(datagram);
        }
        let now = self.instant(now_ns);
        let links: Vec<QuicLink> = self.links.keys().copied().collect();
        for link in links {
            let Some(state) = self.links.get_mut(&link) else { continue };
            self.buffer.clear();
            if let Some(transmit) = state.connection.poll_transmit(now, 1, &mut self.buffer) {
                let bytes = self.buffer[..transmit.size].to_vec();
                self.drive(now_ns, link);
                return Some(Datagram { destination: transmit.destination, bytes });
            }
        }
        None
    }

    /// When [`handle_timeout`](Self::handle_timeout) must run next, in nanoseconds since the epoch.
    pub fn poll_timeout(&mut self) -> Option<u64> {
        let mut earliest: Option<u64> = None;
        let epoch = self.epoch;
        for state in self.links.values_mut() {
            let quinn = state.connection.poll_timeout().map(|instant| {
                u64::try_from(instant.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
            });
            for deadline in
                [quinn, state.closing_deadline_ns.filter(|_| !state.reported)].into_iter().flatten()
            {
                earliest = Some(earliest.map_or(deadline, |current| current.min(deadline)));
            }
        }
        earliest
    }

    /// Runs every timer due at `now_ns`: retransmissions, keep-alives, idle timeouts, and the
    /// close of links whose flush time is up.
    pub fn handle_timeout(&mut self, now_ns: u64) {
        self.lend(Some(now_ns));
        self.handle_timeout_inner(now_ns);
        self.reclaim();
    }

    fn handle_timeout_inner(&mut self, now_ns: u64) {
        let now = self.instant(now_ns);
        let links: Vec<QuicLink> = self.links.keys().copied().collect();
        for link in links {
            let Some(state) = self.links.get_mut(&link) else { continue };
            if state.connection.poll_timeout().is_some_and(|deadline| deadline <= now) {
                state.connection.handle_timeout(now);
            }
            if state.closing_deadline_ns.is_some_and(|deadline| deadline <= now_ns) && !state.reported {
                state.connection.close(now, VarInt::from_u32(CLOSE_CODE), Bytes::from_static(b"closed"));
                state.reported = true;
                // A dial closed before QUIC's handshake completed was given up on.
                let reason = if state.announced { "closed by this node" } else { NO_ANSWER };
                self.events.push_back(QuicEvent::Closed { link, reason: reason.to_owned() });
            }
            self.drive(now_ns, link);
        }
    }

    /// Moves queued bytes into the stream as far as flow control allows, then finishes the
    /// stream of a closing link whose queue is out.
    fn flush(state: &mut Link) {
        let Some(stream) = state.stream else { return };
        while let Some(front) = state.queued.front_mut() {
            match state.connection.send_stream(stream).write(front) {
                Ok(written) => {
                    state.queued_bytes -= written;
                    if written == front.len() {
                        state.queued.pop_front();
                    } else {
                        let _ = front.split_to(written);
                        return;
                    }
                }
                Err(WriteError::Blocked) => return,
                Err(_) => {
                    state.queued.clear();
                    state.queued_bytes = 0;
                    return;
                }
            }
        }
        if state.closing_deadline_ns.is_some() && !state.finished {
            state.finished = true;
            let _ = state.connection.send_stream(stream).finish();
        }
    }

    /// Processes everything quinn has for the link: endpoint events, connection events,
    /// readable and writable streams.
    fn drive(&mut self, now_ns: u64, link: QuicLink) {
        let now = self.instant(now_ns);
        let Some(state) = self.links.get_mut(&link) else { return };
        let mut drained = false;
        loop {
            let mut progressed = false;
            while let Some(event) = state.connection.poll_endpoint_events() {
                progressed = true;
                drained |= event.is_drained();
                if let Some(event) = self.endpoint.handle_event(state.handle, event) {
                    state.connection.handle_event(event);
                }
            }
            while let Some(event) = state.connection.poll() {
                progressed = true;
                match event {
                    Event::Connected => {
                        if state.outgoing {
                            state.stream = state.connection.streams().open(Dir::Bi);
                        }
                        if !state.announced && !state.reported {
                            state.announced = true;
                            self.events.push_back(if state.outgoing {
                                QuicEvent::Connected { link }
                            } else {
                                QuicEvent::Accepted { link, remote: state.connection.remote_address() }
                            });
                        }
                    }
                    Event::ConnectionLost { reason } if !state.reported => {
                        state.reported = true;
                        self.events.push_back(QuicEvent::Closed { link, reason: describe(&reason) });
                    }
                    Event::Stream(StreamEvent::Opened { dir: Dir::Bi }) => {
                        while let Some(id) = state.connection.streams().accept(Dir::Bi) {
                            if state.stream.is_none() && !state.outgoing {
                                state.stream = Some(id);
                            } else {
                                // One stream per connection (PROTOCOL.md 6.11).
                                let _ = state
                                    .connection
                                    .recv_stream(id)
                                    .stop(VarInt::from_u32(STREAM_REFUSED_CODE));
                            }
                        }
                    }
                    Event::Stream(StreamEvent::Stopped { .. }) if !state.reported => {
                        state.reported = true;
                        state.connection.close(
                            now,
                            VarInt::from_u32(CLOSE_CODE),
                            Bytes::from_static(b"stopped"),
                        );
                        self.events.push_back(QuicEvent::Closed {
                            link,
                            reason: "the peer stopped reading the stream".to_owned(),
                        });
                    }
                    Event::Stream(StreamEvent::Finished { .. })
                        if state.closing_deadline_ns.is_some() && !state.reported =>
                    {
                        state.reported = true;
                        state.connection.close(
                            now,
                            VarInt::from_u32(CLOSE_CODE),
                            Bytes::from_static(b"closed"),
                        );
                        self.events
                            .push_back(QuicEvent::Closed { link, reason: "closed by this node".to_owned() });
                    }
                    _ => {}
                }
            }
            if let Some(stream) = state.stream
                && !state.reported
            {
                let mut received = Vec::new();
                let mut ended = None;
                if let Ok(mut chunks) = state.connection.recv_stream(stream).read(true) {
                    loop {
                        match chunks.next(usize::MAX) {
                            Ok(Some(chunk)) => received.extend_from_slice(&chunk.bytes),
                            Ok(None) => {
                                ended = Some("connection closed by peer".to_owned());
                                break;
                            }
                            Err(quinn_proto::ReadError::Blocked) => break,
                            Err(quinn_proto::ReadError::Reset(code)) => {
                                ended = Some(format!("the peer reset the stream (code {code})"));
                                break;
                            }
                        }
                    }
                    // Window updates leave with the next poll_transmit.
                    let _ = chunks.finalize();
                }
                if !received.is_empty() && state.closing_deadline_ns.is_none() {
                    progressed = true;
                    self.events.push_back(QuicEvent::Received { link, bytes: received });
                }
                if let Some(reason) = ended
                    && state.closing_deadline_ns.is_none()
                {
                    state.reported = true;
                    state.connection.close(now, VarInt::from_u32(CLOSE_CODE), Bytes::from_static(b"closed"));
                    self.events.push_back(QuicEvent::Closed { link, reason });
                    progressed = true;
                }
            }
            Self::flush(state);
            if !progressed {
                break;
            }
        }
        if drained || (state.reported && state.connection.is_drained()) {
            self.by_handle.remove(&state.handle.0);
            self.links.remove(&link);
        }
    }
}

/// 32 bytes for `label` from a node's lasting secret `identity` (HKDF-SHA256, one label per
/// use, so no derived key says anything about the secret or about another).
fn derive(identity: &[u8], label: &[u8]) -> [u8; 32] {
    struct Bytes32;
    impl ring::hkdf::KeyType for Bytes32 {
        fn len(&self) -> usize {
            32
        }
    }
    let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"ferry-quic").extract(identity);
    let mut bytes = [0u8; 32];
    // Both steps fail only for outputs beyond 255 hashes; 32 bytes is one.
    let _ = prk.expand(&[label], Bytes32).and_then(|okm| okm.fill(&mut bytes));
    bytes
}

/// The stateless-reset key of a node whose lasting secret is `identity`: the same after a
/// restart, so the restarted node's resets match the tokens its peers hold.
fn reset_key(identity: &[u8]) -> ring::hmac::Key {
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &derive(identity, b"stateless reset key"))
}

/// QUIC's reason for a lost connection, in words for a log line.
fn describe(error: &ConnectionError) -> String {
    match error {
        ConnectionError::TimedOut => NO_ANSWER.to_owned(),
        ConnectionError::ApplicationClosed(close) if close.error_code == VarInt::from_u32(CLOSE_CODE) => {
            "connection closed by peer".to_owned()
        }
        ConnectionError::ConnectionClosed(close)
            if close.error_code == quinn_proto::TransportErrorCode::crypto(0x78) =>
        {
            "the peer does not speak ferry over QUIC (no ALPN ferry/1)".to_owned()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
