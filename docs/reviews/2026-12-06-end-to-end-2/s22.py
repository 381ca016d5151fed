from pop import *
import time
W='/tmp/adv2/s22'; os.makedirs(W,exist_ok=True)
u=adduser('mvmove2','maildir'); uf=usersfile([u],f'{W}/users'); n='mvmove2'
c=imap(n); c.create('Archive')
for i in range(5): append(c,'INBOX',b'Subject: m%d\r\nMessage-ID: <mm%d@x>\r\n\r\nb\r\n'%(i,i),'\\Seen',time.time()-3*86400+i)
c.logout(); time.sleep(2.2)
print(mv('backup','--users-file',uf,'-u',n,'-o',f'{W}/full.mvd')[::2])
c=imap(n); c.select('INBOX'); print(c.uid('MOVE','1:2','Archive')); c.logout()
time.sleep(1)
code,o,e=mv('backup','--users-file',uf,'-u',n,'-o',f'{W}/inc.mvd','--since','24h'); print('inc',code,e)
fp=fingerprint(n); print({b:len(v['msgs']) for b,v in fp['boxes'].items()})
t=adduser('mvmoveR2','maildir'); tf=usersfile([t])
code,o,e=mv('restore',f'{W}/full.mvd',f'{W}/inc.mvd','--users-file',tf,'-u',n,'--to-user','mvmoveR2'); print('restore',code,e)
fp2=fingerprint('mvmoveR2'); print({b:len(v['msgs']) for b,v in fp2['boxes'].items()})
