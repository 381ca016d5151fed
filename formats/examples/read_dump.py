#!/usr/bin/env python3
"""An independent verifier of mailvault dumps (uncompressed), written from formats/dump-v1.md alone
with the Python standard library: format versions 1 to 4, full and incremental dumps, messages stored
whole (`<uid>.eml`) or as parts (`<uid>.stub` plus blobs, version 2+, rebuilt and checked against
their record), flag tables of incrementals (`flags.<n>.json`, version 3+).
Usage: read_dump.py DUMP [--extract DIR]

Prints one line per message ("<id> <user> <mailbox> <uid> <size>", the size of the full message) and
"OK <counts>" at the end; exits 65 with a one-line message on stderr if the dump fails any check,
66 if DUMP is not a file, 64 on a wrong command line.
--extract DIR writes each message's full bytes (rebuilt from its parts where stored as parts) to
DIR/<id>.eml. Decompress zstd dumps first (`zstd -dc dump.mvd.zst > dump.mvd`): the digest check and
the rebuilding of messages from blobs re-read the file."""
import base64
import bisect
import hashlib
import json
import os
import re
import sys
import tarfile

CHECK = re.compile(rb',"check":"([0-9a-f]{64})"\}( *)\n\Z')
MAX_RECORD = 1 << 20
MAX_UID = (1 << 32) - 1
MAX_LINE_LENGTH = 1 << 20  # 5.8: base64 lineLength is 1 to 1048576
MAX_FLAG_ENTRIES = 2000  # 13 (version 3): at most 2000 entries per flag table
HEX64 = re.compile(r"[0-9a-f]{64}")


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


def encode_segment(text, kind):
    """4 ("Encoding a segment"): UTF-8 bytes; %XX (uppercase hex) for %, /, \\, 0x00-0x1F, 0x7F, and for
    "." in mailbox segments (in the user segment only a leading one)."""
    out = []
    for i, b in enumerate(text.encode("utf-8")):
        if b in (0x25, 0x2F, 0x5C) or b < 0x20 or b == 0x7F or (b == 0x2E and (kind == "mailbox" or i == 0)):
            out.append(f"%{b:02X}")
        else:
            out.append(chr(b) if b < 0x80 else bytes([b]).decode("latin-1"))
    return "".join(out).encode("latin-1").decode("utf-8")


