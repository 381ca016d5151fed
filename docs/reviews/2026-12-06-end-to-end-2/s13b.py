from pop import *
import sys, time, threading
tag = sys.argv[1]
n = f'purgeb{tag}'; u = adduser(n, 'mdbox'); uf = usersfile([u])
big = lambda i: b'Subject: big %d\r\n\r\n' % i + (b'y' * 998 + b'\r\n') * 1500
lmtp(n, [big(i) if i % 3 == 0 else b'Subject: s\r\n\r\nsmall\r\n' for i in range(600)])
stop = False
def churn():
    c = imap(n)
    while not stop:
        c.select('INBOX'); t, d = c.uid('SEARCH', 'ALL'); uids = d[0].split()
        if len(uids) < 100: lmtp(n, [big(i) for i in range(100)])
        c.uid('STORE', uids[0].decode(), '+FLAGS', '(\\Deleted)'); c.expunge()
        doveadm('purge', '-u', n)
    c.logout()
th = threading.Thread(target=churn); th.start()
codes = {}
for i in range(12):
    code, o, err = mv('backup', '--users-file', uf, '--user', n, '-o', f'/tmp/adv2/s13b{tag}.mvd')
    codes[code] = codes.get(code, 0) + 1
    if code not in (0,): print(i, code, err.strip()[-300:])
stop = True; th.join(); print(codes)
