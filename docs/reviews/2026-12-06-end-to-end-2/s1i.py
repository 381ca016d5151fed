from pop import *
import pickle, sys
fps = pickle.load(open('/tmp/adv2/s1fp.pkl','rb'))
tag = sys.argv[1]
def norm(fp):
    out = {'subs': fp['subs'], 'boxes': {}}
    for b, v in fp['boxes'].items():
        if isinstance(v, str): out['boxes'][b] = v; continue
        out['boxes'][b] = sorted((m['sha'], m['size'], tuple(m['flags']), m['idate']) for m in v['msgs'].values())
    return out
for src, tprof in [('ssdbox','sdbox'),('smdbox','mdbox'),('smaildirfs','maildir-fs')]:
    tn = f'i{tag}{src}'
    adduser(tn, tprof)
    code, out, err = mv('restore', '/tmp/adv2/s1.mvd', '--imap', f"imap://127.0.0.1:{INFO['port']}", '--master-user', INFO['master'], '--password-file', '/tmp/adv2/pw', '--user', src, '--to-user', tn)
    print('==', src, '->', tn, 'exit', code, err.strip()[-1500:])
    fp = fingerprint(tn, with_guid=False)
    d = diff(norm(fps[src]), norm(fp))
    print('\n'.join(d[:40]), f'... {len(d)} diffs')
    code, out, err = mv('restore', '/tmp/adv2/s1.mvd', '--imap', f"imap://127.0.0.1:{INFO['port']}", '--master-user', INFO['master'], '--password-file', '/tmp/adv2/pw', '--user', src, '--to-user', tn)
    print('again exit', code, err.strip()[-500:])
    d = diff(norm(fp), norm(fingerprint(tn, with_guid=False)))
    print('\n'.join(d[:40]), f'... {len(d)} diffs after 2nd run')
