from pop import *
import pickle, sys
tag, rtag = sys.argv[1], sys.argv[2]
files = sys.argv[3].split(',')
which = int(sys.argv[4])
W = f'/tmp/adv2/s2{tag}'
fps = pickle.load(open(f'{W}/fps.pkl', 'rb'))[which]
for src in fps:
    tprof = 'maildir' if src.endswith('maildir') else 'maildir-fs'
    tn = f'{rtag}{src}'
    t = adduser(tn, tprof); uf = usersfile([t])
    code, out, err = mv('restore', *[f'{W}/{f}' for f in files], '--users-file', uf, '--user', src, '--to-user', tn)
    print('==', src, '->', tn, tprof, 'exit', code, err.strip()[-800:])
    d = diff(fps[src], fingerprint(tn))
    print('\n'.join(d[:30]), f'... {len(d)} diffs')
