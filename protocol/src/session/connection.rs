//! [`Connection`]: one link's handshake and session, as a sans-IO state machine.
//!
//! It owns the retransmission and timeout rules of the handshake, the choice between
//! competing attempts, and the hand-over from an old session to a new one. Cryptography lives
//! in `handshake` and `transport`; this module never reads a clock (time is `now_ns`), never
//! draws OS randomness (the caller passes an RNG) and never touches a socket (bytes to send
//! are polled out).
//!
//! Retransmission, so that losing any single handshake message recovers:
//! - the initiator resends Hello every `handshake_retransmit_ns` until HelloAck arrives
//!   (covers a lost Hello, and a lost HelloAck via the next rule);
//! - the responder answers a repeated Hello with its HelloAck again, and also resends HelloAck
//!   on its own timer until HelloFinish arrives (covers a lost HelloAck and a lost HelloFinish);
//! - the initiator answers a repeat of the HelloAck that completed its session with its
//!   HelloFinish again, until the first authenticated message from the responder proves the
//!   responder has the session too.
//!
//! An attempt that has not finished `handshake_timeout_ns` after it began fails with
//! [`HandshakeError::Timeout`]; an established session is never touched by a failing attempt.
//!
//! With a cluster secret ([`SessionConfig::psk`], PROTOCOL.md 6.10) the initiator cannot know
//! from HelloFinish alone that the responder holds the same secret: only the responder can
//! tell, by reading it. So the initiator keeps the new session aside, unused and unreported,
//! until the first envelope from the responder authenticates under it (the responder sends
//! its OutboxPull at once); a refusal (a plaintext Close) or `handshake_timeout_ns` without
//! that envelope ends the attempt instead.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use rand_core::RngCore;

use super::dispatch::{EnvelopeClass, dispatch};
use super::handshake::{Initiation, Response};
use super::transport::Transport;
use super::{HandshakeError, PeerInfo, Role, SessionConfig, SessionError};
use crate::envelope::{Envelope, Flags, Header, MessageType};
use crate::message::{CloseCode, Message, decode_payload};

/// Most envelopes [`Connection::poll_transmit`] holds; beyond it the oldest is dropped and
/// counted. A caller that drains after every input never sees more than two.
pub const TRANSMITS_QUEUED_MAX: usize = 16;
/// Most events [`Connection::poll_event`] holds; beyond it the oldest is dropped and counted.
pub const EVENTS_QUEUED_MAX: usize = 16;

/// msg_id of every plaintext handshake and Close envelope: nothing answers them by id.
const HANDSHAKE_MSG_ID: u32 = 0;

/// Most ended sessions [`Connection::take_ended_sessions`] holds; beyond it the oldest is
/// forgotten. A caller that drains after every input never sees more than two.
pub const ENDED_SESSIONS_MAX: usize = 16;

/// Which session accepted an application message, and under which counter: what an audit
/// needs to tell a replay from a new envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// The session's name: the first 8 bytes of its handshake hash, big-endian, the same at
    /// both ends of the link.
    pub session_id: u64,
    /// The envelope's nonce counter.
    pub counter: u64,
}

/// Something the caller should know about the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEvent {
    /// The first session on this connection is ready: `send` now encrypts. With a cluster
    /// secret, an initiator reports it only once the responder's first envelope confirmed
    /// the session (PROTOCOL.md 6.10).
    Established(PeerInfo),
    /// A new handshake finished while a session existed; the new session replaced it.
    Replaced {
        /// The peer as the old session knew it.
        previous: PeerInfo,
        /// The peer as the new session knows it.
        current: PeerInfo,
    },
    /// A handshake attempt ended without a session; any established session is untouched.
    /// Call [`Connection::start_handshake`] to try again.
    HandshakeFailed(HandshakeError),
    /// The peer ended the session with an authenticated Close; the session is gone.
    Closed {
        /// The peer's code.
        code: CloseCode,
        /// The peer's explanation.
        reason: String,
    },
}

