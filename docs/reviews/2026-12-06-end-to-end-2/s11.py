from pop import *
from msgs import sis_messages
import sys
tag = sys.argv[1]
M = sis_messages()
us = []
for prof in ['maildir', 'sdbox', 'mdbox']:
    n = f'sis{tag}{prof}'; us.append(adduser(n, prof)); c = imap(n)
    for i, (k, raw) in enumerate(M.items()):
        try: append(c, 'INBOX', raw, '', 1500000000 + i)
        except Exception as e: print('append fail', k, e)
    c.logout()
    lmtp(n, list(M.values()))
uf = usersfile(us)
fps = {u['name']: fingerprint(u['name']) for u in us}
# check Dovecot served bytes == appended for reference
c = imap(us[1]['name']); c.select('INBOX', readonly=True)
for i, (k, raw) in enumerate(M.items()):
    t, d = c.uid('FETCH', str(i+1), '(BODY.PEEK[])')
    if d[0][1] != raw: print('dovecot sdbox altered', k)
c.logout()
for extra, name in [([], 'plain'), (['--dedup-attachments=1k'], 'dedup')]:
    dump = f'/tmp/adv2/s11{tag}-{name}.mvd'
    code, o, err = mv('backup', '--users-file', uf, '--all-users', '--attachment-dir', INFO['att'], '-o', dump, *extra)
    print('backup', name, code, err.strip()[-300:])
    for u in us:
        tn = f'sr{tag}{name}{u["name"]}'; t = adduser(tn, 'maildir'); tf = usersfile([t])
        code, o, err = mv('restore', dump, '--users-file', tf, '--user', u['name'], '--to-user', tn)
        d = diff(fps[u['name']], fingerprint(tn))
        print('  restore', u['name'], code, err.strip()[-120:], len(d), 'diffs', d[:5])
