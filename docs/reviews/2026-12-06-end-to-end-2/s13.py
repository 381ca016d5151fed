from pop import *
import sys, time, threading
tag = sys.argv[1]
n = f'purge{tag}'; u = adduser(n, 'mdbox', 'mdbox:~/mdbox'); uf = usersfile([u])
big = lambda i: b'Subject: big %d\r\n\r\n' % i + (b'y' * 998 + b'\r\n') * 1500
results = []
for round in range(6):
    lmtp(n, [big(i) for i in range(60)])
    c = imap(n); c.select('INBOX'); t, d = c.uid('SEARCH', 'ALL'); uids = d[0].split()
    c.uid('STORE', b','.join(uids[::2]).decode(), '+FLAGS', '(\\Deleted)'); c.expunge(); c.logout()
    # start backup, then purge shortly after
    p = subprocess.Popen(['/work/adv2/bin/run.js', 'backup', '--users-file', uf, '--user', n, '-o', f'/tmp/adv2/s13{tag}.mvd'], stderr=subprocess.PIPE)
    time.sleep(0.35 + 0.05 * round)
    doveadm('purge', '-u', n)
    err = p.stderr.read().decode(); p.wait()
    print('round', round, 'exit', p.returncode, err.strip()[-250:])
