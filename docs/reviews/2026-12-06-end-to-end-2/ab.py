from pop import *
n='abfs'; u=adduser(n,'maildir-fs'); uf=usersfile([u],'/tmp/adv2/abusers')
c=imap(n)
for f in ['a.b','a/b','a','x.y.z','x/y/z']:
    print(c.create(qm(f))); c.subscribe(qm(f))
    append(c,f,b'Subject: in '+f.encode()+b'\r\nMessage-ID: <'+f.encode()+b'@x>\r\n\r\nb\r\n','\\Seen',1600000000)
c.logout()
fp=fingerprint(n)
print(mv('backup','--users-file',uf,'-u',n,'-o','/tmp/adv2/ab.mvd')[::2])
t=adduser('abpp','maildir'); tf=usersfile([t])
for i in range(3):
    code,o,e=mv('restore','/tmp/adv2/ab.mvd','--users-file',tf,'-u',n,'--to-user','abpp'); print('restore',i,code,e.strip())
    fp2=fingerprint('abpp'); print({b:(sorted(m['sha'] for m in v['msgs'].values()) if isinstance(v,dict) else v) for b,v in fp2['boxes'].items()}, fp2['subs'])
print(sorted(os.listdir(t['home']+'/Maildir')))
# with -m 'a.b' --to-mailbox 'a_b'
code,o,e=mv('restore','/tmp/adv2/ab.mvd','--users-file',tf,'-u',n,'--to-user','abpp','-m','a.b','--to-mailbox','a_b'); print('to-mailbox',code,e.strip())
# IMAP restore into Maildir++ user
t3=adduser('abpp3','maildir')
code,o,e=mv('restore','/tmp/adv2/ab.mvd','--imap',f"imap://127.0.0.1:{INFO['port']}",'--master-user',INFO['master'],'--password-file','/tmp/adv2/pw','-u',n,'--to-user','abpp3'); print('imap',code,e.strip())
fp3=fingerprint('abpp3'); print({b:(sorted(m['sha'] for m in v['msgs'].values()) if isinstance(v,dict) else v) for b,v in fp3['boxes'].items()})
print({b:(sorted(m['sha'] for m in v['msgs'].values()) if isinstance(v,dict) else v) for b,v in fp['boxes'].items()})
