//! QUIC for the real node: one UDP socket, a reader thread that hands its datagrams to the
//! event loop, and the sans-IO [`QuicEndpoint`] the event loop drives with its clock.
//!
//! Unlike TCP, where each connection has its own reader and writer threads, every QUIC
//! connection lives in the event loop's thread: datagrams arrive as `Input::Datagram`,
//! timers run from the loop's wait, and datagrams leave with a non-blocking `send_to`.

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use ferry_protocol::LinkId;
use ferry_quic::{QuicEndpoint, QuicError};
pub(crate) use ferry_quic::{QuicEvent, QuicLink, SendError};

use crate::input::Input;
use crate::log::Logger;

/// Bytes of the largest datagram read (more than QUIC ever sends).
const DATAGRAM_BUFFER_BYTES: usize = 64 * 1024;
/// How often a blocked reader looks whether the node stopped.
const READ_POLL: Duration = Duration::from_millis(500);

/// The node's QUIC socket and connections.
#[derive(Debug)]
pub(crate) struct QuicTransport {
    endpoint: QuicEndpoint,
    socket: UdpSocket,
    /// The runtime's link of each QUIC link.
    pub(crate) links: BTreeMap<QuicLink, LinkId>,
    stopping: Arc<AtomicBool>,
    /// Nanoseconds of the runtime's clock at `epoch`.
    epoch_ns: u64,
    /// Datagrams the socket refused to send (a full buffer); QUIC retransmits what matters.
    pub(crate) send_failures: u64,
}

impl QuicTransport {
    /// Starts the endpoint on the bound `socket` and its reader thread. With `accept`,
    /// peers may dial in.
    ///
    /// # Errors
    /// When the socket cannot be configured, TLS cannot be set up, or the thread cannot
    /// start.
    pub(crate) fn start(
        socket: UdpSocket,
        accept: bool,
        epoch: Instant,
        epoch_ns: u64,
        inputs: SyncSender<Input>,
        logger: Logger,
    ) -> io::Result<Self> {
        let endpoint = QuicEndpoint::new(epoch, accept)
            .map_err(|error: QuicError| io::Error::other(error.to_string()))?;
        let reader = socket.try_clone()?;
        reader.set_read_timeout(Some(READ_POLL))?;
        socket.set_nonblocking(true)?;
        let stopping = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stopping);
        std::thread::Builder::new().name("ferry-quic-read".to_owned()).spawn(move || {
            let mut buffer = vec![0; DATAGRAM_BUFFER_BYTES];
            while !stopped.load(Ordering::SeqCst) {
                match reader.recv_from(&mut buffer) {
                    Ok((length, from)) => {
                        let bytes = buffer[..length].to_vec();
                        if inputs.send(Input::Datagram { from, bytes }).is_err() {
                            return;
                        }
                    }
                    Err(error)
                        if matches!(
                            error.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                        ) => {}
                    // An ICMP error about an earlier datagram (a port nobody listens on):
                    // QUIC's own timers notice the silence.
                    Err(error) => {
                        logger.debug(format_args!("quic socket: {}", crate::error::describe_io(&error)))
                    }
                }
            }
        })?;
        Ok(Self { endpoint, socket, links: BTreeMap::new(), stopping, epoch_ns, send_failures: 0 })
    }

    fn ns(&self, now_ns: u64) -> u64 {
        now_ns.saturating_sub(self.epoch_ns)
    }

    pub(crate) fn handle_datagram(&mut self, now_ns: u64, from: SocketAddr, bytes: &[u8]) {
        self.endpoint.handle_datagram(self.ns(now_ns), from, bytes);
    }

    pub(crate) fn connect(&mut self, now_ns: u64, remote: SocketAddr) -> Result<QuicLink, QuicError> {
        self.endpoint.connect(self.ns(now_ns), remote)
    }

    pub(crate) fn send(&mut self, link: QuicLink, bytes: &[u8]) -> Result<(), SendError> {
        self.endpoint.send(link, bytes)
    }

    pub(crate) fn close(&mut self, now_ns: u64, link: QuicLink) {
        self.endpoint.close(self.ns(now_ns), link);
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.endpoint.is_idle()
    }

    /// The next deadline, on the runtime's clock.
    pub(crate) fn poll_timeout(&mut self) -> Option<u64> {
        self.endpoint.poll_timeout().map(|deadline| deadline.saturating_add(self.epoch_ns))
    }

    pub(crate) fn handle_timeout(&mut self, now_ns: u64) {
        self.endpoint.handle_timeout(self.ns(now_ns));
    }

    pub(crate) fn poll_event(&mut self) -> Option<QuicEvent> {
        self.endpoint.poll_event()
    }

    /// Sends every datagram the endpoint has ready.
    pub(crate) fn flush(&mut self, now_ns: u64) {
        let now = self.ns(now_ns);
        while let Some(datagram) = self.endpoint.poll_transmit(now) {
            if self.socket.send_to(&datagram.bytes, datagram.destination).is_err() {
                self.send_failures += 1;
            }
        }
    }

    /// Stops the reader thread (within [`READ_POLL`]).
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }
}

impl Drop for QuicTransport {
    fn drop(&mut self) {
        self.stop();
    }
}
