//! The real node's event loop: one thread owns the sans-IO protocol [`Node`] and feeds it
//! everything that happens, in the order it arrives on one bounded channel.
//!
//! Other threads (stdin, listener, connection readers, dials, the WAL syncer, discovery, the
//! registry client) only send [`Input`]s. After every input the loop drains the node's
//! outputs: frames go to connection writers, appends to the WAL buffer, a sync flushes that
//! buffer and hands the fsync to the syncer thread, events become log lines and answers.
//! The timer is the channel's receive timeout, re-armed from `Node::poll_timeout`, the
//! dialer and the handshake deadlines.
//!
//! It must not block on the network or the disk's fsync: both happen on other threads.
//!
//! Stopping (`quit`, the end of the commands, or a signal) is one path: commands stop being
//! executed, connections stop being accepted and dialed, and once every accepted command is
//! answered the node closes each session with a Close (Shutdown), lets the writers send it
//! and syncs the WAL before [`Runtime::run`] returns.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ferry_protocol::NodeId;
use ferry_protocol::session::{Identity, KEY_BYTES, NAME_BYTES_MAX, PSK_BYTES};
use ferry_protocol::{DiskRequest, Event, LinkId, LinkKind, Node, NodeConfig, Output, Role, SessionConfig};
use rand_chacha::ChaCha20Rng;
use rand_core::{OsRng, RngCore, SeedableRng};

use crate::admission::{ADDRESS_CONNECTS_BURST, Admission, Throttle, UNAUTHENTICATED_CONNECTIONS_MAX};
use crate::arguments::{NodeArguments, resolve_address};
use crate::commands::{self, Answers, COMMANDS_INFLIGHT_MAX, Command, Credits, Line, Reply};
use crate::dialer::{Dialer, TargetKey};
use crate::discovery::{self, Announce, DISCOVERY_ADDRESS_DEFAULT};
use crate::error::{NodeError, describe_io};
use crate::http::{self, Endpoints};
use crate::input::Input;
use crate::log::Logger;
use crate::network::{self, CLOSE_FLUSH_TIMEOUT, Connection, Listener, Pipe, SendError, TcpPipe};
use crate::quic::{QuicEvent, QuicTransport};
use crate::readings::{Metrics, Status};
use crate::registry::{self, BootstrapUrl, PeerRecord, RegistryToken};
use crate::stdio::{AnswerSink, Answerer, CommandSource};
use crate::transport::{Transport, split_address};
use crate::wal_file::{
    DataDirectory, KNOWN_PEERS_FILE_NAME, KNOWN_PEERS_MAX, NameClaim, SyncRequest, WalFile, read_peers_file,
};

/// Inputs queued toward the event loop, at most; senders wait beyond it (backpressure on
/// sockets and stdin).
pub(crate) const INPUTS_QUEUED_MAX: usize = 1024;
/// Open connections, at most; further accepted ones are closed at once.
pub(crate) const CONNECTIONS_MAX: usize = 64;
/// A connection without an established session this long after opening is closed.
pub(crate) const HANDSHAKE_DEADLINE_NS: u64 = 15_000_000_000;
/// Invalid frames tolerated on a connection without a session before it is closed.
pub(crate) const REJECTIONS_MAX: u32 = 16;
/// An established session that authenticates no envelope for this long is closed (peers
/// pull every second).
pub(crate) const SESSION_SILENCE_NS: u64 = 10_000_000_000;
/// Inputs handled back to back before answers are flushed and timers checked.
const INPUTS_PER_TURN_MAX: usize = 256;
/// Longest sleep of the loop, so housekeeping runs even when nothing happens.
const WAIT_NS_MAX: u64 = 1_000_000_000;
/// Shortest sleep of the loop: a deadline in the past must not make it spin.
const WAIT_NS_MIN: u64 = 1_000_000;

const _: () = assert!(ferry_protocol::session::HANDSHAKE_TIMEOUT_NS_DEFAULT < HANDSHAKE_DEADLINE_NS);

/// The caller's clock for the protocol node: wall-clock nanoseconds at start plus a
/// monotonic elapsed time, so it never goes backwards within a run and its readings are
/// comparable across nodes and restarts (the HLC stamps writes with it).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    epoch_ns: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// Starts the clock at the current wall time.
    #[must_use]
    pub fn new() -> Self {
        let epoch_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX / 2));
        Self { start: Instant::now(), epoch_ns }
    }

    /// The current reading, in nanoseconds since the Unix epoch.
    #[must_use]
    pub fn now_ns(&self) -> u64 {
        let elapsed_ns = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX / 2);
        self.epoch_ns.saturating_add(elapsed_ns)
    }
}

/// How long `ping NAME` waits for its pong.
const PING_TIMEOUT_NS: u64 = 5_000_000_000;
/// How often the last wait for the writers looks at them: it lasts at most
/// [`CLOSE_FLUSH_TIMEOUT`] and only while a writer is still sending.
const CLOSE_FLUSH_POLL: Duration = Duration::from_millis(5);
/// The reason carried by the Close each session ends with at shutdown.
const SHUTDOWN_REASON: &str = "node shutting down";

/// Why the node is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The `quit` command.
    Quit,
    /// The end of the command stream (stdin closed, or a [`NodeHandle`](crate::NodeHandle)
    /// shut down).
    CommandsEnded,
    /// SIGTERM, SIGINT or SIGHUP.
    Signal,
}

impl Stop {
    fn describe(self) -> &'static str {
        match self {
            Self::Quit => "quit",
            Self::CommandsEnded => "end of input",
            Self::Signal => "signal",
        }
    }
}

/// The event loop and everything it owns.
#[derive(Debug)]
pub(crate) struct Runtime {
    node: Node,
    logger: Logger,
    clock: Clock,
    listen_address: SocketAddr,
    inputs: Receiver<Input>,
    /// Cloned into threads started later (connections, dials).
    inputs_sender: SyncSender<Input>,
    connections: BTreeMap<LinkId, Connection>,
    link_next: LinkId,
    dialer: Dialer,
    /// Held for the lock on the directory.
    _directory: DataDirectory,
    wal: WalFile,
    syncs: Sender<SyncRequest>,
    /// The WAL length a damaged tail was cut to at start, for the warning.
    truncated_to_bytes: Option<u64>,
    answers: Answers,
    answerer: Option<Answerer>,
    credits: Credits,
    /// Set once the node is stopping: commands are no longer executed, and the node shuts
    /// down once every answer is out.
    stop: Option<Stop>,
    /// Names of nodes with routed pings in flight, by node id.
    pings: BTreeMap<NodeId, String>,
    /// Connections each source address may still open.
    admission: Admission,
    /// Peers met, by name, as in the data directory's known peers file.
    known_peers: BTreeMap<String, [u8; KEY_BYTES]>,
    /// The log line for refused connections, at most once a second.
    refusals_log: Throttle,
    /// The counters only the runtime sees (bytes, sessions, refusals), for `/metrics`.
    counters: Metrics,
    /// Where `--metrics` and `--control` are served.
    http_addresses: Vec<(Endpoints, SocketAddr)>,
    /// The transport the node listens on, and dials bare `HOST:PORT` addresses with.
    transport: Transport,
    /// The TCP accepting thread (with `--transport tcp`), stopped when the node starts
    /// stopping.
    listener: Option<Listener>,
    /// The QUIC socket and its connections: with `--transport quic`, or once the node dials a
    /// `quic://` address.
    quic: Option<QuicTransport>,
    /// With `--transport quic`, the bound socket until the endpoint starts.
    quic_socket: Option<UdpSocket>,
    /// The node's identity, whose secret the QUIC endpoint's reset keys derive from (its
    /// `Debug` leaves the secret out).
    quic_identity: Identity,
}

