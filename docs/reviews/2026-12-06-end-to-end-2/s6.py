from pop import *
import pickle, sys
tag = sys.argv[1]
fps = pickle.load(open('/tmp/adv2/s1fp.pkl','rb'))
for src in ['smaildir', 'ssdbox']:
    for extra, name in [([], 'plain'), (['--dedup-attachments=1k'], 'dedup')]:
        dump = f'/tmp/adv2/s6{tag}-{src}-{name}.mvd'
        code, o, err = mv('backup', '--imap', f"imap://127.0.0.1:{INFO['port']}", '--master-user', INFO['master'], '--password-file', '/tmp/adv2/pw', '--user', src, '-o', dump, *extra)
        print('backup', src, name, code, err.strip()[-300:])
        tn = f'y{tag}{name}{src}'; t = adduser(tn, 'sdbox')
        code, o, err = mv('restore', dump, '--imap', f"imap://127.0.0.1:{INFO['port']}", '--master-user', INFO['master'], '--password-file', '/tmp/adv2/pw', '--user', src, '--to-user', tn)
        fp = fingerprint(tn, with_guid=False)
        a = fps[src]
        def norm(fp):
            out = {'subs': fp['subs'], 'boxes': {}}
            for b, v in fp['boxes'].items():
                out['boxes'][b] = v if isinstance(v, str) else sorted((m['sha'], m['size'], tuple(m['flags']), m['idate']) for m in v['msgs'].values())
            return out
        d = diff(norm(a), norm(fp))
        print('  restore', code, err.strip()[-150:], len(d), 'diffs', d[:5])
