from pop import *
import pickle, sys, time, shutil
tag = sys.argv[1]
profs = sys.argv[2].split(',')
W = f'/tmp/adv2/s2{tag}'; os.makedirs(W, exist_ok=True)
users = []
for prof in profs:
    n = f'i{tag}{prof.replace("-","")}'
    users.append(adduser(n, prof))
uf = usersfile(users, f'{W}/users')
def B(*extra, out):
    code, o, err = mv('backup', '--users-file', uf, '--all-users', '--attachment-dir', INFO['att'], '-o', out, *extra)
    print('backup', out, code, err.strip()[-600:]); return code
M, blob = __import__('msgs').weird_messages()
for u in users:
    n = u['name']; c = imap(n)
    for f in ['Work', 'Work/Old', 'Trash', 'Ren', 'Ren/Child', 'Del']:
        c.create(qm(f)); c.subscribe(qm(f))
    for i in range(30):
        append(c, 'INBOX', b'Subject: m%d\r\nMessage-ID: <m%d@x>\r\n\r\nbody %d\r\n' % (i, i, i), '\\Seen' if i % 2 else '', 1600000000 + i * 100)
    for f in ['Work', 'Work/Old', 'Ren', 'Ren/Child', 'Del']:
        for i in range(5): append(c, f, M['b64_odd'].replace(b'oddlen', b'oddlen %d' % i), '$Label1' if i % 2 else '', 1600001000 + i)
    c.logout()
time.sleep(2.5)
B('--state-file', f'{W}/st.json', out=f'{W}/full.mvd')
fp0 = {u['name']: fingerprint(u['name']) for u in users}
# changes, immediately (same second as backup end)
for u in users:
    n = u['name']; c = imap(n)
    c.select('INBOX')
    c.uid('STORE', '1:5', '+FLAGS', '(\\Flagged kwA)')
    c.uid('STORE', '2', '-FLAGS', '(\\Seen)')
    c.uid('STORE', '7:9', '+FLAGS', '(\\Deleted)'); c.expunge()
    append(c, 'INBOX', b'Subject: new1\r\n\r\nnew\r\n', '\\Seen', 1700000000)
    c.rename(qm('Ren'), qm('Renamed'))
    c.delete(qm('Del'))
    c.create(qm('Fresh')); c.subscribe(qm('Fresh')); append(c, 'Fresh', b'Subject: fresh\r\n\r\nf\r\n', '', 1700000100)
    c.unsubscribe(qm('Work/Old'))
    c.select(qm('Work')); c.uid('STORE', '1:*', '+FLAGS', '(\\Answered)')
    c.logout()
    lmtp(n, [b'Subject: via lmtp\r\n\r\nhello\r\n'])
B('--since', f'@{W}/st.json', '--state-file', f'{W}/st.json', out=f'{W}/inc1.mvd')
fp1 = {u['name']: fingerprint(u['name']) for u in users}
for u in users:
    n = u['name']; c = imap(n)
    c.select('INBOX')
    c.uid('STORE', '1', '-FLAGS', '(kwA \\Flagged)')
    c.uid('STORE', '3', '+FLAGS', '(\\Deleted)'); c.expunge()
    c.rename(qm('Renamed'), qm('Work/Renamed2'))
    c.create(qm('Del')); c.subscribe(qm('Del')); append(c, 'Del', b'Subject: reborn\r\n\r\nr\r\n', '', 1700000200)
    c.logout()
time.sleep(2.5)
B('--since', f'@{W}/st.json', '--state-file', f'{W}/st.json', out=f'{W}/inc2.mvd')
fp2 = {u['name']: fingerprint(u['name']) for u in users}
pickle.dump((fp0, fp1, fp2), open(f'{W}/fps.pkl', 'wb'))
