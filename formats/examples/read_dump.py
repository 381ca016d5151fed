#!/usr/bin/env python3
"""An independent verifier of mailvault dumps (uncompressed), written from formats/dump-v1.md alone
with the Python standard library: full dumps of format versions 1 to 4 whose messages are stored whole
(no stubs, no flag tables). Usage: read_dump.py DUMP [--extract DIR]

Prints one line per message ("<id> <user> <mailbox> <uid> <size>") and "OK <counts>" at the end;
exits 65 with a message on stderr if the dump fails any check. Decompress zstd dumps first
(`zstd -dc dump.mvd.zst > dump.mvd`)."""
import hashlib
import json
import re
import sys
import tarfile

CHECK = re.compile(rb',"check":"([0-9a-f]{64})"\}( *)\n\Z')
MAX_RECORD = 1 << 20


class Bad(Exception):
    pass


def record(data, name):
    """Verify the check field (spec: "The check field") and parse the record."""
    m = CHECK.search(data)
    if not m or data.count(b"\n") != 1:
        raise Bad(f"{name}: no check field")
    without = data[: m.start()] + b"}" + m.group(2) + b"\n"
    if hashlib.sha256(without).hexdigest() != m.group(1).decode():
        raise Bad(f"{name}: check mismatch")
    return json.loads(data)


def decode_segment(seg, kind):
    out = bytearray()
    raw = seg.encode("utf-8")
    i = 0
    while i < len(raw):
        if raw[i] == 0x25:
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8")


def parse_name(name):
    parts = name.split("/")
    if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise Bad(f"{name}: forbidden member name")
    if name in ("mailvault/header.json", "mailvault/toc.jsonl", "mailvault/trailer.json"):
        return (name.split("/")[1].split(".")[0],)
    if parts[0] == "blobs" and len(parts) == 3 and re.fullmatch(r"[0-9a-f]{64}", parts[2]) and parts[1] == parts[2][:2]:
        return ("blob", parts[2])
    if parts[0] != "users" or len(parts) < 3:
        raise Bad(f"{name}: unknown member")
    user = decode_segment(parts[1], "user")
    if len(parts) == 3 and parts[2] == "user.json":
        return ("user", user)
    if parts[2] != "mailboxes" or len(parts) < 5:
        raise Bad(f"{name}: unknown member")
    mailbox = "/".join(decode_segment(p, "mailbox") for p in parts[3:-1])
    last = parts[-1]
    if last == "mailbox.json":
        return ("mailbox", user, mailbox)
    m = re.fullmatch(r"([1-9][0-9]*)\.(eml|json)", last)
    if not m:
        raise Bad(f"{name}: unknown member")
    return ("body" if m.group(2) == "eml" else "record", user, mailbox, int(m.group(1)))


KNOWN = ["id", "member", "type", "offset", "dataOffset", "size", "sha256"]
EXTRA = {"header": [], "blob": [], "user": ["user"], "mailbox": ["user", "mailbox"],
         "message": ["recordOffset", "recordDataOffset", "recordSize", "recordSha256", "user", "mailbox", "uid",
                     "flags", "keywords", "internalDate", "summary"]}


def project(line):
    return [line.get(k) for k in KNOWN + EXTRA[line["type"]]]


def archive_digest(path, end, content):
    """The trailer digest (spec section 5.6): sha256 of the bytes before the trailer, where (version 4)
    each body's or blob's data and padding are replaced by the 32 bytes of the sha256 of the data."""
    h = hashlib.sha256()
    with open(path, "rb") as f:

        def copy(n):
            while n:
                chunk = f.read(min(n, 1 << 20))
                if not chunk:
                    raise Bad("file shorter than the trailer offset")
                h.update(chunk)
                n -= len(chunk)

        pos = 0
        for data_offset, size, sha256 in content:
            copy(data_offset - pos)
            h.update(bytes.fromhex(sha256))
            f.seek(data_offset + size)
            if f.read(-size % 512).strip(b"\0"):
                raise Bad("padding after a body or blob is not zero bytes")
            pos = data_offset + size + (-size % 512)
        copy(end - pos)
    return h.hexdigest()