impl Runtime {
    /// Checks the arguments, opens the data directory, recovers the WAL, binds the sockets
    /// and starts the helper threads. The loop itself runs in [`run`](Self::run).
    ///
    /// # Errors
    /// A startup [`NodeError`] (exit code 2) naming the first problem.
    pub(crate) fn start(
        arguments: NodeArguments,
        sink: AnswerSink,
    ) -> Result<(Self, CommandSource), NodeError> {
        validate_id(&arguments.id)?;
        let logger = Logger::new(format!("ferry node {}", arguments.id), arguments.verbose);
        let clock = Clock::new();
        let listen = resolve_address("--listen", &arguments.listen)?;
        for address in &arguments.connect {
            validate_connect(address)?;
        }
        let mut bootstrap = arguments.bootstrap.as_deref().map(BootstrapUrl::parse).transpose()?;
        if bootstrap.is_some() {
            registry::validate_registry_name(&arguments.id)
                .map_err(|reason| NodeError::UnregistrableId { id: arguments.id.clone(), reason })?;
        }
        if let Some(path) = &arguments.bootstrap_token_file {
            let token = RegistryToken::read(path)?;
            bootstrap = bootstrap.map(|url| url.with_token(token));
        }
        let discovery_text =
            arguments.discover_addr.clone().unwrap_or_else(|| DISCOVERY_ADDRESS_DEFAULT.to_owned());
        let discovery_target =
            arguments.discover.then(|| resolve_address("--discover-addr", &discovery_text)).transpose()?;
        let transport = arguments.transport;
        let listen_error = |source| NodeError::Listen { address: arguments.listen.clone(), source };
        let (listener, quic_socket, listen_address) = match transport {
            Transport::Tcp => {
                let listener = TcpListener::bind(listen).map_err(listen_error)?;
                let address = listener.local_addr().map_err(listen_error)?;
                (Some(listener), None, address)
            }
            Transport::Quic => {
                let socket = UdpSocket::bind(listen).map_err(listen_error)?;
                let address = socket.local_addr().map_err(listen_error)?;
                (None, Some(socket), address)
            }
        };

        let data_path = arguments.data.clone().unwrap_or_else(|| default_data_directory(&arguments.id));
        if arguments.data.is_none() {
            logger.info(format_args!("data directory {}", data_path.display()));
        }
        // Files named on the command line are read before the data directory is touched.
        let psk = match &arguments.psk_file {
            Some(path) => Some((path, read_psk_file(path)?)),
            None => None,
        };
        let directory = DataDirectory::open(&data_path)?;
        // Before the key or the WAL are read or created: a refused node changes nothing.
        match directory.claim_name(&arguments.id)? {
            NameClaim::Matched => {}
            NameClaim::Recorded { adopted: false } => logger.debug(format_args!(
                "data directory {} now belongs to this node",
                directory.path().display()
            )),
            NameClaim::Recorded { adopted: true } => logger.info(format_args!(
                "data directory {} had no node name; recorded {:?}",
                directory.path().display(),
                arguments.id
            )),
        }
        let mut rng = os_seeded_rng()?;
        let identity = directory.identity(&mut rng)?;
        logger.debug(format_args!("data directory {} locked", directory.path().display()));
        let (wal, wal_bytes) = directory.open_wal()?;
        let known_peers = directory.known_peers()?;
        let mut session = SessionConfig::new(arguments.id.clone(), identity.clone());
        // Trust on first use (PROTOCOL.md 6.5): a known name must come with its known key,
        // and an id must be its name's hash, so no peer can pass for another. With
        // `--trust`, only the listed peers are accepted, each under its own name.
        session.pinned_peer_keys.clone_from(&known_peers);
        session.require_id_from_name = true;
        // With `--trust`, the listed names are also the only origins whose entries are
        // taken (PROTOCOL.md 8.12), so an unlisted writer cannot reach the data through a
        // member that relays.
        let mut member_origins = None;
        if let Some(path) = &arguments.trust {
            let trusted = read_peers_file(path)?;
            session.expected_peer_keys = Some(trusted.values().copied().collect());
            member_origins =
                Some(trusted.keys().map(|name| NodeId::from_name(name)).collect::<BTreeSet<_>>());
            session.pinned_peer_keys.extend(trusted);
            logger.info(format_args!(
                "accepting only the {} peers listed in {}, and entries of their origins",
                session.expected_peer_keys.as_ref().map_or(0, BTreeSet::len),
                path.display()
            ));
        }
        if let Some((path, psk)) = psk {
            session.psk = Some(psk);
            logger.info(format_args!("cluster secret from {}: only its holders can connect", path.display()));
        }
        let mut config = NodeConfig::new(session);
        config.member_origins = member_origins;
        // Routing tables are small and let `ping NAME` reach nodes several hops away.
        config.routing = true;
        config.compaction_tail_bytes_min = arguments.compact_from;
        config.compaction_horizon_ns = arguments.forget_after;
        let node = Node::recover(config, &wal_bytes, Box::new(rng)).map_err(|error| match error {
            ferry_protocol::NodeError::Wal(source) => {
                NodeError::WalCorrupt { path: wal.path().to_owned(), source }
            }
            other => NodeError::Protocol(other),
        })?;
        // What other nodes list in their --trust files to admit this one (once it started).
        logger.info(format_args!("trust line for this node: {} {}", arguments.id, hex_key(&identity.public)));

        let (inputs_sender, inputs) = mpsc::sync_channel(INPUTS_QUEUED_MAX);
        let resource = |what| move |source| NodeError::Resource { what, source };
        let syncs = WalFile::spawn_syncer(inputs_sender.clone()).map_err(resource("wal sync thread"))?;
        let listener = listener
            .map(|listener| network::spawn_listener(listener, inputs_sender.clone(), logger.clone()))
            .transpose()
            .map_err(resource("listener thread"))?;
        if let Some(target) = discovery_target {
            let socket = discovery::bind(target, &discovery_text)?;
            let announce = Announce::new(&arguments.id, listen_address, transport, &identity.public);
            discovery::spawn(socket, target, &announce, inputs_sender.clone(), logger.clone())
                .map_err(resource("discovery thread"))?;
            logger.debug(format_args!("announcing to {target} as {}", announce.key_fingerprint));
        }
        if let Some(url) = bootstrap {
            let host = if listen_address.ip().is_unspecified() {
                String::new()
            } else {
                listen_address.ip().to_string()
            };
            let record = PeerRecord {
                host,
                tcp_port: listen_address.port(),
                node_id: arguments.id.clone(),
                transport: transport.name().to_owned(),
            };
            registry::spawn_client(url, record, inputs_sender.clone(), logger.clone())
                .map_err(resource("registry thread"))?;
        }
        // `--metrics` and `--control` at one address share one server.
        let mut http_addresses = Vec::new();
        for (flag, text) in [("--metrics", &arguments.metrics), ("--control", &arguments.control)] {
            let Some(text) = text else { continue };
            let endpoints = Endpoints {
                metrics: arguments.metrics.as_ref() == Some(text),
                control: arguments.control.as_ref() == Some(text),
            };
            if flag == "--control" && endpoints.metrics {
                continue;
            }
            let address = resolve_address(flag, text)?;
            let local = http::spawn(address, text, endpoints, inputs_sender.clone(), logger.clone())?;
            http_addresses.push((endpoints, local));
        }
        let mut dialer = Dialer::default();
        for address in arguments.connect {
            dialer.add_configured(address, clock.now_ns());
        }
        let durable_sequence = node.durable_vector().get(node.node_id());
        let credits = Credits::new(COMMANDS_INFLIGHT_MAX);
        let answerer =
            Answerer::start(sink, &credits, inputs_sender.clone()).map_err(resource("stdout thread"))?;
        let commands = CommandSource { inputs: inputs_sender.clone(), credits: credits.clone() };
        let mut runtime = Self {
            node,
            logger,
            clock,
            listen_address,
            inputs,
            inputs_sender,
            connections: BTreeMap::new(),
            link_next: 1,
            dialer,
            _directory: directory,
            wal,
            syncs,
            truncated_to_bytes: None,
            answers: Answers::new(durable_sequence),
            answerer: Some(answerer),
            credits,
            stop: None,
            admission: Admission::default(),
            known_peers,
            refusals_log: Throttle::default(),
            pings: BTreeMap::new(),
            counters: Metrics::default(),
            http_addresses,
            transport,
            listener,
            quic: None,
            quic_socket,
            quic_identity: identity.clone(),
        };
        if let Some(socket) = runtime.quic_socket.take() {
            runtime.start_quic(socket, true).map_err(resource("quic endpoint"))?;
        }
        // Recovery's outputs (a truncate of a torn tail, the Recovered event) before anything.
        runtime.drain()?;
        Ok((runtime, commands))
    }

