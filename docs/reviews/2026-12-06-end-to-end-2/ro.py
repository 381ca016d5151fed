from pop import *
n='ro1'; u=adduser(n,'maildir'); uf=usersfile([u],'/tmp/adv2/rousers')
c=imap(n); append(c,'INBOX',b'Subject: via imap\r\n\r\nx\r\n','\\Seen',1600000000); c.create('Sub'); append(c,'Sub',b'Subject: sub\r\n\r\ny\r\n'); c.logout()
md=f"{D}/mail/{n}/Maildir"
# MTA-style deliveries into new/ (no uidlist line), plus one in cur/ with flags, plus one in a never-opened folder
for i in range(3):
    fn=f"{md}/new/{1700000000+i}.M{i}P99.mta"
    open(fn,'wb').write(b'Subject: mta %d\r\n\r\nbody\r\n'%i); os.chown(fn,5000,5000)
fn=f"{md}/cur/1700000009.M9P99.mta:2,S"; open(fn,'wb').write(b'Subject: mta cur\r\n\r\nb\r\n'); os.chown(fn,5000,5000)
os.makedirs(f"{md}/.Fresh/cur"); os.makedirs(f"{md}/.Fresh/new"); os.makedirs(f"{md}/.Fresh/tmp")
open(f"{md}/.Fresh/new/1700000010.M1P99.mta",'wb').write(b'Subject: fresh\r\n\r\nf\r\n')
subprocess.run(['chown','-R','5000:5000',md])
def snap():
    out={}
    for root,dirs,files in os.walk(md):
        for f in files: out[os.path.join(root,f)]=(os.stat(os.path.join(root,f)).st_mtime_ns, open(os.path.join(root,f),'rb').read())
    return out
s0=snap()
code,o,e=mv('backup','--users-file',uf,'--user',n,'--read-only','-o','/tmp/adv2/ro.mvd'); print('ro backup',code,e)
s1=snap(); print('changed files:', [k for k in set(s0)|set(s1) if s0.get(k)!=s1.get(k)])
print(mv('list','/tmp/adv2/ro.mvd')[1].decode())
code,o,e=mv('backup','--users-file',uf,'--user',n,'-o','/tmp/adv2/ro2.mvd'); print('rw backup',code,e)
s2=snap(); print('changed files:', sorted(k.replace(md,'') for k in set(s1)|set(s2) if s1.get(k)!=s2.get(k)))
print(mv('list','/tmp/adv2/ro2.mvd')[1].decode())
fp=fingerprint(n)
for b,v in fp['boxes'].items(): print(b, v['uidvalidity'], {u:(m['flags'],m['size']) for u,m in v['msgs'].items()})
