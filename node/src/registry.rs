//! Registry bootstrap: the `ferry registry` HTTP server, and the node's client that registers
//! itself and fetches the peers to dial.
//!
//! The server keeps `node_id → (host, tcp_port)` in memory and forgets a registration not
//! renewed within [`REGISTRATION_TTL`]. HTTP is tiny_http's and minreq's, JSON serde_json's:
//! this module only decides what the requests and answers mean.
//!
//! API: `POST /register` with `{"host", "tcp_port", "node_id"}` answers 204; `GET /peers`
//! answers `{"peers": [{"host", "tcp_port", "node_id"}, ...]}` ordered by node id. A
//! registration is checked before it is kept:
//! - with `--token-file`, every request must carry `Authorization: Bearer TOKEN` (401);
//! - the node id follows [`validate_registry_name`] and the port is not 0 (400);
//! - the host is the address the request came from: the body's host must be empty,
//!   unspecified or that address (400). A request from a `--trusted-proxy` comes from the
//!   last address of its `X-Forwarded-For` header;
//! - each source address makes at most [`ADDRESS_REQUESTS_BURST`] requests at once, registers
//!   at most [`ADDRESS_NEW_NAMES_BURST`] new names at once and holds at most
//!   [`REGISTRATIONS_PER_ADDRESS_MAX`] (429), and the registry holds at most
//!   [`REGISTRATIONS_MAX`] (503).
//!
//! So `/peers` serves only live records that passed these checks. A node takes them as hints
//! of whom to dial, never as trust: who a peer is, is decided by the Noise handshake and the
//! node's known or trusted keys (PROTOCOL.md 6.5).
//!
//! Public for examples and other tools: the client side ([`BootstrapUrl`], [`register`],
//! [`fetch`], [`PeerRecord`]) is what `ferry node --bootstrap` runs;
//! [`spawn_registry`](crate::spawn_registry) serves a registry on a thread
//! (`cargo run --example registry_bootstrap` shows both).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::admission::AddressBudget;
use crate::arguments::{RegistryArguments, resolve_address};
use crate::discovery::peer_address;
use crate::error::{NodeError, describe_io};
use crate::input::Input;
use crate::json::{error_json, to_json};
use crate::log::Logger;
use crate::transport::Transport;

/// A registration not renewed within this long is dropped.
pub const REGISTRATION_TTL: Duration = Duration::from_secs(30);
/// Interval between two register-and-fetch rounds of a node.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(2);
/// Most registrations held; new node ids beyond it are refused with 503.
pub const REGISTRATIONS_MAX: usize = 1024;
/// Largest request body the server reads.
pub(crate) const REQUEST_BODY_BYTES_MAX: usize = 4096;
/// Largest `GET /peers` body the client reads.
pub const PEERS_RESPONSE_BYTES_MAX: usize = 1 << 20;
/// Seconds one client request may take.
const REQUEST_TIMEOUT_SECONDS: u64 = 5;
/// Longest node id a registry accepts.
pub const REGISTRY_NAME_BYTES_MAX: usize = 64;
/// Shortest bearer token accepted, in characters.
pub const TOKEN_CHARS_MIN: usize = 16;
/// Longest bearer token accepted, in characters.
pub const TOKEN_CHARS_MAX: usize = 256;
/// Requests one source address may make at once; then one more per [`ADDRESS_REQUEST_REFILL`].
pub const ADDRESS_REQUESTS_BURST: u32 = 64;
/// Time that earns a source address one more request.
pub const ADDRESS_REQUEST_REFILL: Duration = Duration::from_millis(50);
/// New names one source address may register at once; then one more per
/// [`ADDRESS_NEW_NAME_REFILL`].
pub const ADDRESS_NEW_NAMES_BURST: u32 = 16;
/// Time that earns a source address one more new name.
pub const ADDRESS_NEW_NAME_REFILL: Duration = Duration::from_secs(1);
/// Live registrations made from one source address.
pub const REGISTRATIONS_PER_ADDRESS_MAX: usize = 64;

const _: () = assert!(REFRESH_INTERVAL.as_secs() * 3 < REGISTRATION_TTL.as_secs());

/// One node as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRecord {
    /// The node's IP address.
    pub host: String,
    /// Its port (TCP or UDP, as `transport` says; the name predates QUIC).
    pub tcp_port: u16,
    /// Its name.
    pub node_id: String,
    /// `tcp` or `quic`; left out for TCP.
    #[serde(default = "crate::transport::default_name", skip_serializing_if = "crate::transport::is_tcp")]
    pub transport: String,
}

/// The body of `GET /peers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PeerList {
    /// Every live registration.
    pub(crate) peers: Vec<PeerRecord>,
}

