//! Connections of the real node, and TCP's part of them: the listener thread, dial threads,
//! and one reader and one writer thread per TCP connection (QUIC's are in `quic`).
//!
//! Threads here only move bytes and report to the runtime's input channel; they never touch
//! the protocol node. A connection's writer drains a bounded queue, so a peer that stops
//! reading fills the queue and is dropped instead of stalling the event loop.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use ferry_protocol::LinkId;

use crate::dialer::TargetKey;
use crate::input::Input;
use crate::log::Logger;
use crate::quic::QuicLink;

/// Frames queued toward one peer, at most; a peer that lets the queue fill is dropped.
pub(crate) const FRAMES_QUEUED_MAX: usize = 4096;
/// Bytes read from a socket at a time.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// Bytes a writer gathers from its queue into one write.
const WRITE_BATCH_BYTES_MAX: usize = 256 * 1024;
/// How long one dial may take.
pub(crate) const DIAL_TIMEOUT: Duration = Duration::from_secs(3);
/// A write blocked this long means the peer is gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a closing connection, or one at shutdown, may take to write what is queued (the
/// Close that says why); at shutdown, with a little slack, how long all of them may take.
pub(crate) const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause after a failed accept (such as too many open files) before the next.
const ACCEPT_RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Why a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendError {
    /// [`FRAMES_QUEUED_MAX`] frames are waiting.
    QueueFull,
}

/// The runtime's side of one connection, TCP or QUIC.
#[derive(Debug)]
pub(crate) struct Connection {
    /// What carries the frames.
    pub(crate) pipe: Pipe,
    /// The peer's socket address.
    pub(crate) address: SocketAddr,
    /// The dial target this connection serves, when this side dialed.
    pub(crate) target: Option<TargetKey>,
    /// When the connection opened or its session last ended: the handshake deadline counts
    /// from here.
    pub(crate) opened_at_ns: u64,
    /// The transport below the session is up: a TCP connection from the start, a QUIC one
    /// once QUIC's handshake completed. A dial that closes before is a failed dial.
    pub(crate) transport_ready: bool,
    /// The peer's name while a session is established.
    pub(crate) peer_name: Option<String>,
    /// Frames rejected while no session was established.
    pub(crate) rejections_count: u32,
    /// Why the protocol asked to close, kept for the log line.
    pub(crate) close_reason: Option<String>,
    /// Shut down, waiting for the reader (TCP) or the endpoint (QUIC) to report the close.
    pub(crate) closing: bool,
}

/// What carries a connection's frames.
#[derive(Debug)]
pub(crate) enum Pipe {
    /// A TCP connection with its own reader and writer threads.
    Tcp(TcpPipe),
    /// A connection of the node's QUIC endpoint, driven by the event loop.
    Quic(QuicLink),
}

/// A TCP connection's socket, queue and writer thread.
#[derive(Debug)]
pub(crate) struct TcpPipe {
    stream: TcpStream,
    frames: SyncSender<Bytes>,
    /// The writer thread, handed out by [`TcpPipe::finish`].
    writer: JoinHandle<()>,
}

impl Connection {
    /// A connection on `pipe`, just opened; `transport_ready` as the field says.
    pub(crate) fn new(
        pipe: Pipe,
        address: SocketAddr,
        target: Option<TargetKey>,
        now_ns: u64,
        transport_ready: bool,
    ) -> Self {
        Self {
            transport_ready,
            pipe,
            address,
            target,
            opened_at_ns: now_ns,
            peer_name: None,
            rejections_count: 0,
            close_reason: None,
            closing: false,
        }
    }
}