/// The message an unfinished attempt retransmits, and its timers.
struct Retry {
    /// The complete envelope to resend.
    message: Bytes,
    /// When the attempt fails.
    deadline_ns: u64,
    /// When `message` is next resent.
    retransmit_at_ns: u64,
}

/// We sent Hello and wait for HelloAck.
struct Initiating {
    initiation: Initiation,
    /// The Noise bytes of our Hello, to recognise it reflected back at us.
    hello_noise: Bytes,
    retry: Retry,
}

/// We answered a Hello and wait for HelloFinish.
struct Responding {
    response: Response,
    /// The Noise bytes of the Hello we answered, to recognise its repeats.
    hello_noise: Bytes,
    retry: Retry,
}

/// With a cluster secret: we sent HelloFinish and wait for the first envelope the responder
/// sends under the new session, which proves it read HelloFinish with the same secret. The
/// session is not used or reported before.
struct Confirming {
    /// The session HelloFinish made, its origin [`Origin::Initiated`].
    session: Session,
    /// Only the deadline matters: HelloFinish is repeated in answer to a repeated HelloAck,
    /// never on a timer.
    retry: Retry,
}

enum Pending {
    Initiating(Initiating),
    Responding(Responding),
    /// Boxed: a whole session with its transport and replay window.
    Confirming(Box<Confirming>),
}

impl Pending {
    fn retry(&mut self) -> &mut Retry {
        match self {
            Self::Initiating(initiating) => &mut initiating.retry,
            Self::Responding(responding) => &mut responding.retry,
            Self::Confirming(confirming) => &mut confirming.retry,
        }
    }
}

/// How a session came about: what identifies repeats of its handshake messages.
enum Origin {
    /// We initiated. A repeat of `hello_ack_noise` means the responder lacks our HelloFinish;
    /// `hello_noise` is our own Hello, which we never answer.
    Initiated { hello_noise: Bytes, hello_ack_noise: Bytes, hello_finish: Bytes },
    /// We responded. Repeats of either message are stale.
    Responded { hello_noise: Bytes, hello_finish_noise: Bytes },
}

struct Session {
    transport: Transport,
    peer: PeerInfo,
    origin: Origin,
    /// True once any envelope authenticated under this session: the peer has it too.
    received_any: bool,
}

/// One link's secure session: the Noise XX handshake, then encryption of every envelope.
///
/// # Call order
/// 1. [`new`](Self::new). An Initiator queues Hello at once; a Responder waits for one.
/// 2. After every call that takes `now_ns`, and after [`new`](Self::new), drain
///    [`poll_transmit`](Self::poll_transmit) (send each envelope as one frame's contents) and
///    [`poll_event`](Self::poll_event) until both return `None`, then arm a timer for
///    [`poll_timeout`](Self::poll_timeout).
/// 3. Hand every received frame to [`handle_frame`](Self::handle_frame) (or a decoded one to
///    [`handle_envelope`](Self::handle_envelope)); an `Ok(Some((msg_id, message)))` is an
///    authenticated application message.
/// 4. When the timer fires, call [`handle_timeout`](Self::handle_timeout).
/// 5. Once [`ConnectionEvent::Established`] arrived, [`send`](Self::send) encrypts a message
///    and returns the envelope to send; it is not queued.
/// 6. On [`SessionError::NoSession`] or [`ConnectionEvent::HandshakeFailed`], call
///    [`start_handshake`](Self::start_handshake) (with a backoff of your choosing after a
///    failure).
///
/// Handshake and Close envelopes use msg_id 0. An established session keeps working while a
/// new handshake runs, and is replaced only when the new one finishes
/// ([`ConnectionEvent::Replaced`]).
pub struct Connection {
    config: Arc<SessionConfig>,
    role: Role,
    pending: Option<Pending>,
    session: Option<Session>,
    /// The replaced session's transport, kept to read envelopes still in flight under it
    /// until the first envelope authenticates under the new session.
    previous: Option<Transport>,
    /// The session and counter of the last application message returned.
    receipt: Option<Receipt>,
    /// Sessions discarded since the caller last asked, oldest first.
    ended_session_ids: Vec<u64>,
    transmits: VecDeque<Bytes>,
    events: VecDeque<ConnectionEvent>,
    transmits_dropped_count: u64,
    events_dropped_count: u64,
}