    /// The address peers can dial.
    pub(crate) fn listen_address(&self) -> SocketAddr {
        self.listen_address
    }

    /// A sender of inputs, for a signal handler.
    pub(crate) fn inputs(&self) -> SyncSender<Input> {
        self.inputs_sender.clone()
    }

    /// Runs until `quit`, the end of the command stream or a signal (exit code 0), or a
    /// disk or stdout failure. The `listening on` line is logged here, once whoever started
    /// the runtime is ready for what may follow it (a signal, a peer).
    ///
    /// # Errors
    /// [`NodeError::Disk`] or [`NodeError::Stdout`], or [`NodeError::Interrupted`] on a second
    /// signal; writes still waiting for durability are answered `error: ...` first.
    pub(crate) fn run(mut self) -> Result<i32, NodeError> {
        match self.transport {
            Transport::Tcp => self.logger.info(format_args!("listening on {}", self.listen_address)),
            Transport::Quic => self.logger.info(format_args!("listening on quic://{}", self.listen_address)),
        }
        for (endpoints, address) in &self.http_addresses {
            if endpoints.metrics {
                self.logger.info(format_args!("metrics on http://{address}/metrics"));
            }
            if endpoints.control {
                self.logger.info(format_args!("control on http://{address}/command"));
            }
        }
        let result = self.run_loop();
        if let Err(error) = &result {
            self.answers.fail_pending(&error.to_string());
            self.emit_answers();
        }
        let finished = self.answerer.take().map_or(Ok(()), Answerer::finish);
        match (result, finished) {
            (Ok(code), Ok(())) => Ok(code),
            (Ok(_), Err(source)) => Err(NodeError::Stdout { source }),
            (Err(error), _) => Err(error),
        }
    }

    fn run_loop(&mut self) -> Result<i32, NodeError> {
        loop {
            self.handle_timers()?;
            self.answers.expire(self.clock.now_ns());
            self.emit_answers();
            if self.stop.is_some() && self.answers.is_empty() {
                self.shut_down()?;
                return Ok(crate::EXIT_CLEAN);
            }
            // Once a turn, before waiting, not once an input: QUIC packs what the turn's inputs
            // and timers queued into full packets instead of one small packet per frame.
            self.flush_quic();
            let wait = self.wait();
            let input = match self.inputs.recv_timeout(wait) {
                Ok(input) => input,
                Err(RecvTimeoutError::Timeout) => continue,
                // Unreachable while `self` holds a sender; stop cleanly rather than spin.
                Err(RecvTimeoutError::Disconnected) => return Ok(crate::EXIT_CLEAN),
            };
            self.handle_input(input)?;
            for _ in 0..INPUTS_PER_TURN_MAX {
                match self.inputs.try_recv() {
                    Ok(input) => self.handle_input(input)?,
                    Err(_) => break,
                }
            }
        }
    }

    /// Sends every packet the QUIC endpoint has ready.
    fn flush_quic(&mut self) {
        let now_ns = self.clock.now_ns();
        if let Some(quic) = &mut self.quic {
            quic.flush(now_ns);
        }
    }

    /// How long to wait for the next input: until the earliest deadline, within bounds.
    fn wait(&mut self) -> Duration {
        let now_ns = self.clock.now_ns();
        let quic_deadline = self.quic.as_mut().and_then(QuicTransport::poll_timeout);
        let handshake_deadlines = self
            .connections
            .values()
            .filter(|connection| connection.peer_name.is_none() && !connection.closing)
            .map(|connection| connection.opened_at_ns.saturating_add(HANDSHAKE_DEADLINE_NS));
        let deadline_ns = [
            self.node.poll_timeout(),
            self.dialer.next_deadline_ns(),
            self.answers.deadline_ns(),
            quic_deadline,
        ]
        .into_iter()
        .flatten()
        .chain(handshake_deadlines)
        .min()
        .unwrap_or(u64::MAX);
        let wait_ns = deadline_ns.saturating_sub(now_ns).clamp(WAIT_NS_MIN, WAIT_NS_MAX);
        Duration::from_nanos(wait_ns)
    }

    fn handle_timers(&mut self) -> Result<(), NodeError> {
        let now_ns = self.clock.now_ns();
        if self.node.poll_timeout().is_some_and(|deadline_ns| deadline_ns <= now_ns) {
            self.node.handle_timeout(now_ns);
        }
        if let Some(quic) = &mut self.quic
            && quic.poll_timeout().is_some_and(|deadline_ns| deadline_ns <= now_ns)
        {
            quic.handle_timeout(now_ns);
        }
        let expired: Vec<LinkId> = self
            .connections
            .iter()
            .filter(|(_, connection)| {
                connection.peer_name.is_none()
                    && !connection.closing
                    && now_ns.saturating_sub(connection.opened_at_ns) >= HANDSHAKE_DEADLINE_NS
            })
            .map(|(link, _)| *link)
            .collect();
        for link in expired {
            self.close(link, "no session established within 15 s");
        }
        // Peers pull every second: a session that authenticates nothing for this long is
        // stuck (bytes injected into the stream, a peer that stopped answering); close it
        // and let the dialer redial.
        let established: Vec<LinkId> = self
            .connections
            .iter()
            .filter(|(_, connection)| connection.peer_name.is_some() && !connection.closing)
            .map(|(link, _)| *link)
            .collect();
        for link in established {
            if self.node.silence_ns(now_ns, link).is_some_and(|silence_ns| silence_ns >= SESSION_SILENCE_NS) {
                self.close(link, "nothing authenticated for 10 s: the session is stuck");
            }
        }
        self.dialer.expire(now_ns);
        if self.stop.is_some() {
            return self.drain();
        }
        let connected: BTreeSet<String> =
            self.node.connected_peers().map(|(_, name)| name.to_owned()).collect();
        for (key, address) in self.dialer.due(now_ns) {
            if let TargetKey::Learned(name) = &key
                && connected.contains(name)
            {
                self.dialer.postpone(&key, now_ns);
                continue;
            }
            self.logger.debug(format_args!("dialing {address}"));
            let (transport, host_port) = split_address(&address, self.transport);
            let spawned = match transport {
                Transport::Tcp => {
                    network::spawn_dial(key.clone(), host_port.to_owned(), self.inputs_sender.clone())
                }
                Transport::Quic => {
                    network::spawn_resolve(key.clone(), host_port.to_owned(), self.inputs_sender.clone())
                }
            };
            if let Err(error) = spawned {
                self.logger.info(format_args!("cannot start a dial: {}", describe_io(&error)));
                self.dialer.failed(&key, now_ns);
            }
        }
        self.drain()
    }

