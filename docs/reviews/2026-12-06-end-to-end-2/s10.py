from pop import *
import pickle, sys, time, random
tag = sys.argv[1]; prof = sys.argv[2]; N = int(sys.argv[3])
rnd = random.Random(42)
n = f'many{tag}'; u = adduser(n, prof); uf = usersfile([u])
W = f'/tmp/adv2/s10{tag}'; os.makedirs(W, exist_ok=True)
t0 = time.time()
lmtp(n, [b'Subject: t%d\r\n\r\n%d\r\n' % (i, i) for i in range(N)])
print('delivered', N, time.time() - t0)
c = imap(n); c.select('INBOX'); c.uid('STORE', '1:*', '+FLAGS', '(\\Seen)'); c.logout()
time.sleep(2.1)
B = lambda *a: mv('backup', '--users-file', uf, '--user', n, *a)
r = B('--state-file', f'{W}/st', '-o', f'{W}/full.mvd'); print('full', r[0], r[2].strip()[-200:])
fps = [fingerprint(n)]
dumps = ['full.mvd']
for k in range(3):
    c = imap(n); c.select('INBOX')
    t, d = c.uid('SEARCH', 'ALL'); uids = [int(x) for x in d[0].split()]
    for uid in rnd.sample(uids, 15): c.uid('STORE', str(uid), '-FLAGS', '(\\Seen)')
    for uid in rnd.sample(uids, 15): c.uid('STORE', str(uid), '+FLAGS', '(kw%d $Junk)' % k)
    for uid in rnd.sample(uids, 5): c.uid('STORE', str(uid), '+FLAGS', '(\\Deleted)')
    c.expunge()
    c.logout()
    lmtp(n, [b'Subject: new %d %d\r\n\r\nx\r\n' % (k, i) for i in range(7)])
    if k == 1: time.sleep(2.1)
    r = B('--since', f'@{W}/st', '--state-file', f'{W}/st', '-o', f'{W}/inc{k}.mvd'); print('inc', k, r[0], r[2].strip()[-300:])
    dumps.append(f'inc{k}.mvd'); fps.append(fingerprint(n))
    tn = f'manyr{tag}{k}'; t = adduser(tn, prof if prof.startswith('maildir') else 'maildir'); tf = usersfile([t])
    r = mv('restore', *[f'{W}/{x}' for x in dumps], '--users-file', tf, '--user', n, '--to-user', tn); print('restore', r[0], r[2].strip()[-200:])
    d = diff(fps[-1], fingerprint(tn)); print('  ', len(d), 'diffs', d[:8])
