from pop import *
import sys, signal, glob
n='big'; uf=usersfile([dict(name=n,home=f"{D}/mail/{n}",loc=LOC['maildir'].replace('~',f"{D}/mail/{n}"))],'/tmp/adv2/bigusers')
os.makedirs('/tmp/adv2/kb',exist_ok=True)
def run(args, t, sig):
    p=subprocess.Popen(['/work/adv2/bin/run.js',*args],stdout=subprocess.DEVNULL,stderr=subprocess.PIPE)
    time.sleep(t); p.send_signal(sig); err=p.communicate()[1].decode()
    return p.returncode, err.strip()[-200:]
t0=time.time(); print(mv('backup','--users-file',uf,'--user',n,'-o','/tmp/adv2/kb/ref.mvd','--state-file','/tmp/adv2/kb/ref.state')[::2], time.time()-t0)
for sig in [signal.SIGKILL, signal.SIGTERM, signal.SIGINT]:
    for t in [0.3,0.6,0.9,1.2,1.5]:
        for f in glob.glob('/tmp/adv2/kb/k*'): os.remove(f)
        code,err=run(['backup','--users-file',uf,'--user',n,'-o','/tmp/adv2/kb/k.mvd','--state-file','/tmp/adv2/kb/k.state'],t,sig)
        files=sorted(os.listdir('/tmp/adv2/kb'))
        v = mv('verify','/tmp/adv2/kb/k.mvd')[0] if os.path.exists('/tmp/adv2/kb/k.mvd') else None
        print(sig.name,t,'exit',code,files,'verify',v,repr(err))
