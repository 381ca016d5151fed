import os, subprocess, sys, hashlib
sys.path.insert(0, '/tmp/adv2')
from mv import mv
src = sys.argv[1]; data = open(src, 'rb').read(); N = len(data)
cases = []
for frac in [0.1, 0.37, 0.5, 0.8, 0.99]:
    cases.append((f'trunc{frac}', data[:int(N*frac)]))
cases.append(('trunc-1', data[:-1])); cases.append(('trunc-1024', data[:-1024])); cases.append(('trunc-512', data[:-512]))
for frac in [0.1, 0.37, 0.5, 0.8, 0.999]:
    p = int(N*frac); b = bytearray(data); b[p] ^= 0x01; cases.append((f'flip{frac}@{p}', bytes(b)))
for name, d in cases:
    f = f'/tmp/adv2/bad/{os.path.basename(src)}.{name}'
    open(f, 'wb').write(d)
    v = mv('verify', f)
    tgt = f'/tmp/adv2/bad/t-{os.path.basename(src)}-{name}'
    r = mv('restore', f, '--location', f'maildir:{tgt}/%u/Maildir')
    # count restored files and check each against original messages set
    cnt = 0
    for root, dirs, files in os.walk(tgt):
        if root.endswith('/cur') or root.endswith('/new'): cnt += len(files)
    print(f'{name:22s} verify={v[0]} restore={r[0]} files={cnt} | {v[2].strip().splitlines()[0][:150] if v[2].strip() else ""} | {r[2].strip().splitlines()[0][:200] if r[2].strip() else ""}')