    fn handle_input(&mut self, input: Input) -> Result<(), NodeError> {
        let now_ns = self.clock.now_ns();
        match input {
            Input::Command(line) => self.handle_command(now_ns, line, None),
            Input::Control { line, reply } => self.handle_command(now_ns, line, Some(reply)),
            Input::CommandsEnded => self.begin_stop(Stop::CommandsEnded),
            Input::Signal => {
                if self.stop.is_some() {
                    return Err(NodeError::Interrupted);
                }
                self.begin_stop(Stop::Signal);
            }
            Input::Accepted { stream, address } => self.accept(now_ns, stream, address),
            Input::Dialed { key, result } => self.handle_dialed(now_ns, key, result),
            Input::Resolved { key, result } => self.handle_resolved(now_ns, key, result),
            Input::Datagram { from, bytes } => {
                self.counters.received_bytes += bytes.len() as u64;
                if let Some(quic) = &mut self.quic {
                    quic.handle_datagram(now_ns, from, &bytes);
                }
            }
            Input::Received { link, bytes } => {
                self.counters.received_bytes += bytes.len() as u64;
                // Bytes already read from a link being closed are never processed.
                if self.connections.get(&link).is_some_and(|connection| !connection.closing) {
                    self.node.handle_stream(now_ns, link, &bytes);
                }
            }
            Input::Closed { link, reason } => self.connection_closed(now_ns, link, &reason),
            Input::Metrics { reply } => {
                let _ = reply.try_send(self.metrics());
            }
            Input::Status { reply } => {
                let _ = reply.try_send(self.status());
            }
            Input::Synced { sync_id } => self.node.handle_synced(now_ns, sync_id),
            Input::SyncFailed { error } => {
                return Err(NodeError::Disk { path: self.wal.path().to_owned(), source: error });
            }
            Input::StdoutFailed { error } => return Err(NodeError::Stdout { source: error }),
            Input::Learned { name, address, transport, via } => {
                // A peer on the other transport is dialed with its scheme (PROTOCOL.md 6.11).
                let address = if transport == self.transport {
                    address.to_string()
                } else {
                    transport.address(&address.to_string())
                };
                // The lower name dials, so two nodes that hear of each other connect once.
                if self.stop.is_none()
                    && name.as_str() > self.node.name()
                    && self.dialer.learn(name.clone(), address.clone(), now_ns)
                {
                    self.logger.info(format_args!("learned peer {name} at {address} via {via}"));
                }
            }
        }
        self.drain()
    }

    /// Admits an incoming TCP connection, or refuses it (the socket drops): see `admission`.
    fn accept(&mut self, now_ns: u64, stream: TcpStream, address: SocketAddr) {
        if self.admit(now_ns, address) {
            self.open_connection(now_ns, stream, address, Role::Responder, None);
        }
    }

    /// Whether an incoming connection from `address` may open, making room for it if the
    /// connections without a session are many; logs a refusal.
    fn admit(&mut self, now_ns: u64, address: SocketAddr) -> bool {
        if self.stop.is_some() {
            self.logger.debug(format_args!("refused connection from {address}: shutting down"));
            return false;
        }
        if !self.admission.admit(address.ip(), now_ns) {
            let reason = format!("more than {ADDRESS_CONNECTS_BURST} connections at once from this address");
            self.refuse(now_ns, address, &reason);
            return false;
        }
        // Connections without a session share a quota; the oldest makes room for a new one,
        // so a returning peer gets in however many silent ones an attacker opened.
        let silent: Vec<(u64, LinkId)> = self
            .connections
            .iter()
            .filter(|(_, connection)| connection.peer_name.is_none() && !connection.closing)
            .map(|(link, connection)| (connection.opened_at_ns, *link))
            .collect();
        let open = self.connections.values().filter(|connection| !connection.closing).count();
        if silent.len() >= UNAUTHENTICATED_CONNECTIONS_MAX || (open >= CONNECTIONS_MAX && !silent.is_empty())
        {
            if let Some((_, oldest)) = silent.iter().min() {
                let reason = "evicted: the oldest connection without a session makes room for a new one";
                self.close_quietly(*oldest, reason);
            }
        } else if open >= CONNECTIONS_MAX {
            self.refuse(now_ns, address, &format!("{CONNECTIONS_MAX} connections open"));
            return false;
        }
        true
    }

    /// Trust on first use: records a peer met for the first time in the known peers file and
    /// pins its key, so the name cannot later come with another key.
    fn remember_peer(&mut self, name: &str, static_key: [u8; KEY_BYTES]) {
        if self.known_peers.contains_key(name) {
            return;
        }
        if self.known_peers.len() >= KNOWN_PEERS_MAX {
            self.logger.info(format_args!(
                "warning: not remembering peer {name}: {KNOWN_PEERS_MAX} peers are known already"
            ));
            return;
        }
        self.known_peers.insert(name.to_owned(), static_key);
        self.node.pin_peer(name.to_owned(), static_key);
        match self._directory.save_known_peers(&self.known_peers) {
            Ok(()) => self.logger.info(format_args!(
                "trusting new peer {name} with key {} (first use; recorded in {})",
                hex_key(&static_key),
                self._directory.path().join(KNOWN_PEERS_FILE_NAME).display()
            )),
            Err(error) => self.logger.info(format_args!(
                "warning: cannot record peer {name} in the known peers file: {}",
                describe_io(&error)
            )),
        }
    }

    /// Logs a refused connection, at most one line a second.
    fn refuse(&mut self, now_ns: u64, address: SocketAddr, reason: &str) {
        self.counters.connections_refused += 1;
        match self.refusals_log.allow(now_ns) {
            Some(0) => self.logger.info(format_args!("refused connection from {address}: {reason}")),
            Some(left_out) => self.logger.info(format_args!(
                "refused connection from {address}: {reason} ({left_out} more refusals not logged)"
            )),
            None => {}
        }
    }

