from pop import *
import pickle, sys, time
tag = sys.argv[1]; prof = sys.argv[2]
n = f'nm{tag}'; u = adduser(n, prof); uf = usersfile([u])
c = imap(n)
names = ['Work', 'work', 'WORK', 'Inbox/sub', 'inbox2', 'INBOXX', 'a b/c d', ' leading space', 'trailing space ', 'x'*200, 'über/ÜBER', 'Ω/ω', '\u00e9t\u00e9', 'e\u0301te\u0301', '&AGE-']
for f in names:
    t, d = c.create(qm(f)); print('create', repr(f), t, d if t != 'OK' else '')
    if t == 'OK':
        c.subscribe(qm(f)); append(c, f, b'Subject: ' + f.encode() + b'\r\n\r\nb\r\n', '\\Seen', 1600000000)
t, d = c.create('"&AGE-"'); print('raw mutf7 &AGE-', t, d)
t, d = c.create('"bad&name"'); print('raw bad&name', t, d)
c.logout()
print(doveadm('mailbox', 'list', '-u', n).stdout.decode())
fp = fingerprint(n)
dump = f'/tmp/adv2/s8{tag}.mvd'
code, o, err = mv('backup', '--users-file', uf, '--user', n, '-o', dump); print('backup', code, err.strip()[-500:])
for tprof in ['maildir', 'maildir-fs']:
    tn = f'nr{tag}{tprof.replace("-","")}'; t = adduser(tn, tprof); tf = usersfile([t])
    code, o, err = mv('restore', dump, '--users-file', tf, '--user', n, '--to-user', tn); print('restore ->', tprof, code, err.strip()[-400:])
    d = diff(fp, fingerprint(tn)); print(len(d), 'diffs', '\n'.join(d[:12]))