/// Why a registry round failed, on the client side.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegistryError {
    /// The request did not complete.
    #[error("request to {url} failed: {reason}")]
    Request {
        /// The URL requested.
        url: String,
        /// Why it failed.
        reason: String,
    },
    /// The registry answered with an unexpected status.
    #[error("{url} answered status {status}{}", if .reason.is_empty() { String::new() } else { format!(": {}", .reason) })]
    Status {
        /// The URL requested.
        url: String,
        /// The status answered.
        status: u16,
        /// The registry's `error` text, when it gave one (untrusted: escape it to print).
        reason: String,
    },
    /// The answer is not a peer list.
    #[error("{url} answered an invalid peer list: {reason}")]
    Malformed {
        /// The URL requested.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

/// A registry's bearer token: printable ASCII without spaces, [`TOKEN_CHARS_MIN`] to
/// [`TOKEN_CHARS_MAX`] characters. It never appears in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryToken(String);

impl std::fmt::Debug for RegistryToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("RegistryToken(..)")
    }
}

impl RegistryToken {
    /// Checks `token`.
    ///
    /// # Errors
    /// What is wrong with it, as a sentence.
    pub fn new(token: &str) -> Result<Self, String> {
        let length = token.chars().count();
        if !(TOKEN_CHARS_MIN..=TOKEN_CHARS_MAX).contains(&length) {
            return Err(format!(
                "a token has {TOKEN_CHARS_MIN} to {TOKEN_CHARS_MAX} characters, this one {length}"
            ));
        }
        if !token.chars().all(|character| character.is_ascii_graphic()) {
            return Err("a token is printable ASCII without spaces".to_owned());
        }
        Ok(Self(token.to_owned()))
    }

    /// Reads the token from the first line of `path` (surrounding whitespace ignored).
    ///
    /// # Errors
    /// [`NodeError::Token`] when the file cannot be read or its first line is not a token.
    pub fn read(path: &std::path::Path) -> Result<Self, NodeError> {
        let unusable = |reason: String| NodeError::Token { path: path.to_owned(), reason };
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(TOKEN_FILE_BYTES_MAX).read_to_string(&mut text))
            .map_err(|error| unusable(describe_io(&error)))?;
        Self::new(text.lines().next().unwrap_or_default().trim()).map_err(unusable)
    }

    /// Whether `authorization` (an `Authorization` header's value) is `Bearer` and this
    /// token, compared in constant time.
    fn authorizes(&self, authorization: Option<&str>) -> bool {
        use subtle::ConstantTimeEq;
        let given = authorization.and_then(|value| value.strip_prefix("Bearer ")).unwrap_or_default();
        bool::from(given.as_bytes().ct_eq(self.0.as_bytes()))
    }
}

/// Most bytes read of a token file.
const TOKEN_FILE_BYTES_MAX: u64 = 4096;

/// A checked `--bootstrap` URL, `http://HOST:PORT` with no trailing slash, and the bearer
/// token its requests carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapUrl {
    url: String,
    token: Option<RegistryToken>,
}

impl BootstrapUrl {
    /// Checks `url`.
    ///
    /// # Errors
    /// [`NodeError::InvalidBootstrap`] for anything but a plain `http://` URL.
    pub fn parse(url: &str) -> Result<Self, NodeError> {
        let invalid =
            |reason: &str| NodeError::InvalidBootstrap { url: url.to_owned(), reason: reason.to_owned() };
        if url.starts_with("https://") {
            return Err(invalid("https is not supported (this build has no tls); use http://"));
        }
        let Some(rest) = url.strip_prefix("http://") else {
            return Err(invalid("expected http://HOST:PORT"));
        };
        if rest.trim_end_matches('/').is_empty() || url.contains(char::is_whitespace) {
            return Err(invalid("expected http://HOST:PORT"));
        }
        Ok(Self { url: url.trim_end_matches('/').to_owned(), token: None })
    }

    /// The same URL, its requests carrying `Authorization: Bearer TOKEN`.
    #[must_use]
    pub fn with_token(self, token: RegistryToken) -> Self {
        Self { token: Some(token), ..self }
    }

    /// The URL, without a trailing slash.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.url
    }

    fn join(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    fn authorize(&self, request: minreq::Request) -> minreq::Request {
        match &self.token {
            Some(token) => request.with_header("Authorization", format!("Bearer {}", token.0)),
            None => request,
        }
    }
}