    /// Executes one command line from stdin (`reply` is `None`, and the line holds one of
    /// its credits) or from `--control` (its answer goes to `reply`).
    fn handle_command(&mut self, now_ns: u64, line: Line, reply: Reply) {
        let parsed = match line {
            Line::Text(text) => commands::parse(&text),
            Line::Refused(error) => Err(error),
        };
        if self.stop.is_some() {
            // Commands after `quit` (or a signal) are not executed: stdin's get no answer,
            // a control request is told why.
            match reply {
                Some(reply) => drop(reply.try_send("error: the node is shutting down".to_owned())),
                None => self.credits.release(),
            }
            return;
        }
        let control = reply.is_some();
        self.answers.address(reply);
        let command = match parsed {
            Ok(Some(command)) => command,
            Ok(None) if control => return self.answers.push("error: empty command".to_owned()),
            Ok(None) => return self.credits.release(),
            Err(error) => return self.answers.push(format!("error: {error}")),
        };
        match command {
            Command::Put { key, value } => {
                match self.node.put(now_ns, Bytes::from(key), Bytes::from(value)) {
                    Ok(sequence) => self.answers.push_durable(sequence),
                    Err(error) => self.answers.push(format!("error: {error}")),
                }
            }
            Command::Delete { key } => match self.node.delete(now_ns, Bytes::from(key)) {
                Ok(sequence) => self.answers.push_durable(sequence),
                Err(error) => self.answers.push(format!("error: {error}")),
            },
            Command::Get { key } => {
                let answer = self
                    .node
                    .get(key.as_bytes())
                    .map_or_else(|| "(nil)".to_owned(), |value| commands::display_value(value));
                self.answers.push(answer);
            }
            Command::Peers => {
                let names: BTreeSet<&str> = self.node.connected_peers().map(|(_, name)| name).collect();
                let answer = if names.is_empty() {
                    "peers: (none)".to_owned()
                } else {
                    // Names come from peers: one line, whatever they hold.
                    ferry_protocol::text::one_line(&format!(
                        "peers: {}",
                        names.into_iter().collect::<Vec<_>>().join(" ")
                    ))
                };
                self.answers.push(answer);
            }
            Command::Digest => self.answers.push(self.node.digest().to_string()),
            Command::Ping { target } => self.ping(now_ns, target),
            Command::Help => self.answers.push(commands::help_text()),
            Command::Quit if control => {
                self.answers.push("ok: shutting down".to_owned());
                self.begin_stop(Stop::Quit);
            }
            Command::Quit => {
                // `quit` answers by exiting, once every earlier answer is out.
                self.credits.release();
                self.begin_stop(Stop::Quit);
            }
        }
    }

    /// `ping NAME`: every message names the node as it was asked for, never its id.
    fn ping(&mut self, now_ns: u64, target: String) {
        if target == self.node.name() {
            return self.answers.push(format!("error: cannot ping {target:?}: it is this node"));
        }
        let target_id = NodeId::from_name(&target);
        match self.node.route_ping(now_ns, target_id) {
            Ok(_) => {
                self.pings.insert(target_id, target.clone());
                self.answers.push_ping(target, now_ns + PING_TIMEOUT_NS);
            }
            Err(ferry_protocol::NodeError::NoRoute { .. }) => {
                self.answers.push(format!("error: no route to node {target:?}: no peer knows a path to it"))
            }
            Err(error) => self.answers.push(format!("error: {error}")),
        }
    }

    /// Starts stopping: from now on commands are not executed and no connection is accepted
    /// or dialed; [`run_loop`](Self::run_loop) shuts down once every answer is out.
    fn begin_stop(&mut self, stop: Stop) {
        if self.stop.is_some() {
            return;
        }
        self.stop = Some(stop);
        if let Some(listener) = &self.listener {
            listener.stop();
        }
        // A ping would hold the stop for its whole timeout: it is answered now.
        self.answers.cancel_pings("the node is shutting down");
        let pending = if self.answers.is_empty() { "" } else { " once every accepted command is answered" };
        self.logger.info(format_args!("shutting down ({}){pending}", stop.describe()));
    }

    /// The end of a clean stop, every answer out: closes each session with a Close
    /// (Shutdown), lets the connection writers send what they hold (at most
    /// [`CLOSE_FLUSH_TIMEOUT`]), and makes everything the WAL received durable.
    ///
    /// # Errors
    /// [`NodeError::Disk`] when the WAL's last write or sync fails.
    fn shut_down(&mut self) -> Result<(), NodeError> {
        let sessions_count = self.node.connected_peers().count();
        self.node.shutdown(self.clock.now_ns(), SHUTDOWN_REASON);
        self.drain()?;
        let quic_links: Vec<LinkId> = self
            .connections
            .iter()
            .filter(|(_, connection)| matches!(connection.pipe, Pipe::Quic(_)))
            .map(|(link, _)| *link)
            .collect();
        for link in quic_links {
            self.shutdown_connection(link);
        }
        let writers: Vec<_> = std::mem::take(&mut self.connections)
            .into_values()
            .filter_map(|connection| match connection.pipe {
                Pipe::Tcp(pipe) => Some(pipe.finish(CLOSE_FLUSH_TIMEOUT)),
                Pipe::Quic(_) => None,
            })
            .collect();
        self.finish_quic();
        // The writers run side by side; each ends after its queue or a write that waited out
        // its timeout, so together they take about one timeout at worst.
        let deadline = Instant::now() + CLOSE_FLUSH_TIMEOUT + CLOSE_FLUSH_TIMEOUT / 2;
        while writers.iter().any(|writer| !writer.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(CLOSE_FLUSH_POLL);
        }
        let unfinished_count = writers.iter().filter(|writer| !writer.is_finished()).count();
        if unfinished_count > 0 {
            self.logger.info(format_args!(
                "{unfinished_count} connections still sending after {} ms; closing them anyway",
                CLOSE_FLUSH_TIMEOUT.as_millis()
            ));
        }
        // Entries from peers may have been appended after the last sync was requested.
        self.wal.sync().map_err(|error| self.disk_error(error))?;
        self.logger.info(format_args!("stopped cleanly (sessions closed: {sessions_count}, wal synced)"));
        Ok(())
    }

    fn handle_dialed(
        &mut self,
        now_ns: u64,
        key: TargetKey,
        result: Result<(TcpStream, SocketAddr), String>,
    ) {
        if !self.dialer.is_dialing(&key) || self.stop.is_some() {
            return;
        }
        let address = self.dialer.address(&key).unwrap_or_default().to_owned();
        match result {
            Ok((stream, peer_address)) if self.connections.len() < CONNECTIONS_MAX => {
                self.logger.debug(format_args!("connected to {address} ({peer_address})"));
                self.open_connection(now_ns, stream, peer_address, Role::Initiator, Some(key));
            }
            Ok(_) => {
                self.logger.debug(format_args!("not dialing {address}: {CONNECTIONS_MAX} connections open"));
                self.dialer.failed(&key, now_ns);
            }
            Err(reason) => {
                let failures_count = self.dialer.failed(&key, now_ns);
                // Logged once per outage: the backoff keeps retrying quietly.
                if failures_count == 1 {
                    self.logger
                        .info(format_args!("cannot connect to {address}: {reason}; retrying with backoff"));
                } else {
                    self.logger.debug(format_args!("cannot connect to {address}: {reason}"));
                }
            }
        }
    }

    fn open_connection(
        &mut self,
        now_ns: u64,
        stream: TcpStream,
        address: SocketAddr,
        role: Role,
        target: Option<TargetKey>,
    ) {
        let link = self.link_next;
        match TcpPipe::open(link, stream, self.inputs_sender.clone()) {
            Ok(pipe) => {
                self.add_connection(now_ns, Pipe::Tcp(pipe), address, role, target);
            }
            Err(error) => {
                self.logger
                    .info(format_args!("cannot set up connection with {address}: {}", describe_io(&error)));
                if let Some(key) = &target {
                    self.dialer.failed(key, now_ns);
                }
            }
        }
    }

