import subprocess, time, signal, sys, os
args=sys.argv[2:]; t=float(sys.argv[1])
t0=time.time()
p=subprocess.Popen(['/work/adv2/bin/run.js',*args],stdout=subprocess.DEVNULL,stderr=subprocess.PIPE)
time.sleep(t); p.send_signal(signal.SIGTERM); ts=time.time()
err=p.communicate()[1].decode()
print('exit',p.returncode,'signal at %.2f, exit %.2f s after signal, total %.2f'%(ts-t0,time.time()-ts,time.time()-t0), repr(err[-200:]))