/// Checks a node id for a registry: 1 to [`REGISTRY_NAME_BYTES_MAX`] bytes of ASCII letters,
/// digits, `.`, `_` and `-`, starting with a letter or a digit. Stricter than a node name
/// (PROTOCOL.md 6.3): what a registry serves ends up in every node's logs and dial lists.
///
/// # Errors
/// What is wrong, as a sentence.
pub fn validate_registry_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > REGISTRY_NAME_BYTES_MAX {
        return Err(format!("a name has 1 to {REGISTRY_NAME_BYTES_MAX} bytes, this one {}", name.len()));
    }
    let allowed = |byte: u8| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-');
    if !name.bytes().all(allowed) || !name.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(
            "a name is ASCII letters, digits, '.', '_' and '-', starting with a letter or digit".to_owned()
        );
    }
    Ok(())
}

/// A request as the registry sees it, taken apart from tiny_http for testing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RegistryRequest {
    /// `GET`, `POST`, ...
    pub(crate) method: String,
    /// The path, query removed.
    pub(crate) path: String,
    /// The body, or `None` when it exceeded [`REQUEST_BODY_BYTES_MAX`].
    pub(crate) body: Option<Vec<u8>>,
    /// Where the request came from.
    pub(crate) remote: Option<IpAddr>,
    /// The `Authorization` header.
    pub(crate) authorization: Option<String>,
    /// The `X-Forwarded-For` header.
    pub(crate) forwarded_for: Option<String>,
}

/// What a registry demands of requests: `--token-file` and `--trusted-proxy`.
#[derive(Debug, Clone, Default)]
pub(crate) struct RegistryPolicy {
    /// The bearer token every request must carry, if any.
    pub(crate) token: Option<RegistryToken>,
    /// Proxies whose `X-Forwarded-For` names the real source.
    pub(crate) trusted_proxies: BTreeSet<IpAddr>,
}

#[derive(Debug, Clone)]
struct Registration {
    host: IpAddr,
    tcp_port: u16,
    transport: String,
    renewed_at: Instant,
}

/// The registry's state: live registrations by node id, and each source address's budgets.
#[derive(Debug)]
pub(crate) struct Registry {
    policy: RegistryPolicy,
    registrations: BTreeMap<String, Registration>,
    /// The time budgets count from.
    started: Instant,
    requests: AddressBudget,
    new_names: AddressBudget,
}

/// A refusal: the status and the `error` text.
type Refusal = (u16, String);

impl Registry {
    /// An empty registry enforcing `policy`, its budgets counting from `started`.
    pub(crate) fn new(policy: RegistryPolicy, started: Instant) -> Self {
        let nanos = |duration: Duration| u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        Self {
            policy,
            registrations: BTreeMap::new(),
            started,
            requests: AddressBudget::new(ADDRESS_REQUESTS_BURST, nanos(ADDRESS_REQUEST_REFILL)),
            new_names: AddressBudget::new(ADDRESS_NEW_NAMES_BURST, nanos(ADDRESS_NEW_NAME_REFILL)),
        }
    }

    /// Answers `request` at time `now`: the status and a JSON body (empty for 204).
    pub(crate) fn handle(&mut self, request: &RegistryRequest, now: Instant) -> (u16, String) {
        match self.try_handle(request, now) {
            Ok(answer) => answer,
            Err((status, message)) => (status, error_json(&message)),
        }
    }

    fn try_handle(&mut self, request: &RegistryRequest, now: Instant) -> Result<(u16, String), Refusal> {
        self.registrations
            .retain(|_, registration| now.duration_since(registration.renewed_at) < REGISTRATION_TTL);
        let source = self.source(request)?;
        let now_ns = u64::try_from(now.duration_since(self.started).as_nanos()).unwrap_or(u64::MAX);
        // Budgets before the token: guessing tokens is rate-limited too.
        if let Some(source) = source
            && !self.requests.spend(source, now_ns)
        {
            return Err((429, "too many requests from this address".to_owned()));
        }
        if let Some(token) = &self.policy.token
            && !token.authorizes(request.authorization.as_deref())
        {
            return Err((401, "this registry wants Authorization: Bearer and its token".to_owned()));
        }
        match (request.method.as_str(), request.path.as_str()) {
            ("POST", "/register") => self.register(request, source, now_ns, now),
            ("GET", "/peers") => {
                let peers = self
                    .registrations
                    .iter()
                    .map(|(node_id, registration)| PeerRecord {
                        host: registration.host.to_string(),
                        tcp_port: registration.tcp_port,
                        node_id: node_id.clone(),
                        transport: registration.transport.clone(),
                    })
                    .collect();
                Ok((200, to_json(&PeerList { peers })))
            }
            (_, "/register" | "/peers") => Err((405, "method not allowed".to_owned())),
            _ => Err((404, "not found".to_owned())),
        }
    }

