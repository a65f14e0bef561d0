//! The node's HTTP endpoints. HTTP is tiny_http's, JSON serde_json's.
//!
//! - `--metrics ADDR`: `GET /metrics`, the node's counters in the Prometheus text format
//!   (version 0.0.4), and `GET /status`, its state as JSON. Read-only.
//! - `--control ADDR`: `POST /command` with one command line of the stdin language as its
//!   body, answered with that command's one answer line; `GET /status` too. It writes:
//!   whoever reaches it can put and delete, so bind it to a private address.
//!
//! The server thread never touches the node: each request becomes an [`Input`] for the event
//! loop, whose answer it waits for at most [`ANSWER_TIMEOUT`] (a command, which may wait for
//! an fsync or a pong, [`COMMAND_ANSWER_TIMEOUT`]). Requests are served one at a time, so
//! one server has at most one request in the event loop.

use std::io::{self, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc::{self, SyncSender};
use std::time::Duration;

use crate::commands::{self, Line};
use crate::error::NodeError;
use crate::input::Input;
use crate::json::{error_json, to_json};
use crate::log::Logger;

/// Longest wait for the event loop's reading before a request gets 503.
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for a command's answer (its write made durable, its pong) before 504.
pub(crate) const COMMAND_ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Which endpoints a server serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Endpoints {
    /// `/metrics` and `/status`.
    pub(crate) metrics: bool,
    /// `/command` and `/status`.
    pub(crate) control: bool,
}

/// Binds `address` and starts the thread serving `endpoints` from `inputs`. Returns the
/// bound address.
///
/// # Errors
/// [`NodeError::Listen`] or [`NodeError::Resource`].
pub(crate) fn spawn(
    address: SocketAddr,
    address_text: &str,
    endpoints: Endpoints,
    inputs: SyncSender<Input>,
    logger: Logger,
) -> Result<SocketAddr, NodeError> {
    let listen_error = |source| NodeError::Listen { address: address_text.to_owned(), source };
    let listener = TcpListener::bind(address).map_err(listen_error)?;
    let local = listener.local_addr().map_err(listen_error)?;
    let server = tiny_http::Server::from_listener(listener, None)
        .map_err(|error| NodeError::Resource { what: "http server", source: io::Error::other(error) })?;
    std::thread::Builder::new()
        .name("ferry-http".to_owned())
        .spawn(move || serve(&server, endpoints, &inputs, &logger))
        .map_err(|source| NodeError::Resource { what: "http thread", source })?;
    Ok(local)
}

fn serve(server: &tiny_http::Server, endpoints: Endpoints, inputs: &SyncSender<Input>, logger: &Logger) {
    let json = "application/json";
    let text = "text/plain; charset=utf-8";
    for mut request in server.incoming_requests() {
        let path = request.url().split('?').next().unwrap_or_default().to_owned();
        let method = request.method().clone();
        let (status, content_type, body) = match (&method, path.as_str()) {
            (tiny_http::Method::Get, "/metrics") if endpoints.metrics => {
                match ask(inputs, ANSWER_TIMEOUT, |reply| Input::Metrics { reply }) {
                    Some(metrics) => (200, "text/plain; version=0.0.4; charset=utf-8", metrics.render()),
                    None => unavailable(),
                }
            }
            (tiny_http::Method::Get, "/status") => {
                match ask(inputs, ANSWER_TIMEOUT, |reply| Input::Status { reply }) {
                    Some(status) => (200, json, to_json(&status)),
                    None => unavailable(),
                }
            }
            (tiny_http::Method::Post, "/command") if endpoints.control => match command_line(&mut request) {
                Ok(line) => match ask(inputs, COMMAND_ANSWER_TIMEOUT, |reply| Input::Control { line, reply })
                {
                    Some(answer) => (200, text, format!("{answer}\n")),
                    None => (504, json, error_json("no answer in time; a write may still become durable")),
                },
                Err(message) => (400, json, error_json(message)),
            },
            (_, "/metrics") if endpoints.metrics => (405, json, error_json("method not allowed")),
            (_, "/command") if endpoints.control => (405, json, error_json("method not allowed")),
            (_, "/status") => (405, json, error_json("method not allowed")),
            _ => (404, json, error_json("not found")),
        };
        let header = tiny_http::Header::from_bytes("Content-Type", content_type)
            .expect("constant ascii headers are valid");
        let response = tiny_http::Response::from_string(body).with_status_code(status).with_header(header);
        if let Err(error) = request.respond(response) {
            logger.debug(format_args!("cannot answer {path}: {}", crate::error::describe_io(&error)));
        }
    }
}

/// The one command line a `/command` request carries (a final newline allowed), read as
/// stdin reads a line: at most `COMMAND_BYTES_MAX` bytes, UTF-8 (or refused).
fn command_line(request: &mut tiny_http::Request) -> Result<Line, &'static str> {
    let mut reader = BufReader::new(request.as_reader());
    let mut buffer = Vec::new();
    let line = commands::read_line(&mut reader, &mut buffer).map_err(|_| "the body could not be read")?;
    let line = line.ok_or("the body is empty: send one command line")?;
    let mut rest = [0u8; 1];
    match reader.read(&mut rest) {
        Ok(0) => Ok(line),
        Ok(_) => Err("one command line per request"),
        Err(_) => Err("the body could not be read"),
    }
}

/// Sends the event loop a request and waits for its answer, at most `timeout`.
fn ask<T>(
    inputs: &SyncSender<Input>,
    timeout: Duration,
    request: impl FnOnce(SyncSender<T>) -> Input,
) -> Option<T> {
    let (reply, answer) = mpsc::sync_channel(1);
    inputs.send(request(reply)).ok()?;
    answer.recv_timeout(timeout).ok()
}

fn unavailable() -> (u16, &'static str, String) {
    (503, "application/json", error_json("the node did not answer"))
}
