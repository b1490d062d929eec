#!/usr/bin/python3
"""Framed gRPC request bodies for h2load -d, and a checker for framed replies (stdlib only).

  grpc_body.py set KEY VALUE_LEN [TTL_MS] > set.bin   _SetRequest{1 key, 2 body, 3 ttl}
  grpc_body.py get KEY > get.bin                      _GetRequest{1 key}
  grpc_body.py check-get VALUE_LEN < reply.bin        exit 0 iff the reply is one framed
                                                      _GetResponse with result Hit (2) and
                                                      a VALUE_LEN-byte cache_body
  grpc_body.py check-set < reply.bin                  exit 0 iff _SetResponse result Ok (1)

Frame: 1 byte compressed flag (0) + 4-byte big-endian length + protobuf message.
The value is VALUE_LEN bytes of 'x', like kvbench and redis-benchmark's filler.
"""
import struct
import sys


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_bytes(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def field_varint(num, value):
    return varint(num << 3 | 0) + varint(value)


def frame(msg):
    return b"\x00" + struct.pack(">I", len(msg)) + msg


def parse(msg):
    """protobuf wire format -> {field: [values]} (varints as int, length-delimited as bytes)."""
    fields, i = {}, 0
    while i < len(msg):
        tag, i = read_varint(msg, i)
        num, wt = tag >> 3, tag & 7
        if wt == 0:
            v, i = read_varint(msg, i)
        elif wt == 2:
            n, i = read_varint(msg, i)
            v, i = msg[i:i + n], i + n
        else:
            raise ValueError("unexpected wire type %d" % wt)
        fields.setdefault(num, []).append(v)
    return fields


def read_varint(b, i):
    shift = value = 0
    while True:
        c = b[i]
        i += 1
        value |= (c & 0x7F) << shift
        if not c & 0x80:
            return value, i
        shift += 7


def unframe(data):
    if len(data) < 5 or data[0] != 0:
        raise ValueError("not an uncompressed gRPC frame (%d bytes)" % len(data))
    (n,) = struct.unpack(">I", data[1:5])
    if len(data) != 5 + n:
        raise ValueError("frame length %d, %d bytes after the prefix" % (n, len(data) - 5))
    return parse(data[5:])


def main(argv):
    if len(argv) >= 3 and argv[1] == "set":
        ttl = int(argv[4]) if len(argv) > 4 else 0
        msg = field_bytes(1, argv[2].encode()) + field_bytes(2, b"x" * int(argv[3]))
        if ttl:
            msg += field_varint(3, ttl)
        sys.stdout.buffer.write(frame(msg))
    elif len(argv) == 3 and argv[1] == "get":
        sys.stdout.buffer.write(frame(field_bytes(1, argv[2].encode())))
    elif len(argv) == 3 and argv[1] == "check-get":
        f = unframe(sys.stdin.buffer.read())
        result, body = f.get(1, [0])[0], f.get(2, [b""])[0]
        if result != 2 or len(body) != int(argv[2]):
            print("GetResponse: result=%s body=%d bytes (want Hit=2, %s bytes)"
                  % (result, len(body), argv[2]), file=sys.stderr)
            return 1
    elif len(argv) == 2 and argv[1] == "check-set":
        f = unframe(sys.stdin.buffer.read())
        if f.get(1, [0])[0] != 1:
            print("SetResponse: %r (want result Ok=1)" % f, file=sys.stderr)
            return 1
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