    /// Where `request` came from: its peer address, or for a trusted proxy the last address
    /// of its `X-Forwarded-For`; `None` when unknown.
    fn source(&self, request: &RegistryRequest) -> Result<Option<IpAddr>, Refusal> {
        let Some(remote) = request.remote else { return Ok(None) };
        if !self.policy.trusted_proxies.contains(&remote) {
            return Ok(Some(remote));
        }
        let forwarded = request.forwarded_for.as_deref().and_then(|header| header.rsplit(',').next());
        match forwarded.map(|address| address.trim().parse::<IpAddr>()) {
            Some(Ok(address)) => Ok(Some(address)),
            _ => Err((400, "a request from a trusted proxy needs an X-Forwarded-For address".to_owned())),
        }
    }

    fn register(
        &mut self,
        request: &RegistryRequest,
        source: Option<IpAddr>,
        now_ns: u64,
        now: Instant,
    ) -> Result<(u16, String), Refusal> {
        let invalid = |reason: String| (400, format!("invalid registration: {reason}"));
        let Some(body) = &request.body else {
            return Err((413, format!("body exceeds {REQUEST_BODY_BYTES_MAX} bytes")));
        };
        let record: PeerRecord = serde_json::from_slice(body).map_err(|error| invalid(error.to_string()))?;
        validate_registry_name(&record.node_id).map_err(|reason| invalid(format!("node id: {reason}")))?;
        if record.tcp_port == 0 {
            return Err(invalid("tcp port 0 is not a listening port".to_owned()));
        }
        let Some(source) = source else {
            return Err(invalid("the address this request came from is unknown".to_owned()));
        };
        if !record.host.is_empty() {
            let host: IpAddr = record
                .host
                .parse()
                .map_err(|_| invalid(format!("host {:?} is not an ip address", record.host)))?;
            if !host.is_unspecified() && host != source {
                return Err(invalid(format!(
                    "host {host} is not the address this request came from ({source}); \
                     leave it empty or register from that address"
                )));
            }
        }
        if !self.registrations.contains_key(&record.node_id) {
            if self.registrations.len() >= REGISTRATIONS_MAX {
                return Err((503, format!("registry holds its maximum of {REGISTRATIONS_MAX} nodes")));
            }
            let from_source = self.registrations.values().filter(|registration| registration.host == source);
            if from_source.count() >= REGISTRATIONS_PER_ADDRESS_MAX {
                return Err((
                    429,
                    format!("this address holds {REGISTRATIONS_PER_ADDRESS_MAX} registrations"),
                ));
            }
            if !self.new_names.spend(source, now_ns) {
                return Err((429, "too many new names from this address".to_owned()));
            }
        }
        let registration = Registration {
            host: source,
            tcp_port: record.tcp_port,
            transport: record.transport,
            renewed_at: now,
        };
        self.registrations.insert(record.node_id, registration);
        Ok((204, String::new()))
    }
}

/// Runs `ferry registry` until the process is stopped.
///
/// # Errors
/// A [`NodeError`] when it cannot read its token or listen.
pub(crate) fn serve(arguments: &RegistryArguments) -> Result<i32, NodeError> {
    bind(arguments)?.serve();
    Ok(0)
}

/// A registry whose socket is bound and whose policy is read, ready to serve.
pub(crate) struct BoundRegistry {
    server: tiny_http::Server,
    /// The address it serves on.
    pub(crate) local: SocketAddr,
    logger: Logger,
    policy: RegistryPolicy,
}

/// Reads the registry's token, binds its listening socket and logs its address.
///
/// # Errors
/// [`NodeError::Token`], [`NodeError::InvalidAddress`], [`NodeError::Listen`] or
/// [`NodeError::Registry`].
pub(crate) fn bind(arguments: &RegistryArguments) -> Result<BoundRegistry, NodeError> {
    let logger = Logger::new("ferry registry", arguments.verbose);
    let token = arguments.token_file.as_deref().map(RegistryToken::read).transpose()?;
    let address = resolve_address("--listen", &arguments.listen)?;
    let listener = TcpListener::bind(address)
        .map_err(|source| NodeError::Listen { address: arguments.listen.clone(), source })?;
    let local = listener
        .local_addr()
        .map_err(|source| NodeError::Listen { address: arguments.listen.clone(), source })?;
    let server = tiny_http::Server::from_listener(listener, None)
        .map_err(|error| NodeError::Registry { reason: error.to_string() })?;
    logger.info(format_args!("listening on {local}"));
    if token.is_none() {
        logger
            .info(format_args!("no --token-file: anyone who reaches this port can register and list peers"));
    }
    let policy =
        RegistryPolicy { token, trusted_proxies: arguments.trusted_proxies.iter().copied().collect() };
    Ok(BoundRegistry { server, local, logger, policy })
}

