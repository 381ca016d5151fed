from pop import *
import pickle, sys
from msgs import weird_messages
tag = sys.argv[1]
M, blob = weird_messages()
us = []
for prof in ['maildir', 'sdbox', 'mdbox']:
    n = f'w{tag}{prof}'; us.append(adduser(n, prof)); c = imap(n)
    c.create('Other')
    for i, (k, raw) in enumerate(M.items()):
        append(c, 'INBOX', raw, '\\Seen', 1500000000 + i)
        append(c, 'Other', raw, '', 1500000000 + i)
    c.logout()
    lmtp(n, [m for k, m in M.items() if k.startswith('b64') or k.startswith('mime')])
uf = usersfile(us, f'/tmp/adv2/s5{tag}users')
fps = {u['name']: fingerprint(u['name']) for u in us}
for extra, name in [([], 'plain'), (['--dedup-attachments=1k'], 'dedup'), (['--dedup-attachments=1k', '--compress', 'zstd'], 'dedupz')]:
    dump = f'/tmp/adv2/s5{tag}-{name}.mvd'
    code, o, err = mv('backup', '--users-file', uf, '--all-users', '--attachment-dir', INFO['att'], '-o', dump, *extra)
    print('backup', name, code, err.strip()[-300:])
    v = mv('verify', dump); print('verify', v[0], v[2].strip()[-200:])
    for u in us:
        tn = f'x{name}{u["name"]}'; t = adduser(tn, 'maildir'); tf = usersfile([t])
        code, o, err = mv('restore', dump, '--users-file', tf, '--user', u['name'], '--to-user', tn)
        d = diff(fps[u['name']], fingerprint(tn))
        print('  restore', u['name'], code, err.strip()[-150:], len(d), 'diffs', d[:5])
