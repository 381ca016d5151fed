from pop import *
import pickle, sys
fps = pickle.load(open('/tmp/adv2/s1fp.pkl','rb'))
src=sys.argv[1]; tn=sys.argv[2]
home=f'/tmp/adv2/full/{tn}'; os.makedirs(home); os.chown(home,5000,5000)
loc=(sys.argv[3] if len(sys.argv)>3 else 'maildir:~/Maildir')
with open(f"{D}/etc/users/{tn}", 'w') as f: f.write(f"{tn}:{{PLAIN}}pw:5000:5000::{home}::userdb_mail={loc}\n")
uf=usersfile([dict(name=tn,home=home,loc=loc.replace('~',home))])
for i, act in enumerate(['restore','grow','restore','restore']):
    if act=='grow':
        subprocess.run(['mount','-o','remount,size=60m','/tmp/adv2/full']); continue
    code,o,err=mv('restore','/tmp/adv2/s1.mvd','--users-file',uf,'--user',src,'--to-user',tn)
    print(i,code,err.strip()[-700:])
d=diff(fps[src],fingerprint(tn)); print(len(d),'diffs'); print('\n'.join(d[:20]))
