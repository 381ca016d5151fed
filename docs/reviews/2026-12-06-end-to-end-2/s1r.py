from pop import *
import pickle, sys
fps = pickle.load(open('/tmp/adv2/s1fp.pkl','rb'))
tag = sys.argv[1]
plan = [('smaildir','maildir'),('smaildirfs','maildir-fs'),('ssdbox','maildir-fs'),('smdbox','maildir-fs'),('ssdbox','maildir')]
for src, tprof in plan:
    tn = f'r{tag}{src}{tprof.replace("-","")}'
    t = adduser(tn, tprof)
    uf = usersfile([t])
    code, out, err = mv('restore', '/tmp/adv2/s1.mvd', '--users-file', uf, '--user', src, '--to-user', tn)
    print('==', src, '->', tn, tprof, 'exit', code, err.strip()[-1500:])
    fp = fingerprint(tn)
    d = diff(fps[src], fp)
    # GUID diffs counted separately
    print('\n'.join(d[:40]), f'... {len(d)} diffs')
