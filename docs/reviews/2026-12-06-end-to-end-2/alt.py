from pop import *
import pickle
res={}
for prof in ['sdbox','mdbox']:
    n=f'alt{prof}'
    loc=f'{prof}:~/{prof}:ALT=~/alt'
    u=adduser(n,prof,loc); uf=usersfile([u])
    populate(n, folders=['Sub','Deep/er'])
    c=imap(n); c.select('INBOX')
    for i in range(20): append(c,'INBOX',b'Subject: alt%d\r\nMessage-ID: <alt%d@x>\r\n\r\n'%(i,i)+b'q'*5000+b'\r\n','\\Seen',1600000000+i)
    c.logout()
    r=doveadm('altmove','-u',n,'mailbox','INBOX','uid','1:20'); print('altmove',r.returncode,r.stderr.decode()[:200])
    r=doveadm('altmove','-u',n,'mailbox','Sub','all'); print('altmove',r.returncode,r.stderr.decode()[:200])
    print(subprocess.run(f"find {u['home']}/alt -type f | head -5; find {u['home']}/alt -type f | wc -l",shell=True,capture_output=True,text=True).stdout)
    fp=fingerprint(n)
    dump=f'/tmp/adv2/alt-{prof}.mvd'
    code,o,e=mv('backup','--users-file',uf,'--user',n,'--attachment-dir',INFO['att'],'-o',dump,'--state-file',dump+'.state'); print('backup',code,e[-600:])
    code,o,e=mv('backup','--users-file',uf,'--user',n,'--attachment-dir',INFO['att'],'-o',dump+'.wrongloc','--location',f'{prof}:{u["home"]}/{prof}'); print('backup without ALT=',code,e[-600:])
    # more altmove (INBOX all) then incremental
    r=doveadm('altmove','-u',n,'mailbox','INBOX','all'); print('altmove all',r.returncode)
    code,o,e=mv('backup','--users-file',uf,'--user',n,'--attachment-dir',INFO['att'],'-o',dump+'.inc','--since','@'+dump+'.state','--state-file',dump+'.state'); print('inc after altmove',code,e[-600:])
    # move back with -r
    r=doveadm('altmove','-r','-u',n,'mailbox','Sub','all'); print('altmove -r',r.returncode, r.stderr.decode()[:200])
    code,o,e=mv('backup','--users-file',uf,'--user',n,'--attachment-dir',INFO['att'],'-o',dump+'.inc2','--since','@'+dump+'.state','--state-file',dump+'.state'); print('inc2 after altmove -r',code,e[-600:])
    fp2=fingerprint(n); print('src changed by altmove?', diff(fp,fp2)[:5])
    for tprof in ['maildir-fs']:
        tn=f'altr{prof}'; t=adduser(tn,tprof); tf=usersfile([t])
        code,o,e=mv('restore',dump,dump+'.inc',dump+'.inc2','--users-file',tf,'--user',n,'--to-user',tn); print('restore chain',code,e[-400:])
        d=diff(fp2,fingerprint(tn)); print(len(d),'diffs',d[:6])
