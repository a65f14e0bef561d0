//! The interface between the simulator and whatever it hosts.
//!
//! A process is a sans-IO state machine. The simulator calls one of its `on_*` methods with a
//! [`Context`] that shows the node's own clock and collects what the process wants done
//! (sends, a timer, disk appends and syncs, connection attempts, trace events). Nothing in
//! the simulator core knows what a ferry node is.

use bytes::Bytes;
use rand_chacha::ChaCha8Rng;

use crate::trace::TraceRecord;

/// Something the simulator can host on every node.
///
/// Call order: [`boot`](Self::boot) once at start and after every restart (with the
/// node's durable disk contents), then any number of the `on_*` callbacks. A crash simply
/// drops the value: anything not on the disk is gone.
pub trait Process: Sized {
    /// Shared configuration every instance is booted with.
    type Config;
    /// Workload input (e.g. a write).
    type Command: TraceRecord;
    /// What the process reports to the trace and the checkers.
    type Event: TraceRecord;

    /// Creates the process on node `context.node()` from its disk contents.
    fn boot(config: &Self::Config, context: &mut Context<'_, Self::Event>, disk: &[u8]) -> Self;

    /// A message from `from` arrived.
    fn on_message(&mut self, context: &mut Context<'_, Self::Event>, from: u32, bytes: Bytes);

    /// The timer set with [`Context::set_timer`] expired.
    fn on_timer(&mut self, context: &mut Context<'_, Self::Event>);

    /// The sync `sync_id` completed: everything appended before it is durable.
    fn on_disk_synced(&mut self, context: &mut Context<'_, Self::Event>, sync_id: u64);

    /// The sync `sync_id` failed (EIO, or ENOSPC from an append before it): nothing
    /// appended since the last successful sync may be assumed durable, and a retried fsync
    /// could report success without the lost bytes (PostgreSQL's "fsyncgate", 2018).
    ///
    /// The default does what PostgreSQL chose: stop and recover from what the disk holds
    /// ([`Context::restart_from_disk`]); the process never acknowledges what the sync
    /// covered. A process that overrides this must not treat the failed range as durable.
    fn on_disk_sync_failed(&mut self, context: &mut Context<'_, Self::Event>, sync_id: u64) {
        let _ = sync_id;
        context.restart_from_disk();
    }

    /// A link to `peer` is usable. `initiator` tells which side should start a handshake
    /// (the connecting side of a stream, the lower index of a datagram link).
    fn on_link_up(&mut self, context: &mut Context<'_, Self::Event>, peer: u32, initiator: bool);

    /// The stream connection to `peer` broke or could not be opened.
    fn on_link_down(&mut self, context: &mut Context<'_, Self::Event>, peer: u32);

    /// A workload command.
    fn on_command(&mut self, context: &mut Context<'_, Self::Event>, command: Self::Command);

    /// A short description of a message for trace lines (e.g. its type), from its bytes
    /// alone; used for sends made with [`Context::send`] (a send made with
    /// [`Context::send_described`] brings its own).
    fn describe_message(bytes: &[u8]) -> String {
        format!("{}B", bytes.len())
    }
}

/// One request from a process, in the order it was made.
#[derive(Debug)]
pub(crate) enum Action<E> {
    /// `description` is `Some` only when the trace wants text and the process gave one.
    Send {
        to: u32,
        bytes: Bytes,
        description: Option<String>,
    },
    Append(Bytes),
    Sync(u64),
    Truncate(u64),
    Replace(Bytes),
    Connect(u32),
    Emit(E),
    RestartFromDisk,
}

/// What one callback asked for.
#[derive(Debug)]
pub(crate) struct Outputs<E> {
    pub(crate) actions: Vec<Action<E>>,
    /// `Some(deadline)` when the callback set or cleared the timer.
    pub(crate) timer: Option<Option<u64>>,
}

impl<E> Default for Outputs<E> {
    fn default() -> Self {
        Self { actions: Vec::new(), timer: None }
    }
}

/// Room the outputs make when they are full: a callback asks for a few actions at most.
const ACTIONS_RESERVED: usize = 8;

/// The node's view of the world during one callback.
#[derive(Debug)]
pub struct Context<'a, E> {
    pub(crate) node: u32,
    pub(crate) local_ns: u64,
    pub(crate) outputs: &'a mut Outputs<E>,
    pub(crate) rng: &'a mut ChaCha8Rng,
    /// True when the trace writes text, so send descriptions will be read.
    pub(crate) describe: bool,
}

impl<E> Context<'_, E> {
    /// Appends the action `make` builds. Where the outputs have room, and the compiler can see
    /// that they have, the action is built where it lands: built on the stack and copied in
    /// after the capacity check, a 64-byte action was read back with 16-byte loads from the
    /// 8-byte stores still in flight, a stall on every send.
    #[inline(always)]
    fn act(&mut self, make: impl FnOnce() -> Action<E>) {
        let actions = &mut self.outputs.actions;
        if actions.len() == actions.capacity() {
            actions.reserve(ACTIONS_RESERVED);
        }
        if actions.len() < actions.capacity() {
            actions.push(make());
        } else {
            unreachable!("`reserve` leaves room for one more action");
        }
    }

    /// This node's index.
    #[must_use]
    pub fn node(&self) -> u32 {
        self.node
    }

    /// This node's clock (skewed, drifting, possibly jumped), in nanoseconds.
    #[must_use]
    pub fn now_ns(&self) -> u64 {
        self.local_ns
    }

    /// This node's random stream (seeded from the run seed and the node index).
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        self.rng
    }

    /// True when the trace writes text, so that [`send_described`](Self::send_described)
    /// calls its closure. Constant during a callback; a process may read it at boot to
    /// decide whether to keep what it needs for descriptions.
    #[must_use]
    pub fn describes_sends(&self) -> bool {
        self.describe
    }

    /// Sends `bytes` to `to`; the trace describes it with [`Process::describe_message`].
    pub fn send(&mut self, to: u32, bytes: Bytes) {
        self.act(|| Action::Send { to, bytes, description: None });
    }

    /// Sends `bytes` to `to`, described in the trace by what `describe` returns. The
    /// closure runs only when the trace writes text, so the send costs nothing more
    /// otherwise; the description never enters the trace hash.
    pub fn send_described(&mut self, to: u32, bytes: Bytes, describe: impl FnOnce() -> String) {
        let description = self.describe.then(describe);
        self.act(|| Action::Send { to, bytes, description });
    }

    /// Sets the node's single timer to local time `deadline_ns`, or clears it with `None`.
    pub fn set_timer(&mut self, deadline_ns: Option<u64>) {
        self.outputs.timer = Some(deadline_ns);
    }

    /// Appends to the node's disk (not durable until a later sync completes).
    pub fn append(&mut self, bytes: Bytes) {
        self.act(|| Action::Append(bytes));
    }

    /// Asks for everything appended so far to be made durable; completes with
    /// [`Process::on_disk_synced`].
    pub fn sync(&mut self, sync_id: u64) {
        self.act(|| Action::Sync(sync_id));
    }

    /// Cuts the disk log to `length_bytes` (recovery of a torn tail).
    pub fn truncate(&mut self, length_bytes: u64) {
        self.act(|| Action::Truncate(length_bytes));
    }

    /// Replaces the whole disk log with `bytes` (a compaction), atomically in the way a
    /// real disk does it: write, fsync, rename, fsync the directory, each step taking
    /// virtual time; a crash in between keeps the old log or the new one, whole.
    pub fn replace(&mut self, bytes: Bytes) {
        self.act(|| Action::Replace(bytes));
    }

    /// Opens a stream connection to `peer` (stream transport only).
    pub fn connect(&mut self, peer: u32) {
        self.act(|| Action::Connect(peer));
    }

    /// Stops this process and boots it again from the durable contents of its disk (what
    /// was not synced is gone), like a crash followed at once by a restart. Outputs asked
    /// for after this call in the same callback are discarded.
    pub fn restart_from_disk(&mut self) {
        self.act(|| Action::RestartFromDisk);
    }

    /// Reports an event to the trace and the checkers.
    pub fn emit(&mut self, event: E) {
        self.act(|| Action::Emit(event));
    }
}