    /// Takes a new connection on `pipe` into the node; returns its link. A QUIC dial's link
    /// comes up in the protocol node only once QUIC's handshake completes (`pump_quic`).
    fn add_connection(
        &mut self,
        now_ns: u64,
        pipe: Pipe,
        address: SocketAddr,
        role: Role,
        target: Option<TargetKey>,
    ) -> LinkId {
        let link = self.link_next;
        self.link_next += 1;
        if let (Pipe::Quic(quic_link), Some(quic)) = (&pipe, &mut self.quic) {
            quic.links.insert(*quic_link, link);
        }
        // Only a QUIC dial waits for its transport: QUIC reports an accepted connection once
        // its handshake is done, and a TCP connection is up when it exists.
        let ready = !(matches!(pipe, Pipe::Quic(_)) && role == Role::Initiator);
        self.connections.insert(link, Connection::new(pipe, address, target.clone(), now_ns, ready));
        if let Some(key) = &target {
            self.dialer.connected(key, link);
        }
        self.logger.debug(format_args!("link {link} open with {address} as {role:?}"));
        if ready {
            self.node.link_up(now_ns, link, LinkKind::Stream, role);
        }
        link
    }

    /// Starts the QUIC endpoint on `socket`; with `accept`, peers may dial in.
    fn start_quic(&mut self, socket: UdpSocket, accept: bool) -> io::Result<()> {
        let quic = QuicTransport::start(
            socket,
            accept,
            self.clock.start,
            self.clock.epoch_ns,
            &self.quic_identity.secret,
            self.inputs_sender.clone(),
            self.logger.clone(),
        )?;
        self.quic = Some(quic);
        Ok(())
    }

    /// A QUIC dial's address is known: starts the connection (a dial-only endpoint first, on
    /// a node that listens on TCP). Frames queue until QUIC's handshake completes.
    fn handle_resolved(&mut self, now_ns: u64, key: TargetKey, result: Result<SocketAddr, String>) {
        if !self.dialer.is_dialing(&key) || self.stop.is_some() {
            return;
        }
        let address = self.dialer.address(&key).unwrap_or_default().to_owned();
        let started = result.and_then(|remote| {
            if self.connections.len() >= CONNECTIONS_MAX {
                return Err(format!("{CONNECTIONS_MAX} connections open"));
            }
            if self.quic.is_none() {
                let unspecified: SocketAddr =
                    if remote.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
                UdpSocket::bind(unspecified)
                    .and_then(|socket| self.start_quic(socket, false))
                    .map_err(|error| format!("cannot open a QUIC socket: {}", describe_io(&error)))?;
            }
            let quic = self.quic.as_mut().ok_or_else(|| "no QUIC endpoint".to_owned())?;
            let quic_link = quic.connect(now_ns, remote).map_err(|error| error.to_string())?;
            Ok((quic_link, remote))
        });
        match started {
            Ok((quic_link, remote)) => {
                self.logger.debug(format_args!("dialing {address} ({remote}) over quic"));
                self.add_connection(now_ns, Pipe::Quic(quic_link), remote, Role::Initiator, Some(key));
            }
            Err(reason) => self.dial_failed(now_ns, &key, &address, &reason),
        }
    }

    /// A dial that did not reach its peer: logged once per outage, redialed with backoff.
    fn dial_failed(&mut self, now_ns: u64, key: &TargetKey, address: &str, reason: &str) {
        let failures_count = self.dialer.failed(key, now_ns);
        if failures_count == 1 {
            self.logger.info(format_args!("cannot connect to {address}: {reason}; retrying with backoff"));
        } else {
            self.logger.debug(format_args!("cannot connect to {address}: {reason}"));
        }
    }

    /// Handles the QUIC endpoint's next event, if any; returns whether there was one. One
    /// at a time: the caller performs what the node made of it before the next, so that the
    /// Close a stream delivered is heard before the end of that stream closes the link.
    /// Packets leave once a turn (`flush_quic`).
    fn pump_quic(&mut self, now_ns: u64) -> bool {
        let Some(quic) = &mut self.quic else { return false };
        let Some(event) = quic.poll_event() else { return false };
        match event {
            QuicEvent::Accepted { link: quic_link, remote } => {
                if self.admit(now_ns, remote) {
                    self.add_connection(now_ns, Pipe::Quic(quic_link), remote, Role::Responder, None);
                } else if let Some(quic) = &mut self.quic {
                    quic.close(now_ns, quic_link);
                }
            }
            QuicEvent::Connected { link: quic_link } => {
                if let Some(link) = quic.links.get(&quic_link).copied()
                    && let Some(connection) = self.connections.get_mut(&link)
                {
                    connection.transport_ready = true;
                    self.logger.debug(format_args!("connected to {} over quic", connection.address));
                    self.node.link_up(now_ns, link, LinkKind::Stream, Role::Initiator);
                }
            }
            QuicEvent::Received { link: quic_link, bytes } => {
                if let Some(link) = quic.links.get(&quic_link).copied()
                    && self.connections.get(&link).is_some_and(|connection| !connection.closing)
                {
                    self.node.handle_stream(now_ns, link, &bytes);
                }
            }
            QuicEvent::Closed { link: quic_link, reason } => {
                if let Some(link) = quic.links.remove(&quic_link) {
                    self.connection_closed(now_ns, link, &ferry_protocol::text::escape(&reason));
                }
            }
        }
        true
    }

    /// At shutdown, once every QUIC link is closing: drives the endpoint until each has
    /// delivered its Close and ended, or [`CLOSE_FLUSH_TIMEOUT`] passed.
    fn finish_quic(&mut self) {
        let deadline = Instant::now() + CLOSE_FLUSH_TIMEOUT;
        while self.quic.as_ref().is_some_and(|quic| !quic.is_idle()) && Instant::now() < deadline {
            let now_ns = self.clock.now_ns();
            if let Some(quic) = &mut self.quic {
                if quic.poll_timeout().is_some_and(|deadline_ns| deadline_ns <= now_ns) {
                    quic.handle_timeout(now_ns);
                }
                quic.flush(now_ns);
                while quic.poll_event().is_some() {}
            }
            // Only datagrams matter now: the sessions are closed and the WAL syncs next.
            if let Ok(Input::Datagram { from, bytes }) = self.inputs.recv_timeout(CLOSE_FLUSH_POLL)
                && let Some(quic) = &mut self.quic
            {
                quic.handle_datagram(self.clock.now_ns(), from, &bytes);
            }
        }
        if let Some(quic) = &mut self.quic {
            quic.flush(self.clock.now_ns());
            quic.stop();
        }
    }

    fn connection_closed(&mut self, now_ns: u64, link: LinkId, reason: &str) {
        let Some(connection) = self.connections.remove(&link) else { return };
        if !connection.transport_ready
            && let Some(key) = &connection.target
        {
            // A QUIC dial that never completed QUIC's handshake: a failed dial, whose link
            // never came up.
            let address = self.dialer.address(key).unwrap_or_default().to_owned();
            return self.dial_failed(now_ns, key, &address, reason);
        }
        self.node.link_down(now_ns, link);
        match &connection.peer_name {
            Some(name) => {
                self.logger.info(format_args!("peer disconnected: {name} ({}): {reason}", connection.address))
            }
            None => {
                self.logger.debug(format_args!("connection with {} closed: {reason}", connection.address))
            }
        }
        if let Some(key) = &connection.target {
            self.dialer.failed(key, now_ns);
        }
    }

    /// Shuts a connection down without an info line (an eviction under a flood).
    fn close_quietly(&mut self, link: LinkId, reason: &str) {
        let Some(connection) = self.connections.get_mut(&link) else { return };
        if !connection.closing {
            self.logger.debug(format_args!("dropped connection with {}: {reason}", connection.address));
            self.shutdown_connection(link);
        }
    }

