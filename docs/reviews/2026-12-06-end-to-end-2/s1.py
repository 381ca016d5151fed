from pop import *
import pickle
users = {}
for prof in ['maildir','maildir-fs','sdbox','mdbox']:
    n='s'+prof.replace('-','')
    users[n] = dict(name=n, home=f"{D}/mail/{n}", loc=LOC[prof].replace('~', f"{D}/mail/{n}"), prof=prof)
uf = usersfile(users.values(), '/tmp/adv2/s1users')
fps = {n: fingerprint(n) for n in users}
pickle.dump(fps, open('/tmp/adv2/s1fp.pkl','wb'))
code, out, err = mv('backup', '--users-file', uf, '--all-users', '--attachment-dir', INFO['att'], '-o', '/tmp/adv2/s1.mvd')
print('backup', code, err[-3000:])
code, out, err = mv('verify', '/tmp/adv2/s1.mvd'); print('verify', code, err[-500:])
