//! `--pcap PATH`: every message a simulated node sent, as a pcapng packet.
//!
//! The file is one section (a Section Header Block), one interface of link type `RAW`
//! (101: each packet is an IPv4 datagram) with nanosecond timestamps (`if_tsresol` 9), and
//! one Enhanced Packet Block per send, stamped with the virtual time of the send. Node `i`
//! (0-based, in scenario order) is `10.0.0.0 + i + 1`, so `a` of `[a, b]` is 10.0.0.1.
//!
//! Every packet is UDP, for stream links too: a datagram link's message is one frame, sent
//! to port [`DATAGRAM_PORT`]; a stream link's segment, which may hold several frames or part
//! of one, is sent to port [`STREAM_PORT`]. Writing stream segments as TCP would need
//! sequence and acknowledgement numbers that a simulated link with breaks, drops and
//! reconnections does not have, and Wireshark's TCP analysis would then flag every packet;
//! UDP keeps one packet per send and lets `contrib/ferry.lua` tell the two apart by port.
//! A QUIC link's packets are real QUIC packets, sent to port [`QUIC_PORT`] as the simulated
//! endpoints are; Wireshark's own QUIC dissector reads their headers (the payload is
//! encrypted). A run that mixes transports (`network.links`) gives each link its port.
//!
//! The writer is the few block types pcapng needs, by hand (little-endian); the tests read
//! the files back with the `pcap-file` crate.

use std::io::{self, Write};

use ferry_simulator::{LineFields, TraceTap};

/// UDP port of datagram links.
pub const DATAGRAM_PORT: u16 = 7400;
/// UDP port of stream-link segments.
pub const STREAM_PORT: u16 = 7401;
/// UDP port of QUIC packets: the simulated endpoints' port.
pub const QUIC_PORT: u16 = 4433;
/// Largest payload an IPv4 UDP packet holds; a longer message is cut (its original length
/// is still recorded).
const PAYLOAD_MAX: usize = 65_535 - 20 - 8;

/// The synthetic IPv4 address of node `index`.
#[must_use]
pub fn address(index: u32) -> [u8; 4] {
    let value = 0x0a00_0000u32.wrapping_add(index.wrapping_add(1));
    value.to_be_bytes()
}

/// A pcapng writer fed by the trace.
pub struct PcapTap<W: Write + Send> {
    out: W,
    port: u16,
    /// Links whose port is not `port`, by pair `(low, high)`.
    link_ports: std::collections::BTreeMap<(u32, u32), u16>,
    packets: u64,
    error: Option<io::Error>,
    block: Vec<u8>,
}

fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(body);
    out.resize(out.len() + padded - body.len(), 0);
    out.extend_from_slice(&total.to_le_bytes());
}

fn checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in header.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl<W: Write + Send> PcapTap<W> {
    /// Writes the section and interface headers to `out`; every packet goes to `port`
    /// unless [`PcapTap::with_link_port`] says otherwise for its link.
    ///
    /// # Errors
    /// The error writing the headers.
    pub fn new(mut out: W, port: u16) -> io::Result<Self> {
        let mut bytes = Vec::new();
        let mut section = Vec::new();
        section.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        section.extend_from_slice(&1u16.to_le_bytes());
        section.extend_from_slice(&0u16.to_le_bytes());
        section.extend_from_slice(&(-1i64).to_le_bytes());
        block(&mut bytes, 0x0a0d_0d0a, &section);
        let mut interface = Vec::new();
        interface.extend_from_slice(&101u16.to_le_bytes()); // LINKTYPE_RAW
        interface.extend_from_slice(&0u16.to_le_bytes());
        interface.extend_from_slice(&0u32.to_le_bytes()); // no snap length
        interface.extend_from_slice(&9u16.to_le_bytes()); // if_tsresol
        interface.extend_from_slice(&1u16.to_le_bytes());
        interface.extend_from_slice(&[9, 0, 0, 0]); // 10^-9 s, padded
        interface.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
        block(&mut bytes, 1, &interface);
        out.write_all(&bytes)?;
        Ok(Self {
            out,
            port,
            link_ports: std::collections::BTreeMap::new(),
            packets: 0,
            error: None,
            block: Vec::new(),
        })
    }

    /// Sends the packets of the link between `first` and `second` (node indexes) to `port`.
    #[must_use]
    pub fn with_link_port(mut self, first: u32, second: u32, port: u16) -> Self {
        self.link_ports.insert((first.min(second), first.max(second)), port);
        self
    }

    /// Packets written.
    #[must_use]
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Flushes and returns the first error.
    ///
    /// # Errors
    /// The first I/O error.
    pub fn finish(&mut self) -> io::Result<()> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        self.out.flush()
    }

    fn write_packet(&mut self, virtual_ns: u64, from: u32, to: u32, bytes: &[u8]) -> io::Result<()> {
        let payload = &bytes[..bytes.len().min(PAYLOAD_MAX)];
        let mut packet = Vec::with_capacity(28 + payload.len());
        let total = (28 + payload.len()) as u16;
        packet.extend_from_slice(&[0x45, 0]);
        packet.extend_from_slice(&total.to_be_bytes());
        packet.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]); // id, don't fragment, ttl, UDP
        packet.extend_from_slice(&address(from));
        packet.extend_from_slice(&address(to));
        let sum = checksum(&packet[..20]);
        packet[10..12].copy_from_slice(&sum.to_be_bytes());
        let port = self.link_ports.get(&(from.min(to), from.max(to))).copied().unwrap_or(self.port);
        packet.extend_from_slice(&port.to_be_bytes());
        packet.extend_from_slice(&port.to_be_bytes());
        packet.extend_from_slice(&(total - 20).to_be_bytes());
        packet.extend_from_slice(&[0, 0]); // no UDP checksum (allowed over IPv4)
        packet.extend_from_slice(payload);
        let original = (28 + bytes.len()) as u32;
        let mut body = Vec::with_capacity(20 + packet.len());
        body.extend_from_slice(&0u32.to_le_bytes());
        body.extend_from_slice(&((virtual_ns >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(virtual_ns as u32).to_le_bytes());
        body.extend_from_slice(&(packet.len() as u32).to_le_bytes());
        body.extend_from_slice(&original.to_le_bytes());
        body.extend_from_slice(&packet);
        self.block.clear();
        block(&mut self.block, 6, &body);
        self.out.write_all(&self.block)
    }
}

impl<W: Write + Send> TraceTap for PcapTap<W> {
    fn line(&mut self, _virtual_ns: u64, _kind: &'static str, _fields: &LineFields<'_>, _text: &str) {}

    fn packet(&mut self, virtual_ns: u64, from: u32, to: u32, _message_id: u64, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        match self.write_packet(virtual_ns, from, to, bytes) {
            Ok(()) => self.packets += 1,
            Err(error) => self.error = Some(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_checksums() {
        assert_eq!(address(0), [10, 0, 0, 1]);
        assert_eq!(address(255), [10, 0, 1, 0]);
        // The example header of RFC 1071's usual illustration.
        let header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01,
            0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&header), 0xb861);
    }
}