    /// Stops processing what the connection receives and lets it deliver what is queued
    /// (the Close that says why); its reader (TCP) or the QUIC endpoint then reports the close.
    fn shutdown_connection(&mut self, link: LinkId) {
        let now_ns = self.clock.now_ns();
        let Some(connection) = self.connections.get_mut(&link) else { return };
        connection.closing = true;
        match &mut connection.pipe {
            Pipe::Tcp(pipe) => pipe.shutdown(),
            Pipe::Quic(quic_link) => {
                if let Some(quic) = &mut self.quic {
                    quic.close(now_ns, *quic_link);
                }
            }
        }
    }

    /// Shuts a connection down; the reader's `Closed` then removes it.
    fn close(&mut self, link: LinkId, reason: &str) {
        let Some(connection) = self.connections.get_mut(&link) else { return };
        if connection.closing {
            return;
        }
        let reason = connection.close_reason.take().unwrap_or_else(|| reason.to_owned());
        self.logger.info(format_args!("dropped connection with {}: {reason}", connection.address));
        self.shutdown_connection(link);
    }

    /// A reading for `/metrics`: the runtime's counters, the node's stats and its size now.
    fn metrics(&self) -> Metrics {
        let stats = self.node.stats();
        Metrics {
            peers: self.node.connected_peers().count() as u64,
            connections: self.connections.values().filter(|connection| !connection.closing).count() as u64,
            keys: self.node.store().len() as u64,
            log_entries: self.node.log_entries().0,
            wal_bytes: self.node.wal_bytes().0,
            entries_applied: stats.entries_applied,
            entries_duplicate: stats.entries_duplicate,
            frames_rejected: stats.frames_rejected,
            sessions_closed_invalid: stats.sessions_closed_invalid,
            clock_rejections: stats.clock_rejections,
            compactions: stats.compactions,
            entries_refused: stats.entries_refused,
            entries_forged: stats.entries_forged,
            snapshots_applied: stats.snapshots_applied,
            ..self.counters.clone()
        }
    }

    /// The node's state for `/status`.
    fn status(&self) -> Status {
        let peers: BTreeSet<&str> = self.node.connected_peers().map(|(_, name)| name).collect();
        Status {
            name: self.node.name().to_owned(),
            peers: peers.into_iter().map(str::to_owned).collect(),
            digest: self.node.digest().to_string(),
            keys: self.node.store().len() as u64,
            wal_bytes: self.node.wal_bytes().0,
            stopping: self.stop.is_some(),
        }
    }

    /// Performs every output the node queued.
    fn drain(&mut self) -> Result<(), NodeError> {
        let now_ns = self.clock.now_ns();
        // QUIC's events make the node say more (a handshake answered, a link closed): one
        // event, then everything the node said, until neither has anything.
        loop {
            self.drain_outputs(now_ns)?;
            if !self.pump_quic(now_ns) {
                return Ok(());
            }
        }
    }

    /// Performs every output the node has queued.
    fn drain_outputs(&mut self, now_ns: u64) -> Result<(), NodeError> {
        while let Some(output) = self.node.poll() {
            match output {
                Output::Send { link, frame, .. } => self.send(link, frame),
                Output::Close { link } => self.close(link, "the protocol closed the link"),
                Output::Disk(DiskRequest::Append { bytes }) => {
                    self.wal.append(&bytes).map_err(|error| self.disk_error(error))?
                }
                Output::Disk(DiskRequest::Sync { sync_id }) => {
                    // Every append before this sync must be in the file before the fsync starts.
                    self.wal.flush().map_err(|error| self.disk_error(error))?;
                    if self.syncs.send(self.wal.sync_request(sync_id)).is_err() {
                        let error = io::Error::other("the wal sync thread stopped");
                        return Err(self.disk_error(error));
                    }
                }
                Output::Disk(DiskRequest::Truncate { length_bytes }) => {
                    self.wal.truncate(length_bytes).map_err(|error| self.disk_error(error))?;
                    self.truncated_to_bytes = Some(length_bytes);
                }
                Output::Disk(DiskRequest::Replace { bytes }) => {
                    self.wal.replace(&bytes).map_err(|error| self.disk_error(error))?;
                }
                Output::Event(event) => self.handle_event(now_ns, event),
            }
        }
        Ok(())
    }

    fn disk_error(&self, source: io::Error) -> NodeError {
        NodeError::Disk { path: self.wal.path().to_owned(), source }
    }

    fn send(&mut self, link: LinkId, frame: Bytes) {
        let Some(connection) = self.connections.get(&link) else { return };
        if connection.closing {
            return;
        }
        self.counters.sent_bytes += frame.len() as u64;
        let full = match &connection.pipe {
            Pipe::Tcp(pipe) => pipe.send(frame) == Err(SendError::QueueFull),
            Pipe::Quic(quic_link) => self
                .quic
                .as_mut()
                .is_some_and(|quic| quic.send(*quic_link, &frame) == Err(crate::quic::SendError::QueueFull)),
        };
        if full {
            self.close(link, "peer too slow: send queue full");
        }
    }

    fn handle_event(&mut self, now_ns: u64, event: Event) {
        match event {
            Event::RoutedPong { target, round_trip_ns } => {
                if let Some(name) = self.pings.get(&target) {
                    self.answers.pong(name, round_trip_ns);
                }
            }
            Event::Recovered { entries_count, truncated_bytes } => {
                let path = self.wal.path().display();
                if truncated_bytes > 0 {
                    let offset = self.truncated_to_bytes.unwrap_or_default();
                    self.logger.info(format_args!(
                        "warning: wal {path} had a damaged tail: cut {truncated_bytes} bytes at offset {offset}, recovered {entries_count} entries"
                    ));
                } else {
                    self.logger.debug(format_args!("recovered {entries_count} entries from {path}"));
                }
            }
            Event::Acked { entry } => {
                if entry.origin == self.node.node_id() {
                    self.counters.writes_acked += 1;
                    self.answers.acknowledge(entry.sequence);
                }
            }
            Event::PeerConnected { link, name, static_key, .. } => {
                self.counters.sessions_opened += 1;
                self.remember_peer(&name, static_key);
                let Some(connection) = self.connections.get_mut(&link) else { return };
                connection.peer_name = Some(name.clone());
                connection.rejections_count = 0;
                let direction = if connection.target.is_some() { "dialed" } else { "accepted" };
                self.logger
                    .info(format_args!("peer connected: {name} ({}, {direction})", connection.address));
                if let Some(key) = connection.target.clone() {
                    self.dialer.established(&key);
                }
            }
            Event::PeerDisconnected { link, reason } => {
                let Some(connection) = self.connections.get_mut(&link) else { return };
                match connection.peer_name.take() {
                    Some(name) => {
                        self.logger.info(format_args!(
                            "peer disconnected: {name} ({}): {reason}",
                            connection.address
                        ));
                        // The link stays; a new session must be established within the deadline.
                        connection.opened_at_ns = now_ns;
                    }
                    None => connection.close_reason = Some(reason),
                }
            }
            Event::HandshakeFailed { link, reason } => {
                self.counters.handshakes_failed += 1;
                let Some(connection) = self.connections.get(&link) else { return };
                self.logger.info(format_args!("handshake failed with {}: {reason}", connection.address));
                // A stream whose first handshake failed is closed rather than left to the
                // protocol's own retry (PROTOCOL.md 6.7); a dialed target redials with backoff.
                if connection.peer_name.is_none() {
                    self.close(link, "handshake failed");
                }
            }
            Event::Rejected { link, reason } if reason.starts_with("refused ") => {
                // Entries of a non-member origin (PROTOCOL.md 8.12): the protocol reports an
                // origin at most once a minute, so every report is worth a line.
                let address = self.connections.get(&link).map(|connection| connection.address);
                let from = address.map_or_else(String::new, |address| format!(" from {address}"));
                self.logger.info(format_args!("{reason}{from}"));
            }
            Event::Rejected { link, reason } => {
                let Some(connection) = self.connections.get_mut(&link) else { return };
                // The rest of a read that closed its connection is still decoded; its frames
                // are neither logged nor counted, or a flood logs a line per frame of a
                // connection already dropped (and stalls the node on a slow stderr).
                if connection.closing {
                    return;
                }
                self.logger.debug(format_args!("rejected frame from {}: {reason}", connection.address));
                if connection.peer_name.is_none() {
                    connection.rejections_count += 1;
                    if connection.rejections_count > REJECTIONS_MAX {
                        self.close(
                            link,
                            &format!("more than {REJECTIONS_MAX} invalid frames, last: {reason}"),
                        );
                    }
                }
            }
            Event::ClockAhead { link, origin, ahead_ms, .. } => {
                let from = self.link_description(link);
                self.logger.info(format_args!(
                    "warning: entries of origin {origin} from {from} are stamped {:.1} s ahead of this node's clock; writes here still win over them (reported once per origin)",
                    ahead_ms as f64 / 1000.0
                ));
            }
            Event::Pong { link, round_trip_ns } => {
                self.logger.debug(format_args!("pong on link {link}: {round_trip_ns} ns"));
            }
            event @ (Event::Conflict(_) | Event::Audit(_) | Event::Compacted { .. }) => {
                self.logger.debug(format_args!("{event}"));
            }
            Event::SnapshotApplied { link, entries_count, origins_advanced } => {
                let from = self.link_description(link);
                self.logger.info(format_args!(
                    "caught up by snapshot from {from}: {entries_count} keys, {origins_advanced} origins advanced"
                ));
            }
            Event::SnapshotRefused { link, reason } => {
                let from = self.link_description(link);
                self.logger.info(format_args!("refused a snapshot from {from}: {reason}"));
            }
        }
    }