impl BoundRegistry {
    /// Answers requests until the server stops.
    pub(crate) fn serve(self) {
        let Self { server, logger, policy, .. } = self;
        let mut registry = Registry::new(policy, Instant::now());
        for mut request in server.incoming_requests() {
            let mut body = Vec::new();
            let read = request.as_reader().take(REQUEST_BODY_BYTES_MAX as u64 + 1).read_to_end(&mut body);
            let path = request.url().split('?').next().unwrap_or_default().to_owned();
            let view = RegistryRequest {
                method: request.method().as_str().to_owned(),
                path,
                body: (read.is_ok() && body.len() <= REQUEST_BODY_BYTES_MAX).then_some(body),
                remote: request.remote_addr().map(SocketAddr::ip),
                authorization: header(&request, "Authorization"),
                forwarded_for: header(&request, "X-Forwarded-For"),
            };
            let (status, text) = registry.handle(&view, Instant::now());
            logger.debug(format_args!("{} {} from {:?}: {status}", view.method, view.path, view.remote));
            let mut response = tiny_http::Response::from_string(text).with_status_code(status);
            let extra = match status {
                204 => None,
                401 => Some(("WWW-Authenticate", "Bearer realm=\"ferry\"")),
                429 => Some(("Retry-After", "1")),
                _ => None,
            };
            let headers = [(status != 204).then_some(("Content-Type", "application/json")), extra];
            for (name, value) in headers.into_iter().flatten() {
                let header =
                    tiny_http::Header::from_bytes(name, value).expect("constant ascii headers are valid");
                response = response.with_header(header);
            }
            if let Err(error) = request.respond(response) {
                logger.debug(format_args!("cannot answer {}: {}", view.path, describe_io(&error)));
            }
        }
    }
}

/// The value of `request`'s header `name`, if it has one.
fn header(request: &tiny_http::Request, name: &'static str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|header| header.field.equiv(name))
        .map(|header| header.value.as_str().to_owned())
}

/// Starts the thread that registers `record` with the registry at `url` every
/// [`REFRESH_INTERVAL`], fetches its peers and reports them as `Input::Learned`.
///
/// # Errors
/// When the thread cannot start.
pub(crate) fn spawn_client(
    url: BootstrapUrl,
    record: PeerRecord,
    inputs: SyncSender<Input>,
    logger: Logger,
) -> io::Result<()> {
    std::thread::Builder::new().name("ferry-registry".to_owned()).spawn(move || {
        let mut failures_count = 0u64;
        loop {
            match register(&url, &record).and_then(|()| fetch(&url)) {
                Ok(peers) => {
                    if failures_count > 0 {
                        logger.info(format_args!("registry {} reachable again", url.url));
                    }
                    failures_count = 0;
                    for peer in peers.into_iter().filter(|peer| peer.node_id != record.node_id) {
                        let Ok(address) =
                            peer_address(&peer.host, peer.tcp_port, IpAddr::from([127, 0, 0, 1]))
                        else {
                            logger.debug(format_args!("ignored registry record {peer:?}"));
                            continue;
                        };
                        let Some(transport) = Transport::from_name(&peer.transport) else {
                            logger.debug(format_args!("ignored registry record {peer:?}: unknown transport"));
                            continue;
                        };
                        let input =
                            Input::Learned { name: peer.node_id, address, transport, via: "registry" };
                        if inputs.send(input).is_err() {
                            return;
                        }
                    }
                }
                Err(error) => {
                    failures_count += 1;
                    // The first failure is worth a line; repeats only in verbose mode.
                    if failures_count == 1 {
                        logger.info(format_args!("registry unavailable, retrying: {error}"));
                    } else {
                        logger.debug(format_args!("registry still unavailable: {error}"));
                    }
                }
            }
            std::thread::sleep(REFRESH_INTERVAL);
        }
    })?;
    Ok(())
}

/// `POST /register`: registers (or renews) `record`.
///
/// # Errors
/// A [`RegistryError`] when the request fails or is refused.
pub fn register(url: &BootstrapUrl, record: &PeerRecord) -> Result<(), RegistryError> {
    let target = url.join("/register");
    let request = minreq::post(&target)
        .with_header("Content-Type", "application/json")
        .with_body(to_json(record))
        .with_timeout(REQUEST_TIMEOUT_SECONDS);
    let response = url
        .authorize(request)
        .send_lazy()
        .map_err(|error| RegistryError::Request { url: target.clone(), reason: error.to_string() })?;
    match response.status_code {
        200 | 204 => Ok(()),
        status => Err(RegistryError::Status { reason: refusal_reason(response), url: target, status }),
    }
}