impl fmt::Debug for Connection {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Connection")
            .field("role", &self.role)
            .field("handshaking", &self.is_handshaking())
            .field("peer", &self.peer())
            .finish_non_exhaustive()
    }
}

fn plain_envelope(message_type: MessageType, payload: &[u8]) -> Bytes {
    Envelope::encode(&Header::plain(message_type, HANDSHAKE_MSG_ID), payload)
}

/// A Hello, HelloAck or HelloFinish envelope: plaintext, msg_id 0, and the PSK flag exactly
/// when the handshake uses a cluster secret.
fn handshake_envelope(config: &SessionConfig, message_type: MessageType, noise: &[u8]) -> Bytes {
    let flags = Flags::NONE.with_psk(config.psk.is_some());
    let header = Header { flags, ..Header::plain(message_type, HANDSHAKE_MSG_ID) };
    Envelope::encode(&header, noise)
}

/// The refusal of a handshake message whose PSK flag disagrees with our configuration, if it
/// does: the two ends cannot share a cluster secret.
fn psk_flag_refusal(
    config: &SessionConfig,
    message_type: MessageType,
    psk_flag: bool,
) -> Option<HandshakeError> {
    match (psk_flag, config.psk.is_some()) {
        (true, false) => Some(HandshakeError::PeerHasPsk { message_type }),
        (false, true) => Some(HandshakeError::PeerLacksPsk { message_type }),
        _ => None,
    }
}

/// The plaintext Close telling the peer why its handshake was refused, if the error has a code.
fn plain_close(error: &HandshakeError) -> Option<Bytes> {
    let code = error.close_code()?;
    let close = Message::Close { code, reason: error.to_string() };
    Some(plain_envelope(MessageType::Close, &close.payload_bytes()))
}

impl Connection {
    /// A connection for one link. An Initiator starts its handshake at once, drawing 32 bytes
    /// from `rng`.
    ///
    /// # Errors
    /// The first error [`SessionConfig::validate`] finds.
    pub fn new(
        config: Arc<SessionConfig>,
        role: Role,
        now_ns: u64,
        rng: &mut dyn RngCore,
    ) -> Result<Self, SessionError> {
        config.validate()?;
        let mut connection = Self {
            config,
            role,
            pending: None,
            session: None,
            previous: None,
            receipt: None,
            ended_session_ids: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            transmits_dropped_count: 0,
            events_dropped_count: 0,
        };
        if role == Role::Initiator {
            connection.start_handshake(now_ns, rng);
        }
        Ok(connection)
    }

    /// Starts a new handshake as its initiator, drawing 32 bytes from `rng`, whatever our
    /// role. Abandons any attempt under way; an established session keeps working until the
    /// new one replaces it.
    pub fn start_handshake(&mut self, now_ns: u64, rng: &mut dyn RngCore) {
        let (initiation, noise) = Initiation::start(&self.config, rng);
        let retry = self.retry(now_ns, handshake_envelope(&self.config, MessageType::Hello, &noise));
        self.pending = Some(Pending::Initiating(Initiating { initiation, hello_noise: noise, retry }));
    }

    /// Decodes a frame's contents as an envelope and handles it; see
    /// [`handle_envelope`](Self::handle_envelope).
    ///
    /// # Errors
    /// [`SessionError::Envelope`] for bytes that are not an envelope, else as
    /// [`handle_envelope`](Self::handle_envelope).
    pub fn handle_frame(
        &mut self,
        now_ns: u64,
        frame: Bytes,
        rng: &mut dyn RngCore,
    ) -> Result<Option<(u32, Message)>, SessionError> {
        let envelope = Envelope::decode(frame)?;
        self.handle_envelope(now_ns, envelope, rng)
    }

