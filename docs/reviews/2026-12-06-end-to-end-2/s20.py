from pop import *
import pickle, sys, time, datetime
tag=sys.argv[1]; profs=sys.argv[2].split(',')
W=f'/tmp/adv2/s20{tag}'; os.makedirs(W,exist_ok=True)
users=[adduser(f'c{tag}{p.replace("-","")}',p) for p in profs]
uf=usersfile(users,f'{W}/users')
def B(*extra,out):
    code,o,err=mv('backup','--users-file',uf,'--all-users','--attachment-dir',INFO['att'],'-o',out,*extra)
    print('backup',os.path.basename(out),code,' | '.join(l for l in err.strip().split('\n') if 'renamed' in l or 'UIDVALIDITY' in l or 'skipped' in l or 'error' in l)[:600]); return code
def msg(s,i): return b'Subject: %s %d\r\nMessage-ID: <%s%d@x>\r\n\r\nbody\r\n'%(s.encode(),i,s.encode(),i)
for u in users:
    c=imap(u['name'])
    for f in ['A','B','C','Sub']: c.create(f); c.subscribe(f)
    for f in ['A','B','C']:
        for i in range(4): append(c,f,msg(f,i),'\\Seen' if i%2 else '',1600000000+i)
    for i in range(10): append(c,'INBOX',msg('in',i),'',1600000000+i)
    c.logout()
time.sleep(2.2)
fps=[]; times=[]; dumps=[]
def snap(name, *extra):
    out=f'{W}/{name}.mvd'; B(*extra,out=out); dumps.append(out)
    times.append(datetime.datetime.utcnow().strftime('%Y-%m-%dT%H:%M:%SZ'))
    fps.append({u['name']:fingerprint(u['name']) for u in users}); time.sleep(2.2)
snap('full','--state-file',f'{W}/st')
inc=lambda n: snap(n,'--since',f'@{W}/st','--state-file',f'{W}/st')
for u in users:  # swap A and B, new mail in A
    c=imap(u['name']); c.rename('A','X'); c.rename('B','A'); c.rename('X','B'); append(c,'A',msg('postswapA',0),'',1600001000); c.logout()
inc('inc1')
for u in users:  # C deleted + recreated (new UIDVALIDITY, same UIDs 1..2)
    c=imap(u['name']); c.delete('C'); c.create('C'); append(c,'C',msg('C2',0),'\\Flagged',1600002000); append(c,'C',msg('C2',1),'',1600002001); c.logout()
inc('inc2')
for u in users:  # B->B2->B (back), A -> Sub/A, flags
    c=imap(u['name']); c.rename('B','B2'); c.rename('B2','B'); c.rename('A','Sub/A'); c.select('INBOX'); c.uid('STORE','1:3','+FLAGS','(\\Answered kwZ)'); c.logout()
inc('inc3')
for u in users:  # Sub/A -> A back; expunge; C deleted and re-created empty; B renamed to C?? no: B renamed to D
    c=imap(u['name']); c.rename('Sub/A','A'); c.select('INBOX'); c.uid('STORE','4:6','+FLAGS','(\\Deleted)'); c.expunge(); c.delete('C'); c.create('C'); c.rename('B','D'); c.logout()
inc('inc4')
for u in users:  # D->B, A->C?? (C exists) : delete C then rename A->C
    c=imap(u['name']); c.rename('D','B'); c.delete('C'); c.rename('A','C'); c.logout()
inc('inc5')
pickle.dump((fps,times,dumps),open(f'{W}/fps.pkl','wb'))
# restore full chain and at each time
for k in range(len(dumps)):
    for u in users:
        tn=f'r{k}{u["name"]}'; t=adduser(tn,'maildir-fs'); tf=usersfile([t])
        code,o,e=mv('restore',*dumps,'--users-file',tf,'--user',u['name'],'--to-user',tn,'--at',times[k])
        d=diff(fps[k][u['name']],fingerprint(tn))
        print(f'--at {times[k]} (after {os.path.basename(dumps[k])})',u['name'],'exit',code,len(d),'diffs',d[:4], e.strip()[-200:] if code else '')