/// `GET /peers`, reading at most [`PEERS_RESPONSE_BYTES_MAX`]: every live registration,
/// ordered by node id.
///
/// # Errors
/// A [`RegistryError`] when the request fails or the answer is not a peer list.
pub fn fetch(url: &BootstrapUrl) -> Result<Vec<PeerRecord>, RegistryError> {
    let request = minreq::get(url.join("/peers")).with_timeout(REQUEST_TIMEOUT_SECONDS);
    let response = url.authorize(request).send_lazy();
    let url = url.join("/peers");
    let request_error = |reason: String| RegistryError::Request { url: url.clone(), reason };
    let response = response.map_err(|error| request_error(error.to_string()))?;
    if response.status_code != 200 {
        let status = response.status_code;
        return Err(RegistryError::Status { reason: refusal_reason(response), url, status });
    }
    let mut body = Vec::new();
    response
        .take(PEERS_RESPONSE_BYTES_MAX as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|error| request_error(describe_io(&error)))?;
    if body.len() > PEERS_RESPONSE_BYTES_MAX {
        let reason = format!("longer than {PEERS_RESPONSE_BYTES_MAX} bytes");
        return Err(RegistryError::Malformed { url, reason });
    }
    let list: PeerList = serde_json::from_slice(&body)
        .map_err(|error| RegistryError::Malformed { url: url.clone(), reason: error.to_string() })?;
    Ok(list.peers)
}

/// The `error` text of a refusal's JSON body (at most [`REFUSAL_BYTES_MAX`] read), or "".
fn refusal_reason(response: minreq::ResponseLazy) -> String {
    let mut body = Vec::new();
    if response.take(REFUSAL_BYTES_MAX).read_to_end(&mut body).is_err() {
        return String::new();
    }
    serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|value| value.get("error").and_then(serde_json::Value::as_str).map(str::to_owned))
        .unwrap_or_default()
}