    /// Handles one received envelope. Returns `Some((msg_id, message))` for an authenticated
    /// application message, `None` when the envelope was handshake traffic or a harmless
    /// repeat. Draws 32 bytes from `rng` when a Hello starts a new responder attempt.
    ///
    /// # Errors
    /// The [`SessionError`] saying why the envelope was rejected. No rejected envelope changes
    /// the session's receive state. [`SessionError::Handshake`] errors that end an attempt
    /// also queue [`ConnectionEvent::HandshakeFailed`]; a [`HandshakeError::Noise`] error
    /// leaves any attempt as it was.
    pub fn handle_envelope(
        &mut self,
        now_ns: u64,
        envelope: Envelope,
        rng: &mut dyn RngCore,
    ) -> Result<Option<(u32, Message)>, SessionError> {
        self.receipt = None;
        let message_type = envelope.header.message_type;
        match dispatch(&envelope.header)? {
            EnvelopeClass::Handshake => {
                let psk_flag = envelope.header.flags.psk();
                let message = decode_payload(message_type, envelope.payload)
                    .map_err(|error| SessionError::Decode { message_type, error })?;
                // decode_payload returns the variant of the type it was given.
                match message {
                    Message::Hello { noise } => self.on_hello(now_ns, noise, psk_flag, rng)?,
                    Message::HelloAck { noise } => self.on_hello_ack(now_ns, noise, psk_flag)?,
                    Message::HelloFinish { noise } => self.on_hello_finish(noise, psk_flag)?,
                    _ => {}
                }
                Ok(None)
            }
            EnvelopeClass::HandshakeClose => {
                let message = decode_payload(message_type, envelope.payload)
                    .map_err(|error| SessionError::Decode { message_type, error })?;
                let Message::Close { code, reason } = message else { return Ok(None) };
                if self.pending.take().is_none() {
                    // Outside a handshake a Close must be authenticated.
                    return Err(SessionError::Unencrypted { message_type });
                }
                Err(self.fail(HandshakeError::PeerClosed { code, reason }, None))
            }
            EnvelopeClass::Application => self.on_encrypted(&envelope),
        }
    }

    /// Encrypts `message` under the established session; returns the envelope (a frame's
    /// contents) to send. Sending a Close ends the session.
    ///
    /// # Errors
    /// [`SessionError::NotApplication`] for handshake messages,
    /// [`SessionError::NotEstablished`] before a session exists, and
    /// [`SessionError::NonceExhausted`] when the session has used its last counter.
    pub fn send(&mut self, msg_id: u32, message: &Message) -> Result<Bytes, SessionError> {
        let message_type = message.message_type();
        if message_type.is_handshake() {
            return Err(SessionError::NotApplication { message_type });
        }
        let session = self.session.as_mut().ok_or(SessionError::NotEstablished)?;
        let bytes = session.transport.seal(msg_id, message)?;
        if message_type == MessageType::Close {
            self.end_session();
            self.discard_previous();
        }
        Ok(bytes)
    }

    /// The session and counter that authenticated the application message the last
    /// [`handle_envelope`](Self::handle_envelope) returned; `None` after any other outcome.
    #[must_use]
    pub fn last_receipt(&self) -> Option<Receipt> {
        self.receipt
    }

    /// The established session's name (the first 8 bytes of its handshake hash).
    #[must_use]
    pub fn session_id(&self) -> Option<u64> {
        self.session.as_ref().map(|session| session.transport.session_id())
    }

