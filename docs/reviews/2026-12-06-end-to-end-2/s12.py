from pop import *
import sys, time, threading, random
tag = sys.argv[1]; prof = sys.argv[2]; N = int(sys.argv[3])
n = f'conc{tag}'; u = adduser(n, prof); uf = usersfile([u])
W = f'/tmp/adv2/s12{tag}'; os.makedirs(W, exist_ok=True)
big = b'Subject: big\r\n\r\n' + (b'x' * 998 + b'\r\n') * 3000
lmtp(n, [b'Subject: t%d\r\n\r\n%d\r\n' % (i, i) if i % 50 else big for i in range(N)])
c = imap(n); c.create('Other'); c.logout()
time.sleep(2.1)
stop = False
def churn():
    rnd = random.Random(1); c = imap(n); k = 0
    while not stop:
        c.select('INBOX'); t, d = c.uid('SEARCH', 'ALL'); uids = d[0].split()
        if uids:
            c.uid('STORE', rnd.choice(uids).decode(), '+FLAGS', '(\\Flagged kwZ)')
            c.uid('STORE', rnd.choice(uids).decode(), '-FLAGS', '(\\Seen)')
            c.uid('STORE', rnd.choice(uids).decode(), '+FLAGS', '(\\Deleted)'); c.expunge()
            c.uid('MOVE', rnd.choice(uids).decode(), 'Other')
        append(c, "INBOX", b"Subject: during %d\r\n\r\nx\r\n" % k, "", None); k += 1
        if prof == "mdbox" and k % 5 == 0: doveadm("purge", "-u", n)
    c.logout()
th = threading.Thread(target=churn); th.start()
B = lambda *a: mv('backup', '--users-file', uf, '--user', n, *a)
for i in range(3):
    r = B('-o', f'{W}/full{i}.mvd', '--state-file', f'{W}/st{i}'); print('full during churn', r[0], r[2].strip()[-300:])
stop = True; th.join()
time.sleep(2.2)
live = fingerprint(n)
for i in range(3):
    r = B('--since', f'@{W}/st{i}', '-o', f'{W}/inc{i}.mvd', '--state-file', f'{W}/st{i}'); print('inc', r[0], r[2].strip()[-200:])
    print('verify', mv('verify', f'{W}/full{i}.mvd')[0], mv('verify', f'{W}/inc{i}.mvd')[0])
    tn = f'concr{tag}{i}'; t = adduser(tn, 'maildir' if prof == 'maildir' else 'maildir-fs'); tf = usersfile([t])
    r = mv('restore', f'{W}/full{i}.mvd', f'{W}/inc{i}.mvd', '--users-file', tf, '--user', n, '--to-user', tn); print('restore', r[0], r[2].strip()[-200:])
    d = diff(live, fingerprint(tn)); print('  ', len(d), 'diffs', '\n'.join(d[:8]))