def decode_segment(seg, kind):
    """4 ("Reading a name"): decode, then reject a segment that is not in canonical encoded form
    (decoding then encoding must give it back) or that decodes to invalid UTF-8."""
    out = bytearray()
    raw = seg.encode("utf-8")
    i = 0
    while i < len(raw):
        if raw[i] == 0x25:
            digits = raw[i + 1 : i + 3]
            if not re.fullmatch(rb"[0-9A-Fa-f]{2}", digits):
                raise Bad(f"segment {seg!r}: % not followed by two hex digits")
            out.append(int(digits, 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError:
        raise Bad(f"segment {seg!r}: decodes to invalid UTF-8")
    if kind == "mailbox" and "/" in text:
        raise Bad(f"segment {seg!r}: a mailbox segment never holds a / (section 4)")
    if encode_segment(text, kind) != seg:
        raise Bad(f"segment {seg!r}: not in canonical encoded form (section 4)")
    return text


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
    try:
        user = decode_segment(parts[1], "user")
        if len(parts) == 3 and parts[2] == "user.json":
            return ("user", user)
        if parts[2] != "mailboxes" or len(parts) < 5:
            raise Bad("unknown member")
        mailbox = "/".join(decode_segment(p, "mailbox") for p in parts[3:-1])
    except Bad as e:
        raise Bad(f"{name}: {e}")
    last = parts[-1]
    if last == "mailbox.json":
        return ("mailbox", user, mailbox)
    # 13 (version 3): flag table `flags.<n>.json`, n = 1, 2, ... (written like a UID: no leading zeros).
    m = re.fullmatch(r"flags\.([1-9][0-9]*)\.json", last)
    if m:
        return ("flags", user, mailbox, int(m.group(1)))
    # 4: `<uid>.eml` (body), `<uid>.json` (message record), `<uid>.stub` (version 2: stub).
    m = re.fullmatch(r"([1-9][0-9]*)\.(eml|json|stub)", last)
    if not m or int(m.group(1)) > MAX_UID:
        raise Bad(f"{name}: unknown member")
    return ({"eml": "body", "json": "record", "stub": "stub"}[m.group(2)], user, mailbox, int(m.group(1)))


KNOWN = ["id", "member", "type", "offset", "dataOffset", "size", "sha256"]
EXTRA = {"header": [], "blob": [], "user": ["user"], "mailbox": ["user", "mailbox"],
         "flags": ["user", "mailbox"],  # 13 (version 3): flag table lines carry user and mailbox, id 0
         "message": ["recordOffset", "recordDataOffset", "recordSize", "recordSha256", "user", "mailbox", "uid",
                     "flags", "keywords", "internalDate", "summary"]}


def first_of_each_keyword(keywords):
    """5.5: keywords equal but for the case of ASCII letters are one; the first listed is kept."""
    seen, out = set(), []
    for k in keywords:
        key = re.sub(r"[A-Z]", lambda m: m.group(0).lower(), k)
        if key not in seen:
            seen.add(key)
            out.append(k)
    return out


def project(line):
    if line.get("type") not in EXTRA:
        raise Bad(f"toc: line of unknown type {line.get('type')!r}")
    return [first_of_each_keyword(line[k]) if k == "keywords" and isinstance(line.get(k), list) and all(isinstance(x, str) for x in line[k]) else line.get(k)
            for k in KNOWN + EXTRA[line["type"]]]


def archive_digest(path, end, content):
    """The trailer digest (spec section 5.6): sha256 of the bytes before the trailer, where (version 4)
    each content member's data (body, stub or blob) and padding are replaced by the 32 bytes of the
    sha256 of the data."""
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


def is_int(v, lo=0, hi=None):
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo and (hi is None or v <= hi)


def is_strings(v):
    return isinstance(v, list) and all(isinstance(s, str) for s in v)


def parse_uid_set(text, name):
    """13 ("Mailbox uidSet"): IMAP sequence-set text without `*`, ranges ascending and not touching,
    e.g. "1:5,7,9:120"; "" for no UIDs. Returns the ranges as (first, last) pairs."""
    if not isinstance(text, str):
        raise Bad(f"{name}: uidSet is not a string")
    ranges = []
    for item in text.split(",") if text else []:
        m = re.fullmatch(r"([1-9][0-9]*)(?::([1-9][0-9]*))?", item)
        first = int(m.group(1)) if m else 0
        last = int(m.group(2)) if m and m.group(2) else first
        if not m or last > MAX_UID or (m.group(2) and last <= first):
            raise Bad(f"{name}: uidSet {text!r} is not a sequence set of ascending ranges")
        if ranges and first <= ranges[-1][1] + 1:
            raise Bad(f"{name}: uidSet {text!r} has ranges not ascending or touching")
        ranges.append((first, last))
    return ranges


def in_uid_set(ranges, uid):
    i = bisect.bisect_right(ranges, (uid, MAX_UID + 1)) - 1
    return i >= 0 and ranges[i][0] <= uid <= ranges[i][1]


def encoded_length(part):
    """5.8: length of a blob part's encoding before it is cut to `size`. base64: 4 characters per 3
    content bytes (padded), in lines of lineLength joined by "\\n" or "\\r\\n", none after the last."""
    if part["encoding"] == "raw":
        return part["contentSize"]
    chars = 4 * ((part["contentSize"] + 2) // 3)
    lines = (chars + part["lineLength"] - 1) // part["lineLength"]
    return chars + max(lines - 1, 0) * (2 if part["crlf"] else 1)


def encode(content, part):
    """5.8: a blob part's contribution: the content, encoded, cut to the first `size` bytes."""
    if part["encoding"] == "base64":
        text = base64.b64encode(content)  # standard alphabet, "=" padding
        n = part["lineLength"]
        content = (b"\r\n" if part["crlf"] else b"\n").join(text[i : i + n] for i in range(0, len(text), n))
    return content[: part["size"]]


def check_parts(r, stub_span, blobs, rec_name):
    """5.8: the record of a stub: `stub` is the stub member's {size, sha256}; `parts` add up. Returns
    the parts. A blob the parts use must have been read before (5.7, section 6 rule 5, section 8:
    an order error naming the stub and the blob member)."""
    stub, parts = r.get("stub"), r.get("parts")
    if not isinstance(stub, dict) or not isinstance(parts, list):
        raise Bad(f"{rec_name}: record of a stub without stub and parts")
    if not parts:
        raise Bad(f"{rec_name}: parts is empty")
    if stub.get("size") != stub_span["size"] or stub.get("sha256") != stub_span["sha256"]:
        raise Bad(f"{stub_span['member']}: stub does not match its record (stub size or sha256)")
    inline_end = total = 0
    for p in parts:
        if not isinstance(p, dict) or p.get("type") not in ("inline", "blob") or not is_int(p.get("size")):
            raise Bad(f"{rec_name}: a part is not an inline or blob part with a size")
        if p["type"] == "inline":
            # Inline parts are consecutive: the first at 0, each next where the previous ended.
            if p.get("offset") != inline_end:
                raise Bad(f"{rec_name}: inline part at offset {p.get('offset')}, expected {inline_end}")
            inline_end += p["size"]
        else:
            if not isinstance(p.get("sha256"), str) or not HEX64.fullmatch(p["sha256"]) or not is_int(p.get("contentSize")):
                raise Bad(f"{rec_name}: blob part without sha256 or contentSize")
            if p.get("encoding") == "base64":
                if not is_int(p.get("lineLength"), 1, MAX_LINE_LENGTH) or not isinstance(p.get("crlf"), bool):
                    raise Bad(f"{rec_name}: base64 part without a lineLength of 1 to {MAX_LINE_LENGTH} or crlf")
            elif p.get("encoding") != "raw":
                raise Bad(f"{rec_name}: blob part of unknown encoding {p.get('encoding')!r}")
            if p["sha256"] not in blobs:
                blob_name = f"blobs/{p['sha256'][:2]}/{p['sha256']}"
                raise Bad(f"{stub_span['member']}: uses {blob_name}, which was not read before it (order)")
            if blobs[p["sha256"]][1] != p["contentSize"]:
                raise Bad(f"{rec_name}: blob part's contentSize is not the size of blob {p['sha256']}")
            if p["size"] > encoded_length(p):
                raise Bad(f"{rec_name}: blob part's size exceeds its encoded length")
        total += p["size"]
    if inline_end != stub_span["size"]:
        raise Bad(f"{rec_name}: inline parts cover {inline_end} bytes, the stub has {stub_span['size']}")
    if total != r["size"]:
        raise Bad(f"{rec_name}: parts add up to {total} bytes, the record says {r['size']}")
    return parts


def rebuild(parts, stub, blobs, dump):
    """5.8: the full message: the parts in order, inline ones from the stub, blob ones from the blob's
    data (read again from the dump at the data offset where it was verified)."""
    out = []
    for p in parts:
        if p["type"] == "inline":
            out.append(stub[p["offset"] : p["offset"] + p["size"]])
        else:
            data_offset, size = blobs[p["sha256"]]
            dump.seek(data_offset)
            out.append(encode(dump.read(size), p))
    return b"".join(out)


def check_header(h, name):
    """5.2 and 13: kind "full" (base null) or, from version 3, "incremental" with base {runId, created}."""
    if h.get("kind") == "full":
        if h.get("base") is not None:
            raise Bad(f"{name}: a full dump with a base")
    elif h.get("kind") == "incremental":
        if h["version"] < 3:
            raise Bad(f"{name}: an incremental dump of version {h['version']} (incrementals are version 3+)")
        base = h.get("base")
        if not isinstance(base, dict) or not isinstance(base.get("runId"), str) or not isinstance(base.get("created"), str):
            raise Bad(f"{name}: an incremental without base {{runId, created}}")
    else:
        raise Bad(f"{name}: kind is neither \"full\" nor \"incremental\"")


def check_flag_table(r, kind, name, state):
    """13 (version 3): FlagTableRecord {type "flags", user, mailbox, seq, entries [{uid, flags,
    keywords}]}: seq is the n of its name (1, 2, ... per mailbox), at most 2000 entries, UIDs ascending
    across the tables of the mailbox."""
    if r.get("type") != "flags" or r.get("user") != kind[1] or r.get("mailbox") != kind[2] or r.get("seq") != kind[3]:
        raise Bad(f"{name}: type, user, mailbox or seq do not match the member name")
    if kind[3] != state["flag_seq"] + 1:
        raise Bad(f"{name}: flag table {kind[3]} follows flag table {state['flag_seq']} of its mailbox")
    entries = r.get("entries")
    if not isinstance(entries, list) or len(entries) > MAX_FLAG_ENTRIES:
        raise Bad(f"{name}: entries is not a list of at most {MAX_FLAG_ENTRIES}")
    for e in entries:
        if not isinstance(e, dict) or not is_int(e.get("uid"), 1, MAX_UID) or not is_strings(e.get("flags")) or not is_strings(e.get("keywords")):
            raise Bad(f"{name}: an entry is not {{uid, flags, keywords}}")
        if e["uid"] <= state["flag_uid"]:
            raise Bad(f"{name}: UID {e['uid']} is not above UID {state['flag_uid']} (UIDs must ascend)")
        # Inferred from 13 ("uidSet ... the UIDs present when the mailbox was read"): a flag table holds
        # flags of messages present, so its UIDs are in the mailbox's uidSet.
        if state["uid_set"] is not None and not in_uid_set(state["uid_set"], e["uid"]):
            raise Bad(f"{name}: UID {e['uid']} is not in the mailbox's uidSet")
        state["flag_uid"] = e["uid"]
    state["flag_seq"] = kind[3]


def verify(path, extract=None):
    expected_toc = []
    counts = {"users": 0, "mailboxes": 0, "messages": 0, "blobs": 0, "messageBytes": 0}
    next_id = 1
    header = trailer = toc = None
    pending = None  # (kind, span, data) of a body or stub until its record
    user = mailbox = None
    last_uid = 0
    mbox = {}  # the current mailbox: uidNext, uidSet ranges, flag table seq and last flag UID
    blobs = {}  # version 2: sha256 -> (data offset, size) of every blob read, for rebuilding messages
    content = []  # version 4: (dataOffset, size, sha256) of every body, stub and blob, for the digest
    with tarfile.open(path, mode="r|") as tar, open(path, "rb") as dump:
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
                raise Bad(f"{info.name}: a body or stub must be followed by its record")
            if header is not None and header["version"] >= 4 and kind[0] in ("body", "stub", "blob"):
                content.append((info.offset_data, info.size, digest))
            if kind[0] == "header":
                if header is not None:
                    raise Bad(f"{info.name}: a second header")
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
                check_header(header, info.name)
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
                # 13: in an incremental, the record of a selectable mailbox carries `reset` (boolean)
                # and `uidSet` (the expunges are read from it); a \NoSelect level (selectable false)
                # has no messages and carries neither. A full dump's carry uidSet since mailvault 0.3.
                if header["kind"] == "incremental" and r.get("selectable") is not False and ("reset" not in r or "uidSet" not in r):
                    raise Bad(f"{info.name}: mailbox record of an incremental without reset or uidSet")
                if "reset" in r and not isinstance(r["reset"], bool):
                    raise Bad(f"{info.name}: reset is not a boolean")
                mailbox, last_uid = kind[2], 0
                mbox = {"uidNext": r["uidNext"], "uid_set": parse_uid_set(r["uidSet"], info.name) if "uidSet" in r else None,
                        "flag_seq": 0, "flag_uid": 0}
                counts["mailboxes"] += 1
                expected_toc.append(dict(id=next_id, type="mailbox", user=user, mailbox=mailbox, **span))
                next_id += 1
            elif kind[0] == "flags":
                # 13 (version 3): flag tables are new member names, unknown (corrupt) before version 3;
                # 8 and 13: they belong in incremental dumps only, a flag table in a full dump is corrupt.
                if header["version"] < 3:
                    raise Bad(f"{info.name}: a flag table in a version {header['version']} dump")
                if header["kind"] != "incremental":
                    raise Bad(f"{info.name}: a flag table in a full dump")
                # 13: after the mailbox record, before its messages.
                if (kind[1], kind[2]) != (user, mailbox) or last_uid:
                    raise Bad(f"{info.name}: flag table not after its mailbox record and before its messages")
                check_flag_table(record(data, info.name), kind, info.name, mbox)
                expected_toc.append(dict(id=0, type="flags", user=user, mailbox=mailbox, **span))
            elif kind[0] in ("body", "stub"):
                if kind[0] == "stub" and header["version"] < 2:
                    raise Bad(f"{info.name}: a stub in a version 1 dump")  # 8
                if (kind[1], kind[2]) != (user, mailbox) or kind[3] <= last_uid:
                    raise Bad(f"{info.name}: message out of order")
                pending = (kind, span, data)
            elif kind[0] == "record":
                if not pending or pending[0][1:] != kind[1:]:
                    raise Bad(f"{info.name}: record without its body or stub")
                bkind, bspan, body = pending
                pending = None
                r = record(data, info.name)
                if bkind[0] == "stub":
                    # 5.8: rebuild the full message from the stub and the blobs; its size and sha256
                    # are the record's.
                    body = rebuild(check_parts(r, bspan, blobs, info.name), body, blobs, dump)
                    if len(body) != r["size"] or hashlib.sha256(body).hexdigest() != r["sha256"]:
                        raise Bad(f"{bspan['member']}: rebuilt message does not match its record (size or sha256)")
                else:
                    if header["version"] >= 2 and ("parts" in r or "stub" in r):
                        raise Bad(f"{info.name}: record of a .eml body with stub or parts")
                    if r["size"] != bspan["size"] or r["sha256"] != bspan["sha256"]:
                        raise Bad(f"{bspan['member']}: body does not match its record")
                # 13 ("Mailbox uidSet"): no message at or above uidNext; inferred: a message in the dump
                # was present when the mailbox was read, so its UID is in uidSet.
                if mbox["uid_set"] is not None and (r["uid"] >= mbox["uidNext"] or not in_uid_set(mbox["uid_set"], r["uid"])):
                    raise Bad(f"{info.name}: UID {r['uid']} is not below uidNext and in the mailbox's uidSet")
                last_uid = kind[3]
                counts["messages"] += 1
                counts["messageBytes"] += r["size"]  # full message sizes (13, version 2)
                expected_toc.append(dict(
                    id=next_id, type="message", **bspan, recordOffset=span["offset"], recordDataOffset=span["dataOffset"],
                    recordSize=span["size"], recordSha256=span["sha256"], user=r["user"], mailbox=r["mailbox"], uid=r["uid"],
                    flags=r["flags"], keywords=r["keywords"], internalDate=r["internalDate"], summary=r["summary"]))
                print(next_id, r["user"], r["mailbox"], r["uid"], r["size"])
                if extract:
                    os.makedirs(extract, exist_ok=True)
                    with open(os.path.join(extract, f"{next_id}.eml"), "wb") as out:
                        out.write(body)
                next_id += 1
            elif kind[0] == "blob":
                # 5.7: content hashes to the name; version 2+: each blob at most once per dump.
                if digest != kind[1]:
                    raise Bad(f"{info.name}: blob content does not match its name")
                if header["version"] >= 2 and kind[1] in blobs:
                    raise Bad(f"{info.name}: the same blob a second time")
                blobs[kind[1]] = (info.offset_data, info.size)
                counts["blobs"] += 1
                expected_toc.append(dict(id=0, type="blob", **span))
            elif kind[0] == "toc":
                if toc is not None:
                    raise Bad(f"{info.name}: a second toc")
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
    if trailer["version"] != header["version"]:  # 5.6: the trailer's version equals the header's
        raise Bad("trailer version is not the header's")
    algorithm = "sha256-hashed-content" if header["version"] >= 4 else "sha256"
    if trailer["digest"]["algorithm"] != algorithm:
        raise Bad(f"trailer digest algorithm is not {algorithm}")
    if archive_digest(path, trailer_offset, content) != trailer["digest"]["value"]:
        raise Bad("trailer digest mismatch")
    print("OK", json.dumps(counts, sort_keys=True))


if __name__ == "__main__":
    if len(sys.argv) not in (2, 4) or (len(sys.argv) == 4 and sys.argv[2] != "--extract"):
        print("usage: read_dump.py DUMP [--extract DIR]", file=sys.stderr)
        sys.exit(64)
    if not os.path.isfile(sys.argv[1]):
        # formats/README.md: 66 = input not found (a pipe cannot be read twice: see the docstring).
        print(f"read_dump.py: {sys.argv[1]}: no such file (give an uncompressed dump file)", file=sys.stderr)
        sys.exit(66)
    try:
        verify(sys.argv[1], sys.argv[3] if len(sys.argv) == 4 else None)
    except (Bad, tarfile.TarError, KeyError, ValueError) as e:
        print(f"read_dump.py: {e}", file=sys.stderr)
        sys.exit(65)