    /// The names of the sessions this connection can still read: the established one and
    /// the replaced one kept for envelopes in flight (PROTOCOL.md 7.5).
    pub fn session_ids(&self) -> impl Iterator<Item = u64> + '_ {
        let current = self.session.as_ref().map(|session| session.transport.session_id());
        current.into_iter().chain(self.previous.as_ref().map(Transport::session_id))
    }

    /// The names of the sessions discarded since the last call (by a Close, or once the
    /// replaced session's envelopes stopped being read), oldest first; at most
    /// [`ENDED_SESSIONS_MAX`].
    pub fn take_ended_sessions(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.ended_session_ids)
    }

    fn record_ended(&mut self, session_id: u64) {
        if self.ended_session_ids.len() >= ENDED_SESSIONS_MAX {
            self.ended_session_ids.remove(0);
        }
        self.ended_session_ids.push(session_id);
    }

    /// Forgets the established session.
    fn end_session(&mut self) {
        if let Some(session) = self.session.take() {
            self.record_ended(session.transport.session_id());
        }
    }

    /// Forgets the replaced session's receive key and window.
    fn discard_previous(&mut self) {
        if let Some(previous) = self.previous.take() {
            self.record_ended(previous.session_id());
        }
    }

    /// The next handshake message or handshake refusal (Close) to send, as a frame's contents.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmits.pop_front()
    }

    /// Whether an event not yet polled establishes a session: with a cluster secret, the
    /// envelope that confirms an initiator's session is accepted under the session it just
    /// established (PROTOCOL.md 6.10).
    #[must_use]
    pub fn establishment_pending(&self) -> bool {
        self.events
            .iter()
            .any(|event| matches!(event, ConnectionEvent::Established(_) | ConnectionEvent::Replaced { .. }))
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ConnectionEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        let retry = match self.pending.as_ref()? {
            Pending::Initiating(initiating) => &initiating.retry,
            Pending::Responding(responding) => &responding.retry,
            Pending::Confirming(confirming) => &confirming.retry,
        };
        Some(retry.deadline_ns.min(retry.retransmit_at_ns))
    }

    /// Fails an attempt past its deadline, or retransmits its last message when due.
    pub fn handle_timeout(&mut self, now_ns: u64) {
        let interval_ns = self.config.handshake_retransmit_ns;
        let Some(pending) = self.pending.as_mut() else { return };
        let retry = pending.retry();
        if now_ns >= retry.deadline_ns {
            let timeout_ns = self.config.handshake_timeout_ns;
            self.pending = None;
            self.push_event(ConnectionEvent::HandshakeFailed(HandshakeError::Timeout { timeout_ns }));
            return;
        }
        if now_ns >= retry.retransmit_at_ns {
            retry.retransmit_at_ns = now_ns.saturating_add(interval_ns);
            let message = retry.message.clone();
            self.push_transmit(message);
        }
    }

    /// True when a session exists and [`send`](Self::send) encrypts.
    #[must_use]
    pub fn is_established(&self) -> bool {
        self.session.is_some()
    }

    /// True while a handshake attempt is under way (with or without a session), including an
    /// initiator's wait for the responder to confirm a cluster-secret handshake.
    #[must_use]
    pub fn is_handshaking(&self) -> bool {
        self.pending.is_some()
    }

    /// The peer of the current session.
    #[must_use]
    pub fn peer(&self) -> Option<&PeerInfo> {
        self.session.as_ref().map(|session| &session.peer)
    }

    /// This end's role.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// Envelopes dropped because [`TRANSMITS_QUEUED_MAX`] were queued.
    #[must_use]
    pub fn transmits_dropped_count(&self) -> u64 {
        self.transmits_dropped_count
    }

    /// Events dropped because [`EVENTS_QUEUED_MAX`] were queued.
    #[must_use]
    pub fn events_dropped_count(&self) -> u64 {
        self.events_dropped_count
    }

    fn push_transmit(&mut self, bytes: Bytes) {
        if self.transmits.len() >= TRANSMITS_QUEUED_MAX {
            self.transmits.pop_front();
            self.transmits_dropped_count += 1;
        }
        self.transmits.push_back(bytes);
    }

    fn push_event(&mut self, event: ConnectionEvent) {
        if self.events.len() >= EVENTS_QUEUED_MAX {
            self.events.pop_front();
            self.events_dropped_count += 1;
        }
        self.events.push_back(event);
    }

    /// Queues the first send of `message` and returns the timers of a new attempt.
    fn retry(&mut self, now_ns: u64, message: Bytes) -> Retry {
        self.push_transmit(message.clone());
        Retry {
            message,
            deadline_ns: now_ns.saturating_add(self.config.handshake_timeout_ns),
            retransmit_at_ns: now_ns.saturating_add(self.config.handshake_retransmit_ns),
        }
    }

    /// Reports a failed attempt: queues `close` for the peer and the event; returns the error.
    fn fail(&mut self, error: HandshakeError, close: Option<Bytes>) -> SessionError {
        if let Some(close) = close {
            self.push_transmit(close);
        }
        self.push_event(ConnectionEvent::HandshakeFailed(error.clone()));
        SessionError::Handshake(error)
    }

    fn install(&mut self, session: Session) {
        let current = session.peer.clone();
        // Only one replaced session stays readable: an older one ends here.
        self.discard_previous();
        match self.session.replace(session) {
            Some(old) => {
                self.previous = Some(old.transport);
                self.push_event(ConnectionEvent::Replaced { previous: old.peer, current });
            }
            None => self.push_event(ConnectionEvent::Established(current)),
        }
    }

    fn on_hello(
        &mut self,
        now_ns: u64,
        noise: Bytes,
        psk_flag: bool,
        rng: &mut dyn RngCore,
    ) -> Result<(), SessionError> {
        match &self.session {
            Some(Session { origin: Origin::Responded { hello_noise, .. }, .. }) if *hello_noise == noise => {
                // A late copy of the Hello behind this session: the initiator already has our
                // HelloAck, since it sent the HelloFinish that completed the session.
                return Ok(());
            }
            Some(Session { origin: Origin::Initiated { hello_noise, .. }, .. }) if *hello_noise == noise => {
                // Our own Hello, reflected back at us.
                return Ok(());
            }
            _ => {}
        }
        match &self.pending {
            Some(Pending::Initiating(initiating)) if initiating.hello_noise == noise => {
                // Our own Hello, reflected back at us: answering it would abandon our attempt.
                return Ok(());
            }
            Some(Pending::Confirming(confirming)) if matches!(&confirming.session.origin, Origin::Initiated { hello_noise, .. } if *hello_noise == noise) =>
            {
                // Our own Hello again, reflected back while we wait for the confirmation.
                return Ok(());
            }
            Some(Pending::Responding(responding)) if responding.hello_noise == noise => {
                // The initiator repeats Hello because our HelloAck was lost: answer again.
                let message = responding.retry.message.clone();
                self.push_transmit(message);
                return Ok(());
            }
            Some(Pending::Initiating(_)) if self.role == Role::Initiator => {
                // Simultaneous initiation: the Responder yields and answers our Hello.
                return Ok(());
            }
            _ => {}
        }
        // Before any cryptography: a Hello that cannot share our cluster secret is refused.
        if let Some(error) = psk_flag_refusal(&self.config, MessageType::Hello, psk_flag) {
            let close = plain_close(&error);
            return Err(self.fail(error, close));
        }
        match Response::accept(&self.config, &noise, rng) {
            Ok((response, ack_noise)) => {
                let retry =
                    self.retry(now_ns, handshake_envelope(&self.config, MessageType::HelloAck, &ack_noise));
                self.pending = Some(Pending::Responding(Responding { response, hello_noise: noise, retry }));
                Ok(())
            }
            // Unreadable: maybe forged or corrupted, so nobody is told anything.
            Err(error @ HandshakeError::Noise { .. }) => Err(error.into()),
            Err(error) => {
                let close = plain_close(&error);
                Err(self.fail(error, close))
            }
        }
    }

    fn on_hello_ack(&mut self, now_ns: u64, noise: Bytes, psk_flag: bool) -> Result<(), SessionError> {
        if let Some(Pending::Confirming(confirming)) = &self.pending
            && let Origin::Initiated { hello_ack_noise, hello_finish, .. } = &confirming.session.origin
            && *hello_ack_noise == noise
        {
            // The responder repeats HelloAck: it lacks our HelloFinish.
            let message = hello_finish.clone();
            self.push_transmit(message);
            return Ok(());
        }
        if let Some(session) = &self.session
            && let Origin::Initiated { hello_ack_noise, hello_finish, .. } = &session.origin
            && *hello_ack_noise == noise
        {
            // The responder repeats HelloAck: it lacks our HelloFinish, unless it has since
            // sent under the session, which proves otherwise.
            if !session.received_any {
                let message = hello_finish.clone();
                self.push_transmit(message);
            }
            return Ok(());
        }
        let mut initiating = match self.pending.take() {
            Some(Pending::Initiating(initiating)) => initiating,
            other => {
                // Stale: answers no attempt of ours.
                self.pending = other;
                return Ok(());
            }
        };
        if let Some(error) = psk_flag_refusal(&self.config, MessageType::HelloAck, psk_flag) {
            let close = plain_close(&error);
            return Err(self.fail(error, close));
        }
        let received = match initiating.initiation.read_ack(&noise) {
            Ok(received) => received,
            Err(error) => {
                self.pending = Some(Pending::Initiating(initiating));
                return Err(error.into());
            }
        };
        let peer = match Initiation::check_responder(&self.config, &received) {
            Ok(peer) => peer,
            Err(error) => {
                let close = plain_close(&error);
                return Err(self.fail(error, close));
            }
        };
        let (finish_noise, keys) = initiating.initiation.finish(&self.config, &peer);
        let hello_finish = handshake_envelope(&self.config, MessageType::HelloFinish, &finish_noise);
        self.push_transmit(hello_finish.clone());
        let session = Session {
            transport: Transport::new(&keys),
            peer,
            origin: Origin::Initiated {
                hello_noise: initiating.hello_noise,
                hello_ack_noise: noise,
                hello_finish: hello_finish.clone(),
            },
            received_any: false,
        };
        if self.config.psk.is_some() {
            // Only the responder can tell whether our secrets match: wait for its word.
            let deadline_ns = now_ns.saturating_add(self.config.handshake_timeout_ns);
            let retry = Retry { message: hello_finish, deadline_ns, retransmit_at_ns: deadline_ns };
            self.pending = Some(Pending::Confirming(Box::new(Confirming { session, retry })));
        } else {
            self.install(session);
        }
        Ok(())
    }

    fn on_hello_finish(&mut self, noise: Bytes, psk_flag: bool) -> Result<(), SessionError> {
        if let Some(Session { origin: Origin::Responded { hello_finish_noise, .. }, .. }) = &self.session
            && *hello_finish_noise == noise
        {
            return Ok(());
        }
        let mut responding = match self.pending.take() {
            // Our HelloAck carried our PSK flag: a HelloFinish with the other cannot answer it.
            Some(Pending::Responding(responding)) if psk_flag == self.config.psk.is_some() => responding,
            other => {
                self.pending = other;
                return Ok(());
            }
        };
        let (received, keys) = match responding.response.read_finish(&self.config, &noise) {
            Ok(read) => read,
            Err(error @ HandshakeError::PskMismatch { .. }) => {
                // Without the initiator's secret we have no keys to encrypt the refusal: it
                // goes in the clear, which the initiator accepts while it waits to be
                // confirmed.
                let close = plain_close(&error);
                return Err(self.fail(error, close));
            }
            Err(error) => {
                self.pending = Some(Pending::Responding(responding));
                return Err(error.into());
            }
        };
        let mut transport = Transport::new(&keys);
        match responding.response.check_initiator(&self.config, &received) {
            Ok(peer) => {
                self.install(Session {
                    transport,
                    peer,
                    origin: Origin::Responded {
                        hello_noise: responding.hello_noise,
                        hello_finish_noise: noise,
                    },
                    received_any: false,
                });
                Ok(())
            }
            Err(error) => {
                // The initiator counts itself established once it sent HelloFinish, and
                // ignores plaintext Close then; so refuse under the session keys it holds.
                let close = error.close_code().and_then(|code| {
                    transport.seal(HANDSHAKE_MSG_ID, &Message::Close { code, reason: error.to_string() }).ok()
                });
                Err(self.fail(error, close))
            }
        }
    }

    fn on_encrypted(&mut self, envelope: &Envelope) -> Result<Option<(u32, Message)>, SessionError> {
        match self.pending.take() {
            Some(Pending::Confirming(mut confirming)) => match confirming.session.transport.open(envelope) {
                Ok(plaintext) => {
                    // The responder read our HelloFinish with the same secret: the session
                    // is real.
                    let mut session = confirming.session;
                    session.received_any = true;
                    let session_id = session.transport.session_id();
                    self.install(session);
                    self.discard_previous();
                    return self.accept(envelope, plaintext, true, session_id);
                }
                // Maybe under the session it replaces: tried below.
                Err(_) => self.pending = Some(Pending::Confirming(confirming)),
            },
            other => self.pending = other,
        }
        let Some(session) = self.session.as_mut() else {
            return Err(if self.pending.is_some() {
                SessionError::HandshakeInProgress
            } else {
                SessionError::NoSession
            });
        };
        let (plaintext, current, session_id) = match session.transport.open(envelope) {
            Ok(plaintext) => {
                session.received_any = true;
                let session_id = session.transport.session_id();
                self.discard_previous();
                (plaintext, true, session_id)
            }
            Err(error) => match self.previous.as_mut() {
                Some(previous) => match previous.open(envelope) {
                    Ok(plaintext) => (plaintext, false, previous.session_id()),
                    Err(_) => return Err(error),
                },
                None => return Err(error),
            },
        };
        self.accept(envelope, plaintext, current, session_id)
    }

    /// Decodes an envelope that authenticated under session `session_id` (the current one
    /// when `current`) and records its receipt; a Close ends the session.
    fn accept(
        &mut self,
        envelope: &Envelope,
        plaintext: Bytes,
        current: bool,
        session_id: u64,
    ) -> Result<Option<(u32, Message)>, SessionError> {
        // `open` succeeded, so the envelope carried a counter.
        let counter = envelope.header.nonce.unwrap_or_default();
        let message_type = envelope.header.message_type;
        let message = decode_payload(message_type, plaintext)
            .map_err(|error| SessionError::Decode { message_type, error })?;
        self.receipt = Some(Receipt { session_id, counter });
        if let Message::Close { code, reason } = &message {
            self.discard_previous();
            if current {
                self.end_session();
                self.push_event(ConnectionEvent::Closed { code: *code, reason: reason.clone() });
            }
        }
        Ok(Some((envelope.header.msg_id, message)))
    }

    /// Everything a received envelope may change, for tests that check a rejection changed
    /// nothing: the replay window, whether the peer proved it has the session, and whether
    /// the previous session is still readable.
    #[cfg(test)]
    pub(crate) fn receive_state(&self) -> Option<(super::replay::ReplayWindow, bool, bool)> {
        let session = self.session.as_ref()?;
        Some((session.transport.window().clone(), session.received_any, self.previous.is_some()))
    }

    /// The current session's transport, for tests that move its send counter.
    #[cfg(test)]
    pub(crate) fn transport_mut(&mut self) -> Option<&mut Transport> {
        self.session.as_mut().map(|session| &mut session.transport)
    }
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