/// Most bytes of a refusal's body the client reads.
const REFUSAL_BYTES_MAX: u64 = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: [u8; 4] = [127, 0, 0, 9];

    fn request(method: &str, path: &str, body: &str) -> RegistryRequest {
        RegistryRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            body: Some(body.as_bytes().to_vec()),
            remote: Some(IpAddr::from(SOURCE)),
            authorization: None,
            forwarded_for: None,
        }
    }

    fn from(mut request: RegistryRequest, remote: [u8; 4]) -> RegistryRequest {
        request.remote = Some(IpAddr::from(remote));
        request
    }

    fn open_registry(now: Instant) -> Registry {
        Registry::new(RegistryPolicy::default(), now)
    }

    fn error(message: &str) -> String {
        serde_json::json!({ "error": message }).to_string()
    }

    #[test]
    fn registers_lists_and_expires() {
        let start = Instant::now();
        let mut registry = open_registry(start);
        let body = r#"{"host":"127.0.0.9","tcp_port":7001,"node_id":"b"}"#;
        assert_eq!(registry.handle(&request("POST", "/register", body), start), (204, String::new()));
        let body = r#"{"host":"0.0.0.0","tcp_port":7002,"node_id":"a"}"#;
        assert_eq!(registry.handle(&from(request("POST", "/register", body), [10, 0, 0, 2]), start).0, 204);
        let body = r#"{"host":"","tcp_port":7003,"node_id":"c"}"#;
        let later = start + REGISTRATION_TTL / 2;
        assert_eq!(registry.handle(&request("POST", "/register", body), later), (204, String::new()));
        assert_eq!(
            registry.handle(&request("GET", "/peers", ""), later),
            (
                200,
                concat!(
                    r#"{"peers":[{"host":"10.0.0.2","tcp_port":7002,"node_id":"a"},"#,
                    r#"{"host":"127.0.0.9","tcp_port":7001,"node_id":"b"},"#,
                    r#"{"host":"127.0.0.9","tcp_port":7003,"node_id":"c"}]}"#
                )
                .to_owned()
            )
        );
        assert_eq!(
            registry.handle(&request("GET", "/peers", ""), start + REGISTRATION_TTL),
            (200, r#"{"peers":[{"host":"127.0.0.9","tcp_port":7003,"node_id":"c"}]}"#.to_owned())
        );
    }

    #[test]
    fn refuses_bad_requests_with_exact_answers() {
        let now = Instant::now();
        let mut registry = open_registry(now);
        assert_eq!(registry.handle(&request("GET", "/nope", ""), now), (404, error("not found")));
        assert_eq!(
            registry.handle(&request("DELETE", "/peers", ""), now),
            (405, error("method not allowed"))
        );
        let (status, text) = registry.handle(&request("POST", "/register", "{nope"), now);
        assert_eq!(status, 400);
        assert!(text.starts_with(r#"{"error":"invalid registration: key must be a string"#), "{text}");
        let refused =
            |registry: &mut Registry, body: &str| registry.handle(&request("POST", "/register", body), now);
        assert_eq!(
            refused(&mut registry, r#"{"host":"","tcp_port":0,"node_id":"a"}"#),
            (400, error("invalid registration: tcp port 0 is not a listening port"))
        );
        assert_eq!(
            refused(&mut registry, r#"{"host":"","tcp_port":1,"node_id":""}"#),
            (400, error("invalid registration: node id: a name has 1 to 64 bytes, this one 0"))
        );
        // The issue's attack: a path-like name pointing every node at someone else's host.
        let names_rule = "invalid registration: node id: a name is ASCII letters, digits, '.', '_' and '-', \
                          starting with a letter or digit";
        assert_eq!(
            refused(&mut registry, r#"{"node_id":"../../x","host":"127.0.0.9","tcp_port":1}"#),
            (400, error(names_rule))
        );
        assert_eq!(
            refused(&mut registry, r#"{"node_id":"x","host":"8.8.8.8","tcp_port":1}"#),
            (
                400,
                error(
                    "invalid registration: host 8.8.8.8 is not the address this request came from (127.0.0.9); \
                     leave it empty or register from that address"
                )
            )
        );
        assert_eq!(
            refused(&mut registry, r#"{"node_id":"x","host":"example.org","tcp_port":1}"#),
            (400, error("invalid registration: host \"example.org\" is not an ip address"))
        );
        let mut oversized = request("POST", "/register", "");
        oversized.body = None;
        assert_eq!(registry.handle(&oversized, now), (413, error("body exceeds 4096 bytes")));
        assert_eq!(registry.handle(&request("GET", "/peers", ""), now), (200, r#"{"peers":[]}"#.to_owned()));
    }

    #[test]
    fn registry_names_are_plain_ascii() {
        for good in ["a", "node-1", "n0.lan", "A_b", &"x".repeat(REGISTRY_NAME_BYTES_MAX)] {
            assert_eq!(validate_registry_name(good), Ok(()), "{good:?}");
        }
        for bad in ["", "-a", ".a", "a b", "a/b", "é", "a\u{1b}", &"x".repeat(REGISTRY_NAME_BYTES_MAX + 1)] {
            assert!(validate_registry_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn registrations_are_bounded_in_all_and_per_address() {
        let now = Instant::now();
        let mut registry = open_registry(now);
        let register = |registry: &mut Registry, name: &str, remote: [u8; 4], at: Instant| {
            let body = format!(r#"{{"host":"","tcp_port":1,"node_id":"{name}"}}"#);
            registry.handle(&from(request("POST", "/register", &body), remote), at)
        };
        // One address: a burst of new names, then one per refill, up to its maximum.
        for index in 0..ADDRESS_NEW_NAMES_BURST {
            assert_eq!(register(&mut registry, &format!("s{index}"), SOURCE, now).0, 204);
        }
        assert_eq!(
            register(&mut registry, "one-more", SOURCE, now),
            (429, error("too many new names from this address"))
        );
        assert_eq!(register(&mut registry, "s0", SOURCE, now).0, 204, "renewals still pass");
        // Renewed every 10 s, as a node renews every few seconds, so none expires.
        let mut renewed: Vec<(String, Instant)> =
            (0..ADDRESS_NEW_NAMES_BURST).map(|index| (format!("s{index}"), now)).collect();
        let mut at = now;
        let renew = |registry: &mut Registry, renewed: &mut Vec<(String, Instant)>, at: Instant| {
            for (name, last) in renewed.iter_mut().filter(|(_, last)| at - *last >= Duration::from_secs(10)) {
                assert_eq!(register(registry, name, SOURCE, at).0, 204, "{name} renews");
                *last = at;
            }
        };
        for index in ADDRESS_NEW_NAMES_BURST as usize..REGISTRATIONS_PER_ADDRESS_MAX {
            at += ADDRESS_NEW_NAME_REFILL;
            renew(&mut registry, &mut renewed, at);
            assert_eq!(register(&mut registry, &format!("s{index}"), SOURCE, at).0, 204);
            renewed.push((format!("s{index}"), at));
        }
        at += ADDRESS_NEW_NAME_REFILL;
        renew(&mut registry, &mut renewed, at);
        assert_eq!(
            register(&mut registry, "one-more", SOURCE, at),
            (429, error("this address holds 64 registrations"))
        );
        // Many addresses: the registry's own maximum.
        let mut index = 0u32;
        while registry.registrations.len() < REGISTRATIONS_MAX {
            let [_, _, high, low] = index.to_be_bytes();
            assert_eq!(register(&mut registry, &format!("n{index}"), [10, 1, high, low], at).0, 204);
            index += 1;
        }
        assert_eq!(
            register(&mut registry, "extra", [10, 2, 0, 0], at),
            (503, error("registry holds its maximum of 1024 nodes"))
        );
        assert_eq!(register(&mut registry, "n0", [10, 1, 0, 0], at).0, 204, "renewals still pass");
    }

    #[test]
    fn requests_from_one_address_are_rate_limited() {
        let now = Instant::now();
        let mut registry = open_registry(now);
        let peers = request("GET", "/peers", "");
        let answered =
            (0..ADDRESS_REQUESTS_BURST * 2).filter(|_| registry.handle(&peers, now).0 == 200).count();
        assert_eq!(answered, ADDRESS_REQUESTS_BURST as usize);
        assert_eq!(registry.handle(&peers, now), (429, error("too many requests from this address")));
        assert_eq!(
            registry.handle(&from(peers.clone(), [10, 0, 0, 1]), now).0,
            200,
            "others are not affected"
        );
        assert_eq!(registry.handle(&peers, now + ADDRESS_REQUEST_REFILL).0, 200);
    }

    #[test]
    fn a_token_is_required_when_set_and_compared_whole() {
        let now = Instant::now();
        let token = RegistryToken::new("correct-horse-battery").expect("a token");
        let policy = RegistryPolicy { token: Some(token), trusted_proxies: BTreeSet::new() };
        let mut registry = Registry::new(policy, now);
        let body = r#"{"host":"","tcp_port":7001,"node_id":"b"}"#;
        let wants = (401, error("this registry wants Authorization: Bearer and its token"));
        for authorization in [
            None,
            Some("Bearer correct-horse-batter"),
            Some("correct-horse-battery"),
            Some("Bearer correct-horse-battery2"),
        ] {
            let mut request = request("POST", "/register", body);
            request.authorization = authorization.map(str::to_owned);
            assert_eq!(registry.handle(&request, now), wants, "{authorization:?}");
        }
        assert_eq!(registry.handle(&request("GET", "/peers", ""), now), wants, "listing needs it too");
        let mut request = request("POST", "/register", body);
        request.authorization = Some("Bearer correct-horse-battery".to_owned());
        assert_eq!(registry.handle(&request, now), (204, String::new()));
        assert_eq!(format!("{:?}", RegistryToken::new("correct-horse-battery")), "Ok(RegistryToken(..))");
        assert!(RegistryToken::new("short").is_err());
        assert!(RegistryToken::new("has a space in it ok").is_err());
    }

    #[test]
    fn a_trusted_proxy_names_the_source() {
        let now = Instant::now();
        let proxy = IpAddr::from([10, 9, 9, 9]);
        let policy = RegistryPolicy { token: None, trusted_proxies: BTreeSet::from([proxy]) };
        let mut registry = Registry::new(policy, now);
        let body = r#"{"host":"","tcp_port":7001,"node_id":"b"}"#;
        let mut forwarded = from(request("POST", "/register", body), [10, 9, 9, 9]);
        forwarded.forwarded_for = Some("1.2.3.4, 192.168.1.20".to_owned());
        assert_eq!(registry.handle(&forwarded, now), (204, String::new()));
        forwarded.forwarded_for = None;
        assert_eq!(
            registry.handle(&forwarded, now),
            (400, error("a request from a trusted proxy needs an X-Forwarded-For address"))
        );
        // Anyone else's X-Forwarded-For is ignored.
        let mut direct = request("POST", "/register", r#"{"host":"","tcp_port":7002,"node_id":"c"}"#);
        direct.forwarded_for = Some("8.8.8.8".to_owned());
        assert_eq!(registry.handle(&direct, now).0, 204);
        assert_eq!(
            registry.handle(&request("GET", "/peers", ""), now).1,
            r#"{"peers":[{"host":"192.168.1.20","tcp_port":7001,"node_id":"b"},{"host":"127.0.0.9","tcp_port":7002,"node_id":"c"}]}"#
        );
    }

    #[test]
    fn bootstrap_urls_are_checked() {
        assert_eq!(
            BootstrapUrl::parse("http://127.0.0.1:7000/")
                .map(|url| url.url)
                .map_err(|error| error.to_string()),
            Ok("http://127.0.0.1:7000".to_owned())
        );
        assert_eq!(
            BootstrapUrl::parse("https://x").map_err(|error| error.to_string()),
            Err("invalid --bootstrap url \"https://x\": https is not supported (this build has no tls); use http://".to_owned())
        );
        assert_eq!(
            BootstrapUrl::parse("ftp://x").map_err(|error| error.to_string()),
            Err("invalid --bootstrap url \"ftp://x\": expected http://HOST:PORT".to_owned())
        );
    }
}
