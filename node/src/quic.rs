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
    /// peers may dial in. `identity` is the node's static secret, from which the endpoint's
    /// stateless-reset and connection-id keys derive, so that after a restart its peers'
    /// old connections end at their next packet.
    ///
    /// # Errors
    /// When the socket cannot be configured, TLS cannot be set up, or the thread cannot
    /// start.
    pub(crate) fn start(
        socket: UdpSocket,
        accept: bool,
        epoch: Instant,
        epoch_ns: u64,
        identity: &[u8],
        inputs: SyncSender<Input>,
        logger: Logger,
    ) -> io::Result<Self> {
        let endpoint = QuicEndpoint::new(epoch, accept, identity)
            .map_err(|error: QuicError| io::Error::other(error.to_string()))?;
        // One socket, two handles: the reader blocks (with a timeout, to notice a stop);
        // sends never block (`send`). O_NONBLOCK would be shared by both handles, so it is
        // not set: each send asks not to wait instead.
        let reader = socket.try_clone()?;
        reader.set_read_timeout(Some(READ_POLL))?;
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
            if send_without_waiting(&self.socket, &datagram.bytes, datagram.destination).is_err() {
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

/// Sends one datagram; a full send buffer drops it (QUIC retransmits what matters) rather
/// than stall the event loop.
#[cfg(unix)]
fn send_without_waiting(socket: &UdpSocket, bytes: &[u8], destination: SocketAddr) -> io::Result<usize> {
    socket2::SockRef::from(socket).send_to_with_flags(bytes, &destination.into(), libc::MSG_DONTWAIT)
}

/// Sends one datagram (elsewhere than on Unix, a send may wait for buffer space).
#[cfg(not(unix))]
fn send_without_waiting(socket: &UdpSocket, bytes: &[u8], destination: SocketAddr) -> io::Result<usize> {
    socket.send_to(bytes, destination)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    /// The reader and the sender share one file description: an O_NONBLOCK set for sends
    /// would make the reader spin on `recv_from` and an idle node burn a core.
    #[test]
    fn the_socket_stays_blocking_so_an_idle_reader_sleeps() {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("loopback binds");
        let (inputs, _received) = std::sync::mpsc::sync_channel(8);
        let logger = Logger::new("test", false);
        let transport = QuicTransport::start(socket, true, Instant::now(), 0, b"secret", inputs, logger)
            .expect("the endpoint starts");
        // SAFETY: F_GETFL on a descriptor this test owns reads its flags and changes nothing.
        let flags = unsafe { libc::fcntl(transport.socket.as_raw_fd(), libc::F_GETFL) };
        assert!(flags >= 0, "fcntl works");
        assert_eq!(flags & libc::O_NONBLOCK, 0, "the shared socket must stay blocking");
        transport.stop();
    }
}
