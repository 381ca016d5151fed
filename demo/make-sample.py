#!/usr/bin/env python3
"""Writes demo/mail/<user>/Maildir: a small Maildir in the format Dovecot 2.3 writes (dovecot-uidlist v3,
dovecot-keywords, subscriptions v2, ',S=,W=' names, Maildir++ folders with mUTF-7 names).
Deterministic: rerunning it gives the same files and mtimes. Run from the repository root."""
import base64, os, shutil, hashlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'mail')
T0 = 1764000000  # 2025-11-24T16:00:00Z

def msg(n, frm, to, subject, body, date, extra_headers='', attach=None):
    h = f"From: {frm}\nTo: {to}\nSubject: {subject}\nDate: {date}\nMessage-ID: <demo-{n}@mailvault.example>\nMIME-Version: 1.0\n{extra_headers}"
    if attach is None:
        return (h + "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n" + body).encode()
    name, data = attach
    b64 = base64.b64encode(data).decode()
    lines = "\n".join(b64[i:i+76] for i in range(0, len(b64), 76))
    return (h + 'Content-Type: multipart/mixed; boundary="=_b1"\n\nThis is a MIME message.\n\n--=_b1\n'
            'Content-Type: text/plain; charset=utf-8\n\n' + body + '\n--=_b1\n'
            f'Content-Type: application/octet-stream; name="{name}"\nContent-Transfer-Encoding: base64\n'
            f'Content-Disposition: attachment; filename="{name}"\n\n{lines}\n--=_b1--\n').encode()

pdf = bytes((i * 37 + 11) % 256 for i in range(3000))
users = {
  'alice': [
    ('INBOX', 'INBOX', [
      (1, msg(1, 'Bob <bob@example.org>', 'alice@example.org', 'Lunch on Friday?', 'Shall we meet at noon?\n', 'Mon, 24 Nov 2025 16:00:00 +0000'), 'S', []),
      (2, msg(2, 'Carol <carol@example.org>', 'alice@example.org', 'Quarterly report', 'The report is attached.\n', 'Mon, 24 Nov 2025 17:00:00 +0000', attach=('report.bin', pdf)), 'FS', ['$Label1']),
      (4, msg(4, '=?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <jm@example.de>', 'alice@example.org', '=?utf-8?b?R3LDvMOfZSBhdXMgTcO8bmNoZW4=?=', 'Viele Grüße!\n', 'Tue, 25 Nov 2025 08:00:00 +0100'), '', []),
    ], 5),
    ('Archive/2025', '.Archive.2025', [
      (1, msg(5, 'Dave <dave@example.org>', 'alice@example.org', 'Invoice 2025-117', 'Paid, thanks.\n', 'Wed, 01 Jan 2025 09:00:00 +0000'), 'RS', ['Important']),
      (2, msg(6, 'Alice <alice@example.org>', 'team@example.org', 'Re: Invoice 2025-117', 'Forwarded to accounting.\n', 'Wed, 01 Jan 2025 10:00:00 +0000', attach=('report.bin', pdf)), 'S', ['$Label1', 'Important']),
    ], 3),
    ('Entwürfe', '.Entw&APw-rfe', [
      (1, msg(7, 'Alice <alice@example.org>', 'bob@example.org', 'Entwurf: Ünïcødé ✓', 'Noch nicht fertig…\n', 'Thu, 27 Nov 2025 12:00:00 +0000'), 'D', []),
    ], 2),
    ('Empty', '.Empty', [], 1),
  ],
  'bob': [
    ('INBOX', 'INBOX', [
      (1, msg(8, 'Alice <alice@example.org>', 'bob@example.org', 'Lunch on Friday?', 'Yes, noon works.\n', 'Mon, 24 Nov 2025 18:00:00 +0000'), 'RS', []),
      (2, msg(9, 'Newsletter <news@example.com>', 'bob@example.org', 'Your weekly digest', 'Nothing new this week.\n', 'Fri, 28 Nov 2025 06:00:00 +0000'), '', []),
    ], 3),
  ],
}
subs = {'alice': ['Archive', 'Archive\t2025', 'Entw&APw-rfe'], 'bob': []}

shutil.rmtree(ROOT, ignore_errors=True)
uv = 1764000100
seq = 0
for user, boxes in users.items():
    md = os.path.join(ROOT, user, 'Maildir')
    for name, d, messages, uidnext in boxes:
        path = md if d == 'INBOX' else os.path.join(md, d)
        for s in ('cur', 'new', 'tmp'):
            os.makedirs(os.path.join(path, s), exist_ok=True)
        if d != 'INBOX':
            open(os.path.join(path, 'maildirfolder'), 'w').close()
        kwnames = sorted({k for m in messages for k in m[3]})
        guid = hashlib.md5(f'{user}/{name}'.encode()).hexdigest()
        lines = [f'3 V{uv} N{uidnext} G{guid}']
        uv += 1
        for uid, data, flags, kws in messages:
            seq += 1
            base = f'{T0 + seq * 60}.M{seq * 1000}P{4242 + seq}.demo'
            size = len(data)
            vsize = size + data.count(b'\n') - data.count(b'\r\n')
            base += f',S={size},W={vsize}'
            letters = ''.join(chr(ord('a') + kwnames.index(k)) for k in kws)
            info = ''.join(sorted(flags + letters))
            sub = 'cur' if info else 'new'
            fn = base + (f':2,{info}' if info else '')
            fp = os.path.join(path, sub, fn)
            with open(fp, 'wb') as f:
                f.write(data)
            os.utime(fp, (T0 + seq * 60, T0 + seq * 60))  # mtime = INTERNALDATE = the time in the base name
            lines.append(f'{uid} :{base}')
        with open(os.path.join(path, 'dovecot-uidlist'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
        if kwnames:
            with open(os.path.join(path, 'dovecot-keywords'), 'w') as f:
                f.write(''.join(f'{i} {k}\n' for i, k in enumerate(kwnames)))
    with open(os.path.join(md, 'subscriptions'), 'w') as f:
        f.write('V\t2\n\n' + ''.join(s + '\n' for s in subs[user]))
    with open(os.path.join(md, 'dovecot-uidvalidity'), 'w') as f:
        f.write(f'{uv:08x}')
print('wrote', ROOT)
