import sys; sys.path.insert(0, '/tmp/adv2')
from mv import *
from msgs import weird_messages
FOLDERS = ['Entwürfe', 'emoji 📧 box', '中文/子文件夹', 'with space', 'R&D', 'pct%sign', 'star*name', 'quote"d', 'back\\slash', '.leadingdot', 'a/b/c/d/e/f/g/h/i/j/k/l', '&-amp', '&Jjo-literal', 'Ünïcødé ✓', 'INBOX.foo', 'INBOX/sub', 'tilde~', '~home']
KW = [f'kw{i}' for i in range(40)] + ['$Forwarded', '$MDNSent', 'Odd-Chars_.+=', 'a!b', 'Ünicode'.encode('utf-8').decode('latin1')[:0] or 'x#y']

def populate(user, lmtp_too=True, folders=FOLDERS, date0=1500000000):
    c = imap(user)
    made = []
    for f in folders:
        t, d = c.create(qm(f))
        if t == 'OK': made.append(f); c.subscribe(qm(f))
        else: print('CREATE failed', f, d)
    c.subscribe(qm('Ghost/NotThere'))
    M, blob = weird_messages()
    i = 0
    for k, raw in M.items():
        flags = ['\\Seen', '\\Answered', '\\Flagged', '\\Draft', '\\Deleted'][i % 5]
        try:
            append(c, 'INBOX', raw, flags, date0 + i * 3601)
        except Exception as e:
            print('APPEND failed', k, e)
        i += 1
    # all system flags + many keywords
    append(c, 'INBOX', b'Subject: allflags\r\n\r\nx\r\n', '\\Seen \\Answered \\Flagged \\Draft \\Deleted ' + ' '.join(KW), date0)
    for j, f in enumerate(made):
        append(c, f, b'Subject: in ' + f.encode() + b'\r\n\r\nbody\r\n', 'kw%d' % j, date0 + j)
        append(c, f, M['b64_odd'], '', date0 + j + 5)
    c.logout()
    if lmtp_too:
        lmtp(user, [M['8bit'], M['latin1hdr'], M['b64_badpad'], M['nested'], M['longline']])
    return made
