-- Wireshark / tshark dissector for shmkit channel recordings: the pcapng
-- files of `shmctl record` and `shmctl tap --pcapng` (link type USER0,
-- 147). Each packet is one channel message: a 40-byte header, then the
-- payload (docs/shmctl.md, "Recordings").
--
--   offset size field
--   0      4    magic "SHMK"
--   4      2    header length (40; later versions may add fields, skipped here)
--   6      2    version (1)
--   8      4    flags: 1 tap, 2 truncated
--   12     4    publisher: participant slot | generation << 8
--   16     4    epoch (grows when a publisher's sequence goes backwards)
--   20     4    message length
--   24     8    sequence number
--   32     8    messages missed just before this one
--   40     ...  payload
--
-- All integers little endian. Install: copy this file into Wireshark's
-- personal plugin folder (Help > About > Folders; e.g.
-- ~/.local/lib/wireshark/plugins/), or run
--   tshark -X lua_script:contrib/wireshark/shmkit.lua -r orders.pcapng -V
-- Filter fields: shmkit.publisher, shmkit.slot, shmkit.generation,
-- shmkit.epoch, shmkit.seq, shmkit.len, shmkit.missed, shmkit.flags.

local shmkit = Proto("shmkit", "shmkit channel message")

local f = shmkit.fields
f.magic      = ProtoField.string("shmkit.magic", "Magic")
f.hdrlen     = ProtoField.uint16("shmkit.hdrlen", "Header length", base.DEC)
f.version    = ProtoField.uint16("shmkit.version", "Version", base.DEC)
f.flags      = ProtoField.uint32("shmkit.flags", "Flags", base.HEX)
f.flag_tap   = ProtoField.bool("shmkit.flags.tap", "Captured by a tap", 32, nil, 0x1)
f.flag_trunc = ProtoField.bool("shmkit.flags.truncated", "Truncated", 32, nil, 0x2)
f.publisher  = ProtoField.uint32("shmkit.publisher", "Publisher", base.DEC)
f.slot       = ProtoField.uint32("shmkit.slot", "Participant slot", base.DEC)
f.generation = ProtoField.uint32("shmkit.generation", "Slot generation", base.DEC)
f.epoch      = ProtoField.uint32("shmkit.epoch", "Epoch", base.DEC)
f.len        = ProtoField.uint32("shmkit.len", "Message length", base.DEC)
f.seq        = ProtoField.uint64("shmkit.seq", "Sequence", base.DEC)
f.missed     = ProtoField.uint64("shmkit.missed", "Missed before", base.DEC)
f.payload    = ProtoField.bytes("shmkit.payload", "Payload")

local HEADER = 40

function shmkit.dissector(tvb, pinfo, tree)
    if tvb:len() < HEADER or tvb(0, 4):string() ~= "SHMK" then
        return 0
    end
    pinfo.cols.protocol = "shmkit"
    local hl = tvb(4, 2):le_uint()
    if hl < HEADER or hl > tvb:len() then
        hl = HEADER
    end
    local t = tree:add(shmkit, tvb(0, hl), "shmkit message")
    t:add(f.magic, tvb(0, 4))
    t:add_le(f.hdrlen, tvb(4, 2))
    t:add_le(f.version, tvb(6, 2))
    local ft = t:add_le(f.flags, tvb(8, 4))
    ft:add_le(f.flag_tap, tvb(8, 4))
    ft:add_le(f.flag_trunc, tvb(8, 4))
    local pub = tvb(12, 4):le_uint()
    local pt = t:add_le(f.publisher, tvb(12, 4))
    pt:add(f.slot, tvb(12, 1), pub % 256)
    pt:add(f.generation, tvb(13, 3), math.floor(pub / 256))
    t:add_le(f.epoch, tvb(16, 4))
    t:add_le(f.len, tvb(20, 4))
    t:add_le(f.seq, tvb(24, 8))
    t:add_le(f.missed, tvb(32, 8))
    local n = tvb:len() - hl
    if n > 0 then
        t:add(f.payload, tvb(hl, n))
    end
    pinfo.cols.info = string.format("pub %d.%d seq %s len %d", pub % 256, math.floor(pub / 256),
        tostring(tvb(24, 8):le_uint64()), tvb(20, 4):le_uint())
    return tvb:len()
end

DissectorTable.get("wtap_encap"):add(wtap.USER0, shmkit)