impl TcpPipe {
    /// Starts the reader and writer threads of `stream`, reporting to `inputs` as `link`.
    ///
    /// # Errors
    /// When the socket cannot be configured or a thread cannot start.
    pub(crate) fn open(link: LinkId, stream: TcpStream, inputs: SyncSender<Input>) -> io::Result<Self> {
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        let reader = stream.try_clone()?;
        let writer = stream.try_clone()?;
        let (frames, queued) = mpsc::sync_channel(FRAMES_QUEUED_MAX);
        let writer = std::thread::Builder::new()
            .name(format!("ferry-write-{link}"))
            .spawn(move || write_frames(writer, &queued))?;
        let spawned = std::thread::Builder::new()
            .name(format!("ferry-read-{link}"))
            .spawn(move || read_stream(link, reader, &inputs));
        if let Err(error) = spawned {
            // The writer ends once `frames` drops with this function's error return.
            let _ = stream.shutdown(Shutdown::Both);
            return Err(error);
        }
        Ok(Self { stream, frames, writer })
    }

    /// Queues `frame` for the writer.
    ///
    /// # Errors
    /// [`SendError::QueueFull`] when the peer is not keeping up.
    pub(crate) fn send(&self, frame: Bytes) -> Result<(), SendError> {
        match self.frames.try_send(frame) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(SendError::QueueFull),
            // The writer stopped on a write error; the reader reports the close.
            Err(TrySendError::Disconnected(_)) => Ok(()),
        }
    }

    /// Stops reading at once, so nothing more from the peer is processed, and lets the
    /// writer send what is queued (the Close that says why) within [`CLOSE_FLUSH_TIMEOUT`].
    /// The reader then reports `Input::Closed`, the runtime drops this connection and with it
    /// the queue's sender, and the writer, once the queue is empty, shuts the socket.
    pub(crate) fn shutdown(&mut self) {
        if self.stream.set_write_timeout(Some(CLOSE_FLUSH_TIMEOUT)).is_err() {
            let _ = self.stream.shutdown(Shutdown::Both);
            return;
        }
        let _ = self.stream.shutdown(Shutdown::Read);
    }

    /// Lets the writer send what is queued, each write waiting at most `timeout` for the
    /// peer, then close the sending side, so the peer reads every queued frame and then the
    /// end of the stream. Returns the writer thread, to wait for before the process exits.
    pub(crate) fn finish(self, timeout: Duration) -> JoinHandle<()> {
        let _ = self.stream.set_write_timeout(Some(timeout));
        // The queue's sender drops here: the writer ends once the queue is empty.
        self.writer
    }
}

