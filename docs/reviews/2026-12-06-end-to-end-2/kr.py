from pop import *
import sys, signal, pickle
tag=sys.argv[1]; mode=sys.argv[2]  # maildir | imap
src=fingerprint('big')
def strip(fp):
    return {b: sorted((m['sha'],m['size'],tuple(m['flags']),m['idate']) for m in v['msgs'].values()) for b,v in fp['boxes'].items()}
for sig in [signal.SIGKILL, signal.SIGTERM]:
  for t in [0.4,0.55,0.7,0.85,1.0,1.3]:
    tn=f'kr{tag}{sig.name[3:].lower()}{int(t*100)}'; u=adduser(tn,'maildir'); uf=usersfile([u])
    if mode=='imap': dest=['--imap',f"imap://127.0.0.1:{INFO['port']}",'--master-user',INFO['master'],'--password-file','/tmp/adv2/pw']
    else: dest=['--users-file',uf]
    args=['/work/adv2/bin/run.js','restore','/tmp/adv2/kb/ref.mvd','-u','big','--to-user',tn,*dest]
    p=subprocess.Popen(args,stdout=subprocess.DEVNULL,stderr=subprocess.PIPE); time.sleep(t); p.send_signal(sig); e1=p.communicate()[1].decode().strip()
    md=f"{D}/mail/{tn}/Maildir"
    tmpf=os.listdir(md+'/tmp') if os.path.exists(md+'/tmp') else []
    ncur=len(os.listdir(md+'/cur'))+len(os.listdir(md+'/new')) if os.path.exists(md+'/cur') else 0
    code,o,e2=mv(*args[1:])
    fp=fingerprint(tn, with_guid=False)
    d=diff(strip(src),strip(fp))
    uids = 'same UIDs' if mode=='imap' else ('UIDs same' if sorted(src['boxes']['INBOX']['msgs'])==sorted(fp['boxes']['INBOX']['msgs']) else 'UIDs DIFFER')
    print(sig.name,t,'kill exit',p.returncode,'files',ncur,'tmp',len(tmpf),'| rerun',code,e2.strip()[-110:].replace('\n',' '),'|',len(d),'diffs',uids, 'uv', src['boxes']['INBOX']['uidvalidity'], fp['boxes']['INBOX']['uidvalidity'])
    if d: print('   ',d[:3])
