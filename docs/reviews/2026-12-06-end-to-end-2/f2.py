from pop import *
M, blob = weird_messages()
n='f2src'; adduser(n,'maildir'); c=imap(n)
append(c,'INBOX',M['b64_noncanon'],'\\Seen',1600000000); append(c,'INBOX',M['b64_odd'],'',1600000100); c.logout()
uf=usersfile([dict(name=n,home=f"{D}/mail/{n}",loc=LOC['maildir'].replace('~',f"{D}/mail/{n}"))])
print(mv('backup','--users-file',uf,'--user',n,'-o','/tmp/adv2/f2.mvd')[::2])
t='f2dst'; adduser(t,'sdbox')
for i in range(3):
    code,o,err=mv('restore','/tmp/adv2/f2.mvd','--imap',f"imap://127.0.0.1:{INFO['port']}",'--master-user',INFO['master'],'--password-file','/tmp/adv2/pw','--user',n,'--to-user',t)
    fp=fingerprint(t,with_guid=False)
    print(i,code,err.strip()[-600:],'-> count',len(fp['boxes']['INBOX']['msgs']))
