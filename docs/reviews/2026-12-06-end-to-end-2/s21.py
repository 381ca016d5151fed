from pop import *
import pickle, sys, time, datetime
tag=sys.argv[1]; profs=sys.argv[2].split(',')
W=f'/tmp/adv2/s21{tag}'; os.makedirs(W,exist_ok=True)
users=[adduser(f't{tag}{p.replace("-","")}',p) for p in profs]
uf=usersfile(users,f'{W}/users')
def B(*extra,out):
    code,o,err=mv('backup','--users-file',uf,'--all-users','--attachment-dir',INFO['att'],'-o',out,*extra)
    print('backup',os.path.basename(out),code,err.strip()[-700:]); return code
def msg(s,i): return b'Subject: %s %d\r\nMessage-ID: <%s%d@x>\r\n\r\nbody\r\n'%(s.encode(),i,s.encode(),i)
for u in users:
    c=imap(u['name'])
    for f in ['A','B']: c.create(f); c.subscribe(f)
    for f in ['A','B','INBOX']:
        for i in range(6): append(c,f,msg(f,i),'\\Seen' if i%2 else '',1500000000+i)  # old INTERNALDATEs
    c.logout()
time.sleep(2.2)
B(out=f'{W}/full.mvd')
for u in users:
    c=imap(u['name']); c.select('INBOX'); c.uid('STORE','1','+FLAGS','(\\Flagged kwQ)'); c.uid('STORE','2','+FLAGS','(\\Deleted)'); c.expunge()
    append(c,'INBOX',msg('new-old-date',0),'',1400000000)   # new mail with an old INTERNALDATE
    append(c,'INBOX',msg('new-now',0),'')
    c.rename('A','A2'); c.delete('B'); c.create('B'); append(c,'B',msg('B-new',0),'',1500000000)
    c.logout()
lmtp(users[0]['name'],[msg('lmtp',0)])
time.sleep(1)
B('--since','24h',out=f'{W}/inc.mvd')
fp={u['name']:fingerprint(u['name']) for u in users}
for u in users:
    tn=f'r{tag}{u["name"]}'; t=adduser(tn,'maildir-fs'); tf=usersfile([t])
    code,o,e=mv('restore',f'{W}/full.mvd',f'{W}/inc.mvd','--users-file',tf,'--user',u['name'],'--to-user',tn)
    d=diff(fp[u['name']],fingerprint(tn)); print(u['name'],'exit',code,e.strip()[-300:],len(d),'diffs'); print('\n'.join(d[:10]))
