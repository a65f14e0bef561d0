//! Registry bootstrap: the `ferry registry` HTTP server, and the node's client that registers
//! itself and fetches the peers to dial.
//!
//! The server keeps `node_id → (host, tcp_port)` in memory and forgets a registration not
//! renewed within [`REGISTRATION_TTL`]. HTTP is tiny_http's and minreq's, JSON serde_json's:
//! this module only decides what the requests and answers mean.
//!
//! API: `POST /register` with `{"host", "tcp_port", "node_id"}` (an empty or unspecified
//! host means the address the request came from) answers 204; `GET /peers` answers
//! `{"peers": [{"host", "tcp_port", "node_id"}, ...]}` ordered by node id.
//!
//! Public for examples and other tools: the client side ([`BootstrapUrl`], [`register`],
//! [`fetch`], [`PeerRecord`]) is what `ferry node --bootstrap` runs;
//! [`spawn_registry`](crate::spawn_registry) serves a registry on a thread
//! (`cargo run --example registry_bootstrap` shows both).

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::arguments::{RegistryArguments, resolve_address};
use crate::discovery::{peer_address, validate_node_id};
use crate::error::{NodeError, describe_io};
use crate::input::Input;
use crate::log::Logger;

/// A registration not renewed within this long is dropped.
pub const REGISTRATION_TTL: Duration = Duration::from_secs(30);
/// Interval between two register-and-fetch rounds of a node.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(2);
/// Most registrations held; new node ids beyond it are refused with 503.
pub(crate) const REGISTRATIONS_MAX: usize = 1024;
/// Largest request body the server reads.
pub(crate) const REQUEST_BODY_BYTES_MAX: usize = 4096;
/// Largest `GET /peers` body the client reads.
pub const PEERS_RESPONSE_BYTES_MAX: usize = 1 << 20;
/// Seconds one client request may take.
const REQUEST_TIMEOUT_SECONDS: u64 = 5;

const _: () = assert!(REFRESH_INTERVAL.as_secs() * 3 < REGISTRATION_TTL.as_secs());

/// One node as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRecord {
    /// The node's IP address.
    pub host: String,
    /// Its TCP port.
    pub tcp_port: u16,
    /// Its name.
    pub node_id: String,
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
    #[error("{url} answered status {status}")]
    Status {
        /// The URL requested.
        url: String,
        /// The status answered.
        status: u16,
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

/// A checked `--bootstrap` URL: `http://HOST:PORT` with no trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapUrl(String);

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
        Ok(Self(url.trim_end_matches('/').to_owned()))
    }

    /// The URL, without a trailing slash.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn join(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
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
}

#[derive(Debug, Clone)]
struct Registration {
    host: String,
    tcp_port: u16,
    renewed_at: Instant,
}

/// The registry's state: live registrations by node id.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    registrations: BTreeMap<String, Registration>,
}

impl Registry {
    /// Answers `request` at time `now`: the status and a JSON body (empty for 204).
    pub(crate) fn handle(&mut self, request: &RegistryRequest, now: Instant) -> (u16, String) {
        self.registrations
            .retain(|_, registration| now.duration_since(registration.renewed_at) < REGISTRATION_TTL);
        match (request.method.as_str(), request.path.as_str()) {
            ("POST", "/register") => self.register(request, now),
            ("GET", "/peers") => {
                let peers = self
                    .registrations
                    .iter()
                    .map(|(node_id, registration)| PeerRecord {
                        host: registration.host.clone(),
                        tcp_port: registration.tcp_port,
                        node_id: node_id.clone(),
                    })
                    .collect();
                (200, to_json(&PeerList { peers }))
            }
            (_, "/register" | "/peers") => (405, error_json("method not allowed")),
            _ => (404, error_json("not found")),
        }
    }

    fn register(&mut self, request: &RegistryRequest, now: Instant) -> (u16, String) {
        let Some(body) = &request.body else {
            return (413, error_json(&format!("body exceeds {REQUEST_BODY_BYTES_MAX} bytes")));
        };
        let record: PeerRecord = match serde_json::from_slice(body) {
            Ok(record) => record,
            Err(error) => return (400, error_json(&format!("invalid registration: {error}"))),
        };
        let unspecified = IpAddr::from([0, 0, 0, 0]);
        let source = request.remote.unwrap_or(unspecified);
        let address = validate_node_id(&record.node_id)
            .and_then(|()| peer_address(&record.host, record.tcp_port, source));
        let address = match address {
            Ok(address) if !address.ip().is_unspecified() => address,
            Ok(_) => {
                return (400, error_json("invalid registration: no host given and the sender is unknown"));
            }
            Err(error) => return (400, error_json(&format!("invalid registration: {error}"))),
        };
        if !self.registrations.contains_key(&record.node_id) && self.registrations.len() >= REGISTRATIONS_MAX
        {
            return (503, error_json(&format!("registry holds its maximum of {REGISTRATIONS_MAX} nodes")));
        }
        let registration =
            Registration { host: address.ip().to_string(), tcp_port: address.port(), renewed_at: now };
        self.registrations.insert(record.node_id, registration);
        (204, String::new())
    }
}

fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("records of strings and integers always serialize")
}

fn error_json(message: &str) -> String {
    to_json(&serde_json::json!({ "error": message }))
}

/// Runs `ferry registry` until the process is stopped.
///
/// # Errors
/// [`NodeError::InvalidAddress`] or [`NodeError::Listen`] when it cannot listen.
pub(crate) fn serve(arguments: &RegistryArguments) -> Result<i32, NodeError> {
    let (server, _, logger) = bind(arguments)?;
    serve_requests(&server, &logger);
    Ok(0)
}

/// Binds the registry's listening socket and logs its address.
///
/// # Errors
/// [`NodeError::InvalidAddress`], [`NodeError::Listen`] or [`NodeError::Registry`].
pub(crate) fn bind(
    arguments: &RegistryArguments,
) -> Result<(tiny_http::Server, SocketAddr, Logger), NodeError> {
    let logger = Logger::new("ferry registry", arguments.verbose);
    let address = resolve_address("--listen", &arguments.listen)?;
    let listener = TcpListener::bind(address)
        .map_err(|source| NodeError::Listen { address: arguments.listen.clone(), source })?;
    let local = listener
        .local_addr()
        .map_err(|source| NodeError::Listen { address: arguments.listen.clone(), source })?;
    let server = tiny_http::Server::from_listener(listener, None)
        .map_err(|error| NodeError::Registry { reason: error.to_string() })?;
    logger.info(format_args!("listening on {local}"));
    Ok((server, local, logger))
}

/// Answers `server`'s requests until it stops.
pub(crate) fn serve_requests(server: &tiny_http::Server, logger: &Logger) {
    let mut registry = Registry::default();
    for mut request in server.incoming_requests() {
        let mut body = Vec::new();
        let read = request.as_reader().take(REQUEST_BODY_BYTES_MAX as u64 + 1).read_to_end(&mut body);
        let path = request.url().split('?').next().unwrap_or_default().to_owned();
        let view = RegistryRequest {
            method: request.method().as_str().to_owned(),
            path,
            body: (read.is_ok() && body.len() <= REQUEST_BODY_BYTES_MAX).then_some(body),
            remote: request.remote_addr().map(SocketAddr::ip),
        };
        let (status, text) = registry.handle(&view, Instant::now());
        logger.debug(format_args!("{} {} from {:?}: {status}", view.method, view.path, view.remote));
        let mut response = tiny_http::Response::from_string(text).with_status_code(status);
        if status != 204 {
            let header = tiny_http::Header::from_bytes("Content-Type", "application/json")
                .expect("a constant ascii header is valid");
            response = response.with_header(header);
        }
        if let Err(error) = request.respond(response) {
            logger.debug(format_args!("cannot answer {}: {}", view.path, describe_io(&error)));
        }
    }
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
                        logger.info(format_args!("registry {} reachable again", url.0));
                    }
                    failures_count = 0;
                    for peer in peers.into_iter().filter(|peer| peer.node_id != record.node_id) {
                        let Ok(address) =
                            peer_address(&peer.host, peer.tcp_port, IpAddr::from([127, 0, 0, 1]))
                        else {
                            logger.debug(format_args!("ignored registry record {peer:?}"));
                            continue;
                        };
                        let input = Input::Learned { name: peer.node_id, address, via: "registry" };
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
    let url = url.join("/register");
    let response = minreq::post(&url)
        .with_header("Content-Type", "application/json")
        .with_body(to_json(record))
        .with_timeout(REQUEST_TIMEOUT_SECONDS)
        .send_lazy()
        .map_err(|error| RegistryError::Request { url: url.clone(), reason: error.to_string() })?;
    match response.status_code {
        200 | 204 => Ok(()),
        status => Err(RegistryError::Status { url, status }),
    }
}