def verify(path, extract=None):
    expected_toc = []
    counts = {"users": 0, "mailboxes": 0, "messages": 0, "blobs": 0, "messageBytes": 0}
    next_id = 1
    header = trailer = toc = None
    pending = None
    user = mailbox = None
    last_uid = 0
    content = []  # version 4: (dataOffset, size, sha256) of every body and blob, for the digest
    with tarfile.open(path, mode="r|") as tar:
        for info in tar:
            if trailer is not None:
                raise Bad(f"{info.name}: member after the trailer")
            kind = parse_name(info.name)
            f = tar.extractfile(info)
            data = f.read() if f else b""
            digest = hashlib.sha256(data).hexdigest()
            span = {"member": info.name, "offset": info.offset, "dataOffset": info.offset_data,
                    "size": info.size, "sha256": digest}
            if header is None and kind[0] != "header":
                raise Bad(f"{info.name}: the first member must be mailvault/header.json")
            if pending and kind[:1] != ("record",):
                raise Bad(f"{info.name}: a body must be followed by its record")
            if header is not None and header["version"] >= 4 and kind[0] in ("body", "blob"):
                content.append((info.offset_data, info.size, digest))
            if kind[0] == "header":
                # Spec: format and version before anything else, even the check (a later version
                # may change the rest of the header).
                try:
                    first = json.loads(data)
                except ValueError:
                    raise Bad(f"{info.name}: not JSON")
                if not isinstance(first, dict) or first.get("format") != "mailvault-dump":
                    raise Bad(f"{info.name}: not a mailvault dump (format is not \"mailvault-dump\")")
                if not isinstance(first.get("version"), int) or first["version"] < 1:
                    raise Bad(f"{info.name}: no valid version")
                if first["version"] > 4:
                    raise Bad(f"written by a newer mailvault (format {first['version']})")
                header = record(data, info.name)
                expected_toc.append(dict(id=0, type="header", **span))
            elif kind[0] == "user":
                r = record(data, info.name)
                if r["user"] != kind[1] or (user is not None and kind[1].encode() <= user.encode()):
                    raise Bad(f"{info.name}: user name or order")
                user, mailbox = kind[1], None
                counts["users"] += 1
                expected_toc.append(dict(id=next_id, type="user", user=user, **span))
                next_id += 1
            elif kind[0] == "mailbox":
                r = record(data, info.name)
                if kind[1] != user or r["name"] != kind[2] or (mailbox is not None and kind[2].encode() <= mailbox.encode()):
                    raise Bad(f"{info.name}: mailbox name or order")
                mailbox, last_uid = kind[2], 0
                counts["mailboxes"] += 1
                expected_toc.append(dict(id=next_id, type="mailbox", user=user, mailbox=mailbox, **span))
                next_id += 1
            elif kind[0] == "body":
                if (kind[1], kind[2]) != (user, mailbox) or kind[3] <= last_uid:
                    raise Bad(f"{info.name}: message out of order")
                pending = (kind, span, data)
            elif kind[0] == "record":
                if not pending or pending[0][1:] != kind[1:]:
                    raise Bad(f"{info.name}: record without its body")
                bkind, bspan, body = pending
                pending = None
                r = record(data, info.name)
                if r["size"] != bspan["size"] or r["sha256"] != bspan["sha256"]:
                    raise Bad(f"{bspan['member']}: body does not match its record")
                last_uid = kind[3]
                counts["messages"] += 1
                counts["messageBytes"] += bspan["size"]
                expected_toc.append(dict(
                    id=next_id, type="message", **bspan, recordOffset=span["offset"], recordDataOffset=span["dataOffset"],
                    recordSize=span["size"], recordSha256=span["sha256"], user=r["user"], mailbox=r["mailbox"], uid=r["uid"],
                    flags=r["flags"], keywords=r["keywords"], internalDate=r["internalDate"], summary=r["summary"]))
                print(next_id, r["user"], r["mailbox"], r["uid"], r["size"])
                if extract:
                    import os
                    os.makedirs(extract, exist_ok=True)
                    with open(os.path.join(extract, f"{next_id}.eml"), "wb") as out:
                        out.write(body)
                next_id += 1
            elif kind[0] == "blob":
                if digest != kind[1]:
                    raise Bad(f"{info.name}: blob content does not match its name")
                counts["blobs"] += 1
                expected_toc.append(dict(id=0, type="blob", **span))
            elif kind[0] == "toc":
                lines = data.decode("utf-8").split("\n")
                if lines[-1] != "":
                    raise Bad("toc: last line without newline")
                got = [project(json.loads(line)) for line in lines[:-1]]
                if got != [project(e) for e in expected_toc]:
                    raise Bad("toc: does not describe the members read")
                toc = {"offset": info.offset, "dataOffset": info.offset_data, "size": info.size, "sha256": digest}
            elif kind[0] == "trailer":
                if toc is None:
                    raise Bad("trailer before toc")
                trailer = record(data, info.name)
                trailer_offset = info.offset
    if trailer is None:
        raise Bad("no trailer: the dump is truncated")
    if trailer["counts"] != counts or trailer["toc"] != toc or trailer["runId"] != header["runId"]:
        raise Bad("trailer counts, toc or runId do not match")
    algorithm = "sha256-hashed-content" if header["version"] >= 4 else "sha256"
    if trailer["digest"]["algorithm"] != algorithm:
        raise Bad(f"trailer digest algorithm is not {algorithm}")
    if archive_digest(path, trailer_offset, content) != trailer["digest"]["value"]:
        raise Bad("trailer digest mismatch")
    print("OK", json.dumps(counts, sort_keys=True))


if __name__ == "__main__":
    try:
        verify(sys.argv[1], sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--extract" else None)
    except (Bad, tarfile.TarError, KeyError, ValueError) as e:
        print(f"read_dump.py: {e}", file=sys.stderr)
        sys.exit(65)