/// Reads until end of stream or an error, then reports the close.
fn read_stream(link: LinkId, mut stream: TcpStream, inputs: &SyncSender<Input>) {
    let mut buffer = vec![0; READ_BUFFER_BYTES];
    let reason = loop {
        match stream.read(&mut buffer) {
            Ok(0) => break "connection closed by peer".to_owned(),
            Ok(length) => {
                let bytes = buffer[..length].to_vec();
                if inputs.send(Input::Received { link, bytes }).is_err() {
                    return;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => break crate::error::describe_io(&error),
        }
    };
    let _ = inputs.send(Input::Closed { link, reason });
}

/// Writes queued frames, gathering what is already queued into one write.
fn write_frames(mut stream: TcpStream, queued: &Receiver<Bytes>) {
    let mut batch = Vec::new();
    while let Ok(first) = queued.recv() {
        batch.clear();
        batch.extend_from_slice(&first);
        while batch.len() < WRITE_BATCH_BYTES_MAX {
            match queued.try_recv() {
                Ok(frame) => batch.extend_from_slice(&frame),
                Err(_) => break,
            }
        }
        if stream.write_all(&batch).is_err() {
            // The reader sees the shutdown and reports the close.
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
    }
    // The runtime let go of the queue: everything queued was written, so the peer may now
    // read the end of the stream.
    let _ = stream.shutdown(Shutdown::Write);
}

/// The listening socket's thread, which a stopping node closes: [`stop`](Self::stop).
#[derive(Debug)]
pub(crate) struct Listener {
    /// A handle on the same socket, to shut it from the runtime's thread.
    socket: TcpListener,
    stopping: Arc<AtomicBool>,
    #[cfg(test)]
    thread: JoinHandle<()>,
}

impl Listener {
    /// Stops accepting: new connections are refused from now on, and the thread ends.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        // On Linux, shutting a listening socket makes the blocked accept() return at once
        // and the kernel refuse new connections; elsewhere the thread ends at its next
        // accept and drops the socket then.
        let _ = socket2::SockRef::from(&self.socket).shutdown(Shutdown::Both);
    }

    /// Whether the thread has ended.
    #[cfg(test)]
    fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

/// Starts the thread accepting connections on `listener`; each is reported as
/// `Input::Accepted`, until [`Listener::stop`].
///
/// # Errors
/// When the socket cannot be shared or the thread cannot start.
pub(crate) fn spawn_listener(
    listener: TcpListener,
    inputs: SyncSender<Input>,
    logger: Logger,
) -> io::Result<Listener> {
    let socket = listener.try_clone()?;
    let stopping = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stopping);
    let thread = std::thread::Builder::new().name("ferry-listen".to_owned()).spawn(move || {
        for accepted in listener.incoming() {
            if stopped.load(Ordering::SeqCst) {
                return;
            }
            match accepted.and_then(|stream| Ok((stream.peer_addr()?, stream))) {
                Ok((address, stream)) => {
                    if inputs.send(Input::Accepted { stream, address }).is_err() {
                        return;
                    }
                }
                Err(error) => {
                    logger.debug(format_args!("accept failed: {}", crate::error::describe_io(&error)));
                    std::thread::sleep(ACCEPT_RETRY_PAUSE);
                }
            }
        }
    })?;
    #[cfg(not(test))]
    drop(thread);
    Ok(Listener {
        socket,
        stopping,
        #[cfg(test)]
        thread,
    })
}

/// Starts a thread dialing `address` for `key`; it reports `Input::Dialed`.
///
/// # Errors
/// When the thread cannot start.
pub(crate) fn spawn_dial(key: TargetKey, address: String, inputs: SyncSender<Input>) -> io::Result<()> {
    std::thread::Builder::new().name("ferry-dial".to_owned()).spawn(move || {
        let result = dial(&address);
        let _ = inputs.send(Input::Dialed { key, result });
    })?;
    Ok(())
}

/// Starts a thread resolving `address` for a QUIC dial of `key`; it reports `Input::Resolved`.
///
/// # Errors
/// When the thread cannot start.
pub(crate) fn spawn_resolve(key: TargetKey, address: String, inputs: SyncSender<Input>) -> io::Result<()> {
    std::thread::Builder::new().name("ferry-resolve".to_owned()).spawn(move || {
        let result = address.to_socket_addrs().map_err(|error| crate::error::describe_io(&error)).and_then(
            |mut resolved| resolved.next().ok_or_else(|| format!("{address} resolves to no address")),
        );
        let _ = inputs.send(Input::Resolved { key, result });
    })?;
    Ok(())
}

/// Connects to the first address `address` resolves to that answers.
fn dial(address: &str) -> Result<(TcpStream, SocketAddr), String> {
    let resolved = address.to_socket_addrs().map_err(|error| crate::error::describe_io(&error))?;
    let mut last_error = format!("{address} resolves to no address");
    for candidate in resolved {
        match TcpStream::connect_timeout(&candidate, DIAL_TIMEOUT) {
            Ok(stream) => return Ok((stream, candidate)),
            Err(error) => last_error = crate::error::describe_io(&error),
        }
    }
    Err(last_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_listener_refuses_connections_and_its_thread_ends() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("loopback binds");
        let address = listener.local_addr().expect("bound");
        let (inputs, received) = mpsc::sync_channel(8);
        let handle = spawn_listener(listener, inputs, Logger::new("test", false)).expect("thread");
        let _first = TcpStream::connect(address).expect("accepting");
        assert!(matches!(received.recv(), Ok(Input::Accepted { .. })));
        handle.stop();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !handle.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(handle.is_finished(), "the accept thread ended");
        drop(handle);
        let refused = TcpStream::connect(address).map(|_| ()).map_err(|error| error.kind());
        assert_eq!(refused, Err(io::ErrorKind::ConnectionRefused));
        assert!(received.try_recv().is_err(), "nothing accepted after the stop");
    }
}
