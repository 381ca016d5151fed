from pop import *
import sys, signal, glob
uf='/tmp/adv2/bigusers'; n='big'
def run(args, t, sig):
    p=subprocess.Popen(['/work/adv2/bin/run.js',*args],stdout=subprocess.DEVNULL,stderr=subprocess.PIPE)
    time.sleep(t); p.send_signal(sig); err=p.communicate()[1].decode()
    return p.returncode, err.strip()[-150:]
extra=sys.argv[1:]
for sig in [signal.SIGKILL, signal.SIGTERM]:
    for i in range(14):
        t=0.35+i*0.05
        for f in glob.glob('/tmp/adv2/kb/k*'): os.remove(f)
        code,err=run(['backup','--users-file',uf,'--user',n,'-o','/tmp/adv2/kb/k.mvd','--state-file','/tmp/adv2/kb/k.state',*extra],t,sig)
        files=sorted(f for f in os.listdir('/tmp/adv2/kb') if f.startswith('k'))
        v = mv('verify','/tmp/adv2/kb/k.mvd')[0] if os.path.exists('/tmp/adv2/kb/k.mvd') else None
        bad = ('k.state' in files) != (v==0)
        print(sig.name,round(t,2),'exit',code,files,'verify',v,'INCONSISTENT' if bad else '',repr(err[-90:]))
