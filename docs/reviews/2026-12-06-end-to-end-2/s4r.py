from pop import *
import pickle, sys
tag = sys.argv[1]; dump = sys.argv[2]
fps = pickle.load(open('/tmp/adv2/s4/fp.pkl', 'rb'))
for src in fps:
    tn = f'{tag}{src}'; t = adduser(tn, 'maildir'); uf = usersfile([t])
    r = subprocess.run(['/usr/bin/time', '-f', '%M KB %e s', '/work/adv2/bin/run.js', 'restore', dump, '--users-file', uf, '--user', src, '--to-user', tn], capture_output=True)
    print('==', src, r.returncode, r.stderr.decode()[-400:])
    d = diff(fps[src], fingerprint(tn)); print('\n'.join(d[:10]), len(d), 'diffs')
