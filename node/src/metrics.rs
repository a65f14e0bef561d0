//! `ferry node --metrics ADDR`: an HTTP endpoint serving the node's counters in the
//! Prometheus text format (`GET /metrics`, version 0.0.4) and its state as JSON
//! (`GET /status`). HTTP is tiny_http's, JSON serde_json's.
//!
//! The server thread never touches the node: each request becomes an [`Input::Metrics`] or
//! [`Input::Status`] for the event loop, which answers with a `Metrics` reading or a
//! `Status` (`readings`). A reading waits at most [`ANSWER_TIMEOUT`]; requests are served one at a time.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc::{self, SyncSender};
use std::time::Duration;

use serde::Serialize;

use crate::error::NodeError;
use crate::input::Input;
use crate::log::Logger;

/// Longest wait for the event loop's answer before a request gets 503.
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// Binds `address` and starts the thread serving `/metrics` and `/status` from `inputs`.
/// Returns the bound address.
///
/// # Errors
/// [`NodeError::Listen`] or [`NodeError::Resource`].
pub(crate) fn spawn(
    address: SocketAddr,
    address_text: &str,
    inputs: SyncSender<Input>,
    logger: Logger,
) -> Result<SocketAddr, NodeError> {
    let listen_error = |source| NodeError::Listen { address: address_text.to_owned(), source };
    let listener = TcpListener::bind(address).map_err(listen_error)?;
    let local = listener.local_addr().map_err(listen_error)?;
    let server = tiny_http::Server::from_listener(listener, None)
        .map_err(|error| NodeError::Resource { what: "metrics server", source: io::Error::other(error) })?;
    std::thread::Builder::new()
        .name("ferry-metrics".to_owned())
        .spawn(move || serve(&server, &inputs, &logger))
        .map_err(|source| NodeError::Resource { what: "metrics thread", source })?;
    Ok(local)
}

fn serve(server: &tiny_http::Server, inputs: &SyncSender<Input>, logger: &Logger) {
    for request in server.incoming_requests() {
        let path = request.url().split('?').next().unwrap_or_default().to_owned();
        let (status, content_type, body) = match (request.method(), path.as_str()) {
            (tiny_http::Method::Get, "/metrics") => match ask(inputs, |reply| Input::Metrics { reply }) {
                Some(metrics) => (200, "text/plain; version=0.0.4; charset=utf-8", metrics.render()),
                None => unavailable(),
            },
            (tiny_http::Method::Get, "/status") => match ask(inputs, |reply| Input::Status { reply }) {
                Some(status) => (200, "application/json", to_json(&status)),
                None => unavailable(),
            },
            (_, "/metrics" | "/status") => (405, "application/json", error_json("method not allowed")),
            _ => (404, "application/json", error_json("not found")),
        };
        let header = tiny_http::Header::from_bytes("Content-Type", content_type)
            .expect("constant ascii headers are valid");
        let response = tiny_http::Response::from_string(body).with_status_code(status).with_header(header);
        if let Err(error) = request.respond(response) {
            logger.debug(format_args!("cannot answer {path}: {}", crate::error::describe_io(&error)));
        }
    }
}

/// Sends the event loop a request and waits for its answer, at most [`ANSWER_TIMEOUT`].
fn ask<T>(inputs: &SyncSender<Input>, request: impl FnOnce(SyncSender<T>) -> Input) -> Option<T> {
    let (reply, answer) = mpsc::sync_channel(1);
    inputs.send(request(reply)).ok()?;
    answer.recv_timeout(ANSWER_TIMEOUT).ok()
}

fn unavailable() -> (u16, &'static str, String) {
    (503, "application/json", error_json("the node did not answer"))
}

fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("strings, integers and booleans always serialize")
}

fn error_json(message: &str) -> String {
    to_json(&serde_json::json!({ "error": message }))
}
