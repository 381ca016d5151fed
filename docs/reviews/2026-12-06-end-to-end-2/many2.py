from pop import *
import time, resource
n='many'; uf='/tmp/adv2/manyusers'
t0=time.time(); fp=fingerprint(n); print('fp',time.time()-t0, len(fp['boxes']), len(fp['subs']))
def T(*a):
    t0=time.time(); r=subprocess.run(['/usr/bin/time','-f','%M KB','/work/adv2/bin/run.js',*a],capture_output=True); 
    print(a[0],r.returncode,'%.1fs'%(time.time()-t0),r.stderr.decode().strip()[-400:]); return r
T('backup','--users-file',uf,'-u',n,'-o','/tmp/adv2/many.mvd','--state-file','/tmp/adv2/many.st')
T('backup','--users-file',uf,'-u',n,'-o','/tmp/adv2/many-inc.mvd','--since','@/tmp/adv2/many.st','--state-file','/tmp/adv2/many.st')
c=imap(n); c.rename('F05','G05'); append(c,'flat0100',b'Subject: new\r\n\r\nb\r\n'); c.logout(); time.sleep(2.2)
T('backup','--users-file',uf,'-u',n,'-o','/tmp/adv2/many-inc2.mvd','--since','@/tmp/adv2/many.st','--state-file','/tmp/adv2/many.st')
fp=fingerprint(n)
for tgt,prof in [('manyr','maildir'),('manyrfs','maildir-fs')]:
    t=adduser(tgt,prof); tf=usersfile([t])
    T('restore','/tmp/adv2/many.mvd','/tmp/adv2/many-inc.mvd','/tmp/adv2/many-inc2.mvd','--users-file',tf,'-u',n,'--to-user',tgt)
    d=diff(fp,fingerprint(tgt)); print(len(d),'diffs',d[:5])
adduser('manyi','sdbox')
T('restore','/tmp/adv2/many.mvd','/tmp/adv2/many-inc.mvd','/tmp/adv2/many-inc2.mvd','--imap',f"imap://127.0.0.1:{INFO['port']}",'--master-user',INFO['master'],'--password-file','/tmp/adv2/pw','-u',n,'--to-user','manyi')
fpi=fingerprint('manyi',with_guid=False)
def norm(fp): return {'subs':fp['subs'],'boxes':{b:(v if isinstance(v,str) else sorted((m['sha'],tuple(m['flags']),m['idate']) for m in v['msgs'].values())) for b,v in fp['boxes'].items()}}
d=diff(norm(fp),norm(fpi)); print('imap',len(d),'diffs',d[:5])
r=subprocess.run('/work/adv2/bin/run.js list /tmp/adv2/many.mvd | head -3; echo "rc ${PIPESTATUS[0]}"',shell=True,capture_output=True,text=True,executable='/bin/bash'); print(r.stdout,r.stderr[-300:])
