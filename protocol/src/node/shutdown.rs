//! Stopping a node cleanly: every session ends with an authenticated Close (`Shutdown`)
//! before the caller closes its links, so each peer learns at once that the node went away
//! on purpose instead of waiting for its connection to break (PROTOCOL.md 5.5 and 6.9).

use super::{Event, LinkId, Node, Output};
use crate::message::{CloseCode, Message};

impl Node {
    /// Ends every established session with a Close carrying [`CloseCode::Shutdown`] and
    /// `reason` (cut to 512 bytes on the wire), then forgets every link as
    /// [`link_down`](Self::link_down) would, reporting `Event::PeerDisconnected` for each
    /// peer. A link still in its handshake is forgotten without a message.
    ///
    /// Call it once, when the node stops: drain [`poll`](Self::poll), hand the Close frames
    /// to the links, and close the links once they are sent. Input for the forgotten links is
    /// ignored afterwards, and no timer is armed for them; local state, the store and the log
    /// are untouched, so a sync already requested still completes with
    /// [`handle_synced`](Self::handle_synced).
    pub fn shutdown(&mut self, now_ns: u64, reason: &str) {
        let now_ns = self.steady.advance(now_ns);
        let links: Vec<LinkId> = self.peers.keys().copied().collect();
        self.deadlines.touched_all = true;
        for &link in &links {
            let established = self.peers.get(&link).is_some_and(|peer| peer.connection.is_established());
            if established {
                let close = Message::Close { code: CloseCode::Shutdown, reason: reason.to_owned() };
                self.send_message(link, &close);
                // The sent Close ended the session: report it to an auditor like any other end.
                self.drain_connection(now_ns, link);
            }
        }
        // Every link goes at once: announcing the loss of one neighbour to the others, as
        // `link_down` does, would only send them messages after their Close.
        for link in links {
            let Some(peer) = self.peers.remove(&link) else { continue };
            if self.config.routing {
                self.routing.router.neighbour_down(link);
            }
            self.audit_sessions_ended(link, &peer);
            if peer.node_id.is_some() {
                let reason = format!("this node closed the session (Shutdown): {reason}");
                self.outputs.push_back(Output::Event(Event::PeerDisconnected { link, reason }));
            }
        }
        self.finish_input(now_ns);
    }
}
