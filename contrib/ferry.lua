-- Wireshark dissector for ferry frames (PROTOCOL.md sections 2 to 4).
--
-- Decodes, for every frame in a UDP payload: the varint length prefix, then the envelope
-- header: magic "FY", version, type, msg_id (u32 big-endian), flags, and the nonce (u64
-- big-endian) when the ENCRYPTED flag is set. The payload is shown as bytes (it is AEAD
-- ciphertext for every message but the handshake).
--
-- `ferry run FILE --pcap run.pcapng` writes datagram links to UDP port 7400 (one frame per
-- packet) and stream-link segments to UDP port 7401 (frames back to back; a frame cut by a
-- segment boundary is shown as a fragment, not reassembled). Use it with
--   wireshark -X lua_script:contrib/ferry.lua run.pcapng
--   tshark -X lua_script:contrib/ferry.lua -r run.pcapng -Y ferry
-- or copy it to your personal Wireshark plugins directory.

local ferry = Proto("ferry", "ferry sync protocol")

local types = {
  [0x01] = "Hello", [0x02] = "HelloAck", [0x03] = "HelloFinish", [0x04] = "Ping", [0x05] = "Pong",
  [0x06] = "WalPush", [0x07] = "WalAck", [0x08] = "OutboxPull", [0x09] = "Close",
  [0x0a] = "RouteAnnounce", [0x0b] = "Routed",
}

local f = ferry.fields
f.length = ProtoField.uint32("ferry.length", "Frame length", base.DEC)
f.magic = ProtoField.string("ferry.magic", "Magic")
f.version = ProtoField.uint8("ferry.version", "Version", base.DEC)
f.type = ProtoField.uint8("ferry.type", "Type", base.HEX, types)
f.msg_id = ProtoField.uint32("ferry.msg_id", "msg_id", base.DEC)
f.flags = ProtoField.uint8("ferry.flags", "Flags", base.HEX)
f.encrypted = ProtoField.bool("ferry.flags.encrypted", "ENCRYPTED", 8, nil, 0x01)
f.nonce = ProtoField.uint64("ferry.nonce", "Nonce", base.DEC)
f.payload = ProtoField.bytes("ferry.payload", "Payload")
f.fragment = ProtoField.bytes("ferry.fragment", "Fragment of a frame cut by the segment boundary")

-- A canonical LEB128 varint at `offset`: value, length in bytes; nil when truncated or invalid.
local function varint(tvb, offset)
  local value, shift = 0, 0
  for i = 0, 4 do -- a length over 2^28 is far beyond any frame limit
    if offset + i >= tvb:len() then return nil end
    local byte = tvb(offset + i, 1):uint()
    value = value + bit.band(byte, 0x7f) * (2 ^ shift)
    if bit.band(byte, 0x80) == 0 then
      if byte == 0 and i > 0 then return nil end
      return value, i + 1
    end
    shift = shift + 7
  end
  return nil
end

local function envelope(tvb, offset, length, tree, pinfo)
  local subtree = tree:add(ferry, tvb(offset, length), "ferry envelope")
  if length < 9 or tvb(offset, 2):string() ~= "FY" then
    subtree:add(f.payload, tvb(offset, length)):append_text(" (not a ferry envelope)")
    return "?"
  end
  subtree:add(f.magic, tvb(offset, 2))
  subtree:add(f.version, tvb(offset + 2, 1))
  local code = tvb(offset + 3, 1):uint()
  subtree:add(f.type, tvb(offset + 3, 1))
  subtree:add(f.msg_id, tvb(offset + 4, 4))
  local flags = tvb(offset + 8, 1)
  local flags_tree = subtree:add(f.flags, flags)
  flags_tree:add(f.encrypted, flags)
  local header = 9
  if bit.band(flags:uint(), 0x01) ~= 0 and length >= 17 then
    subtree:add(f.nonce, tvb(offset + 9, 8))
    header = 17
  end
  if length > header then subtree:add(f.payload, tvb(offset + header, length - header)) end
  local name = types[code] or string.format("type 0x%02x", code)
  subtree:append_text(string.format(": %s msg_id=%d", name, tvb(offset + 4, 4):uint()))
  return name
end

function ferry.dissector(tvb, pinfo, tree)
  pinfo.cols.protocol = "ferry"
  local names, offset = {}, 0
  while offset < tvb:len() do
    local length, prefix = varint(tvb, offset)
    if length == nil or offset + prefix + length > tvb:len() then
      tree:add(ferry, tvb(offset), "ferry"):add(f.fragment, tvb(offset))
      names[#names + 1] = "[fragment]"
      break
    end
    tree:add(f.length, tvb(offset, prefix), length)
    if length > 0 then
      names[#names + 1] = envelope(tvb, offset + prefix, length, tree, pinfo)
    end
    offset = offset + prefix + length
  end
  pinfo.cols.info = table.concat(names, ", ")
  return tvb:len()
end

local udp = DissectorTable.get("udp.port")
udp:add(7400, ferry)
udp:add(7401, ferry)
