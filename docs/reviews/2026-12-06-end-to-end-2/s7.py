from pop import *
import pickle, sys, time
tag = sys.argv[1]; prof = sys.argv[2]
n = f'live{tag}'; u = adduser(n, prof); uf = usersfile([u])
c = imap(n)
for f in ['Work', 'Gone', 'Gone2', 'Gone3', 'Empty']: c.create(qm(f)); c.subscribe(qm(f))
for i in range(10):
    append(c, 'INBOX', b'Subject: in%d\r\nMessage-ID: <in%d@x>\r\n\r\nbody\r\n' % (i, i), '\\Seen kwX', 1600000000 + i)
    for f in ['Work', 'Gone', 'Gone2', 'Gone3', 'Empty']:
        append(c, f, b'Subject: %s %d\r\nMessage-ID: <%s%d@x>\r\n\r\nbody\r\n' % (f.encode(), i, f.encode(), i), '\\Flagged', 1600000000 + i)
c.logout()
time.sleep(2.2)
dump = f'/tmp/adv2/s7{tag}.mvd'
print('backup', mv('backup', '--users-file', uf, '--user', n, '-o', dump)[0])
fp0 = fingerprint(n)
# a watcher client that has INBOX selected
w = imap(n); w.select('INBOX')
c = imap(n)
c.select('INBOX'); c.uid('STORE', '8:10', '+FLAGS', '(\\Deleted)'); c.expunge()
c.select('Empty'); c.uid('STORE', '1:*', '+FLAGS', '(\\Deleted)'); c.expunge()
c.select('INBOX')
c.delete('Gone'); c.delete('Gone2'); c.create('Gone2'); append(c, 'Gone2', b'Subject: newgone2\r\n\r\nx\r\n', '', 1700000000)
c.delete('Gone3'); c.create('Gone3')
c.logout()
fp1 = fingerprint(n)
R = lambda *a: mv('restore', dump, '--users-file', uf, '--user', n, *a)
for args in [('-m', 'INBOX', '--uid', '8:10'), ('-m', 'INBOX', '--uid', '8:10'), ('-m', 'INBOX', '--uid', '1'), ('-m', 'Empty'), ('-m', 'Empty'), ('-m', 'Gone'), ('-m', 'Gone'), ('-m', 'Gone2'), ('-m', 'Gone2'), ('-m', 'Gone3')]:
    code, o, err = R(*args); print(args, code, err.strip()[-200:])
w.noop(); print('watcher untagged EXISTS', w.untagged_responses.get('EXISTS'))
t, d = w.uid('FETCH', '1:*', '(UID FLAGS)'); print('watcher sees', [x.decode() for x in d][-4:])
w.logout()
fp2 = fingerprint(n)
for b in ['INBOX', 'Empty', 'Gone', 'Gone2', 'Gone3']:
    o = fp0['boxes'][b]; m = fp1['boxes'].get(b); a = fp2['boxes'][b]
    print(f"== {b}: before uv={o['uidvalidity']} next={o['uidnext']} uids={sorted(o['msgs'])}")
    if m: print(f"   after-change uv={m['uidvalidity']} next={m['uidnext']} uids={sorted(m['msgs'])}")
    print(f"   after-restore uv={a['uidvalidity']} next={a['uidnext']} uids={sorted(a['msgs'])} guid={'same' if a['guid']==o['guid'] else 'new'}")
    shas0 = sorted(x['sha'] for x in o['msgs'].values()); shas2 = sorted(x['sha'] for x in a['msgs'].values())
    if b != 'Gone2': print('   same content multiset:', shas0 == shas2, 'flags same:', sorted(tuple(x['flags']) for x in o['msgs'].values()) == sorted(tuple(x['flags']) for x in a['msgs'].values()))
    else: print('   count', len(shas2))
pickle.dump((fp0, fp1, fp2), open(f'/tmp/adv2/s7{tag}.pkl', 'wb'))