    /// The peer on `link` for a log line: its name and address, or its address alone.
    fn link_description(&self, link: LinkId) -> String {
        self.connections.get(&link).map_or_else(
            || "a closed link".to_owned(),
            |connection| match &connection.peer_name {
                Some(name) => format!("{name} ({})", connection.address),
                None => connection.address.to_string(),
            },
        )
    }

    fn emit_answers(&mut self) {
        while let Some((answer, reply)) = self.answers.pop_addressed() {
            match (reply, &self.answerer) {
                // The request waits at most its timeout; an answer too late is dropped.
                (Some(reply), _) => drop(reply.try_send(answer)),
                (None, Some(answerer)) => answerer.emit(answer, &self.credits),
                (None, None) => {}
            }
        }
    }
}

/// A static key in hex.
fn hex_key(key: &[u8; KEY_BYTES]) -> String {
    key.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Reads `--psk-file`: 64 hex digits (surrounding whitespace ignored), never logged.
fn read_psk_file(path: &std::path::Path) -> Result<[u8; PSK_BYTES], NodeError> {
    use std::io::Read as _;
    let unusable = |reason: String| NodeError::Psk { path: path.to_owned(), reason };
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(4096).read_to_string(&mut text))
        .map_err(|error| unusable(describe_io(&error)))?;
    let digits = text.trim();
    let wanted = 2 * PSK_BYTES;
    if digits.len() != wanted || !digits.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        let found = digits.bytes().filter(u8::is_ascii_hexdigit).count();
        return Err(unusable(format!(
            "a cluster secret is {wanted} hex digits on one line (e.g. from `openssl rand -hex 32`); \
             found {found} hex digits in {} characters",
            digits.chars().count()
        )));
    }
    let mut secret = [0u8; PSK_BYTES];
    for (index, byte) in secret.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&digits[2 * index..2 * index + 2], 16)
            .map_err(|_| unusable("not hex".to_owned()))?;
    }
    Ok(secret)
}

/// Checks `--id`: the handshake carries it, so it must fit [`NAME_BYTES_MAX`].
fn validate_id(id: &str) -> Result<(), NodeError> {
    let invalid = |reason: String| NodeError::InvalidId { id: id.to_owned(), reason };
    if id.is_empty() {
        return Err(invalid("it is empty".to_owned()));
    }
    if id.len() > NAME_BYTES_MAX {
        return Err(invalid(format!("{} bytes exceed the maximum of {NAME_BYTES_MAX}", id.len())));
    }
    if id.chars().any(|character| character.is_whitespace() || character.is_control()) {
        return Err(invalid("it contains whitespace or control characters".to_owned()));
    }
    Ok(())
}

/// Checks a `--connect` value's form; resolution waits for the dial, so a name that does not
/// resolve yet is retried like an unreachable peer.
fn validate_connect(address: &str) -> Result<(), NodeError> {
    let (_, host_port) = split_address(address, Transport::Tcp);
    let valid = host_port.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && !host.contains("://") && port.parse::<u16>().is_ok_and(|port| port != 0)
    });
    if valid {
        Ok(())
    } else {
        let reason = "expected HOST:PORT, quic://HOST:PORT or tcp://HOST:PORT".to_owned();
        Err(NodeError::InvalidAddress { flag: "--connect", address: address.to_owned(), reason })
    }
}

/// `ferry-node-ID` in the system's temp directory, with unusual characters replaced.
fn default_data_directory(id: &str) -> PathBuf {
    let safe: String = id
        .chars()
        .map(
            |character| {
                if character.is_ascii_alphanumeric() || "-_.".contains(character) { character } else { '_' }
            },
        )
        .collect();
    std::env::temp_dir().join(format!("ferry-node-{safe}"))
}

/// A ChaCha20 stream seeded from the OS: the node's only source of randomness.
fn os_seeded_rng() -> Result<ChaCha20Rng, NodeError> {
    let mut seed = [0; 32];
    OsRng.try_fill_bytes(&mut seed).map_err(|error| NodeError::Resource {
        what: "os randomness",
        source: io::Error::other(error.to_string()),
    })?;
    Ok(ChaCha20Rng::from_seed(seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_connect_addresses_are_checked() {
        assert!(validate_id("node-1").is_ok());
        assert_eq!(
            validate_id("").map_err(|error| error.to_string()),
            Err("invalid node id \"\": it is empty".to_owned())
        );
        assert_eq!(
            validate_id("a b").map_err(|error| error.to_string()),
            Err("invalid node id \"a b\": it contains whitespace or control characters".to_owned())
        );
        assert!(validate_connect("localhost:7001").is_ok());
        assert!(validate_connect("[::1]:7001").is_ok());
        assert!(validate_connect("quic://[::1]:7001").is_ok());
        assert!(validate_connect("tcp://localhost:7001").is_ok());
        for bad in ["7001", "quic://7001", "quic://:7001", "udp://host:7001"] {
            assert_eq!(
                validate_connect(bad).map_err(|error| error.to_string()),
                Err(format!(
                    "invalid --connect address {bad:?}: expected HOST:PORT, quic://HOST:PORT or tcp://HOST:PORT"
                ))
            );
        }
        assert_eq!(default_data_directory("a/b"), std::env::temp_dir().join("ferry-node-a_b"));
    }
}
