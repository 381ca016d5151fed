import imaplib, json, os, subprocess, hashlib, re, socket, time, secrets, sys
INFO = json.load(open(os.environ.get('DVINFO', '/tmp/adv2/dv1.json')))
D = INFO['dir']
LOC = {'maildir': 'maildir:~/Maildir', 'maildir-fs': 'maildir:~/Maildir:LAYOUT=fs:UTF-8', 'sdbox': 'sdbox:~/sdbox', 'mdbox': 'mdbox:~/mdbox'}
ENV = {'PATH': '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C.UTF-8'}

def adduser(name, profile='maildir', loc=None):
    home = f"{D}/mail/{name}"
    os.makedirs(home, exist_ok=False); os.chown(home, 5000, 5000); os.chmod(home, 0o700)
    loc = loc or LOC[profile]
    with open(f"{D}/etc/users/{name}", 'w') as f:
        f.write(f"{name}:{{PLAIN}}pw:5000:5000::{home}::userdb_mail={loc}\n")
    os.chmod(f"{D}/etc/users/{name}", 0o644)
    return dict(name=name, home=home, loc=loc.replace('~', home))

def usersfile(users, path=None):
    path = path or f"/tmp/adv2/users-{secrets.token_hex(4)}"
    with open(path, 'w') as f:
        for u in users: f.write(f"{u['name']}:x::::{u['home']}::userdb_mail={u['loc']}\n")
    return path

def imap(user):
    c = imaplib.IMAP4('127.0.0.1', INFO['port'])
    c.login(f"{user}*{INFO['master']}", INFO['masterPw'])
    return c

def doveadm(*args, input=None):
    r = subprocess.run(['doveadm', '-c', INFO['conf'], *args], input=input, capture_output=True, env=ENV)
    return r

def mv(*args, input=None, env=None):
    e = dict(os.environ); e.update(env or {})
    r = subprocess.run(['/work/adv2/bin/run.js', *args], input=input, capture_output=True, env=e)
    return r.returncode, r.stdout, r.stderr.decode('utf8', 'replace')

def lmtp(user, raws):
    s = socket.socket(socket.AF_UNIX); s.connect(INFO['lmtp']); f = s.makefile('rwb')
    def rd():
        lines = []
        while True:
            l = f.readline(); lines.append(l)
            if l[3:4] != b'-': return lines
    rd()
    def cmd(c):
        f.write(c + b'\r\n'); f.flush(); r = rd(); 
        if not r[-1].startswith(b'2') and not r[-1].startswith(b'3'): raise Exception(r)
        return r
    cmd(b'LHLO adv')
    for raw in raws:
        cmd(b'MAIL FROM:<a@b>'); cmd(b'RCPT TO:<' + user.encode() + b'>'); cmd(b'DATA')
        data = raw.replace(b'\r\n', b'\n').replace(b'\n', b'\r\n') if False else raw
        # dot-stuff and CRLF: lmtp needs CRLF lines
        lines = re.split(rb'\r?\n', data)
        out = b'\r\n'.join((b'.' + l if l.startswith(b'.') else l) for l in lines)
        if not out.endswith(b'\r\n'): out += b'\r\n'
        f.write(out + b'.\r\n'); f.flush(); r = rd()
        if not r[-1].startswith(b'2'): raise Exception(r)
    cmd(b'QUIT'); s.close()

def qm(name):
    # quote mailbox name for imaplib (utf-8 -> mUTF-7)
    return '"' + enc7(name).replace('\\', '\\\\').replace('"', '\\"') + '"'

def enc7(s):
    res = []; buf = []
    def flush():
        if buf:
            import base64
            b = ''.join(buf).encode('utf-16-be')
            res.append('&' + base64.b64encode(b).decode().rstrip('=').replace('/', ',') + '-'); buf.clear()
    for ch in s:
        if 0x20 <= ord(ch) <= 0x7e:
            flush(); res.append('&-' if ch == '&' else ch)
        else: buf.append(ch)
    flush(); return ''.join(res)

def dec7(s):
    import base64
    def rep(m):
        t = m.group(1)
        if t == '': return '&'
        t = t.replace(',', '/'); t += '=' * (-len(t) % 4)
        return base64.b64decode(t).decode('utf-16-be')
    return re.sub(r'&([^-]*)-', rep, s)

def parse_list(lines):
    out = []
    for l in lines:
        if l is None: continue
        if isinstance(l, tuple): l = l[0] + b' "' + l[1].replace(b'\\', b'\\\\').replace(b'"', b'\\"') + b'"'
        m = re.match(rb'\(([^)]*)\) (NIL|"(?:[^"\\]|\\.)*") (.*)$', l)
        flags = m.group(1).decode().split(); name = m.group(3)
        if name.startswith(b'"'): name = re.sub(rb'\\(.)', rb'\1', name[1:-1])
        out.append((flags, dec7(name.decode())))
    return out

def fingerprint(user, with_guid=True):
    c = imap(user)
    typ, lst = c.list('""', '*')
    boxes = parse_list(lst)
    typ, sl = c.lsub('""', '*')
    subs = sorted(n for f, n in parse_list(sl))
    res = {'subs': subs, 'boxes': {}}
    for flags, name in boxes:
        if '\\Noselect' in flags or '\\NonExistent' in flags:
            res['boxes'][name] = 'noselect'; continue
        typ, d = c.select(qm(name), readonly=True)
        if typ != 'OK': res['boxes'][name] = 'EXAMINE FAILED ' + str(d); continue
        uv = c.untagged_responses.get('UIDVALIDITY', [b'?'])[0].decode()
        un = c.untagged_responses.get('UIDNEXT', [b'?'])[0].decode()
        msgs = {}
        if int(d[0]) > 0:
            typ, data = c.uid('FETCH', '1:*', '(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])')
            for item in data:
                if isinstance(item, tuple):
                    meta = item[0].decode('latin1')
                    uid = int(re.search(r'UID (\d+)', meta).group(1))
                    fl = re.search(r'FLAGS \(([^)]*)\)', meta).group(1).split()
                    fl = sorted(x for x in fl if x != '\\Recent')
                    idate = re.search(r'INTERNALDATE "([^"]*)"', meta).group(1)
                    size = int(re.search(r'RFC822.SIZE (\d+)', meta).group(1))
                    msgs[uid] = dict(flags=fl, idate=idate, size=size, sha=hashlib.sha256(item[1]).hexdigest()[:16])
        if with_guid:
            r = doveadm('-f', 'tab', 'mailbox', 'status', '-u', user, 'guid', name)
            g = r.stdout.decode().split('\n')[1] if r.returncode == 0 else 'ERR'
        else: g = None
        res['boxes'][name] = dict(uidvalidity=uv, uidnext=un, guid=g, msgs=msgs)
    c.logout()
    return res

def diff(a, b, path=''):
    out = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a: out.append(f"{path}/{k}: missing in first")
            elif k not in b: out.append(f"{path}/{k}: missing in second")
            else: out += diff(a[k], b[k], f"{path}/{k}")
    elif a != b: out.append(f"{path}: {a!r} != {b!r}")
    return out

def append(c, box, raw, flags='', date=None):
    d = imaplib.Time2Internaldate(date) if date else None
    typ, data = c.append(qm(box), f'({flags})' if flags else None, d, raw)
    if typ != 'OK': raise Exception(f'APPEND {box} {data}')
    m = re.search(rb'APPENDUID (\d+) (\d+)', data[0])
    return int(m.group(2)) if m else None