/// `GET /peers`, reading at most [`PEERS_RESPONSE_BYTES_MAX`]: every live registration,
/// ordered by node id.
///
/// # Errors
/// A [`RegistryError`] when the request fails or the answer is not a peer list.
pub fn fetch(url: &BootstrapUrl) -> Result<Vec<PeerRecord>, RegistryError> {
    let url = url.join("/peers");
    let request_error = |reason: String| RegistryError::Request { url: url.clone(), reason };
    let response = minreq::get(&url)
        .with_timeout(REQUEST_TIMEOUT_SECONDS)
        .send_lazy()
        .map_err(|error| request_error(error.to_string()))?;
    if response.status_code != 200 {
        return Err(RegistryError::Status { url, status: response.status_code });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str, body: &str) -> RegistryRequest {
        RegistryRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            body: Some(body.as_bytes().to_vec()),
            remote: Some(IpAddr::from([127, 0, 0, 9])),
        }
    }

    #[test]
    fn registers_lists_and_expires() {
        let mut registry = Registry::default();
        let start = Instant::now();
        let body = r#"{"host":"127.0.0.1","tcp_port":7001,"node_id":"b"}"#;
        assert_eq!(registry.handle(&request("POST", "/register", body), start), (204, String::new()));
        let body = r#"{"host":"0.0.0.0","tcp_port":7002,"node_id":"a"}"#;
        assert_eq!(registry.handle(&request("POST", "/register", body), start), (204, String::new()));
        let body = r#"{"host":"","tcp_port":7003,"node_id":"c"}"#;
        let later = start + REGISTRATION_TTL / 2;
        assert_eq!(registry.handle(&request("POST", "/register", body), later), (204, String::new()));
        assert_eq!(
            registry.handle(&request("GET", "/peers", ""), later),
            (
                200,
                concat!(
                    r#"{"peers":[{"host":"127.0.0.9","tcp_port":7002,"node_id":"a"},"#,
                    r#"{"host":"127.0.0.1","tcp_port":7001,"node_id":"b"},"#,
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
        let mut registry = Registry::default();
        let now = Instant::now();
        assert_eq!(
            registry.handle(&request("GET", "/nope", ""), now),
            (404, r#"{"error":"not found"}"#.to_owned())
        );
        assert_eq!(
            registry.handle(&request("DELETE", "/peers", ""), now),
            (405, r#"{"error":"method not allowed"}"#.to_owned())
        );
        let (status, text) = registry.handle(&request("POST", "/register", "{nope"), now);
        assert_eq!(status, 400);
        assert!(text.starts_with(r#"{"error":"invalid registration: key must be a string"#), "{text}");
        let body = r#"{"host":"127.0.0.1","tcp_port":0,"node_id":"a"}"#;
        assert_eq!(
            registry.handle(&request("POST", "/register", body), now),
            (400, r#"{"error":"invalid registration: tcp port 0 is not a listening port"}"#.to_owned())
        );
        let body = r#"{"host":"127.0.0.1","tcp_port":1,"node_id":""}"#;
        assert_eq!(
            registry.handle(&request("POST", "/register", body), now),
            (400, r#"{"error":"invalid registration: node id of 0 bytes is not within 1..=255"}"#.to_owned())
        );
        let mut oversized = request("POST", "/register", "");
        oversized.body = None;
        assert_eq!(
            registry.handle(&oversized, now),
            (413, r#"{"error":"body exceeds 4096 bytes"}"#.to_owned())
        );
        assert_eq!(registry.handle(&request("GET", "/peers", ""), now), (200, r#"{"peers":[]}"#.to_owned()));
    }

    #[test]
    fn registrations_are_bounded() {
        let mut registry = Registry::default();
        let now = Instant::now();
        for index in 0..REGISTRATIONS_MAX {
            let body = format!(r#"{{"host":"127.0.0.1","tcp_port":1,"node_id":"n{index}"}}"#);
            assert_eq!(registry.handle(&request("POST", "/register", &body), now).0, 204);
        }
        let body = r#"{"host":"127.0.0.1","tcp_port":1,"node_id":"extra"}"#;
        assert_eq!(registry.handle(&request("POST", "/register", body), now).0, 503);
        let body = r#"{"host":"127.0.0.1","tcp_port":2,"node_id":"n0"}"#;
        assert_eq!(registry.handle(&request("POST", "/register", body), now).0, 204, "renewals still pass");
    }

    #[test]
    fn bootstrap_urls_are_checked() {
        assert_eq!(
            BootstrapUrl::parse("http://127.0.0.1:7000/").map(|url| url.0).map_err(|error| error.to_string()),
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
