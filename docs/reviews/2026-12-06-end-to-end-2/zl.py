from pop import *
import pickle
def adduser2(name, loc, extra):
    home = f"{D}/mail/{name}"; os.makedirs(home); os.chown(home, 5000, 5000)
    with open(f"{D}/etc/users/{name}", 'w') as f: f.write(f"{name}:{{PLAIN}}pw:5000:5000::{home}::userdb_mail={loc} {extra}\n")
    return dict(name=name, home=home, loc=loc.replace('~', home))
u=adduser2('zl1','maildir:~/Maildir','userdb_mail_plugins=zlib userdb_zlib_save=gz')
made=populate('zl1', folders=['Sub','a b'])
md=u['home']+'/Maildir'
print(subprocess.run(f"file {md}/cur/* | head -3; ls {md}/cur | head -3",shell=True,capture_output=True,text=True).stdout)
fp=fingerprint('zl1'); pickle.dump(fp,open('/tmp/adv2/zlfp.pkl','wb'))
uf=usersfile([u],'/tmp/adv2/zlusers')
code,o,e=mv('backup','--users-file',uf,'--user','zl1','-o','/tmp/adv2/zl.mvd'); print('backup',code,e[-800:])
code,o,e=mv('verify','/tmp/adv2/zl.mvd'); print('verify',code,e[-300:])
# restore into plain maildir user (no zlib) and into zlib user
for tn,extra in [('zlr1',''),('zlr2','userdb_mail_plugins=zlib userdb_zlib_save=gz')]:
    t=adduser2(tn,'maildir:~/Maildir',extra); tf=usersfile([t])
    code,o,e=mv('restore','/tmp/adv2/zl.mvd','--users-file',tf,'--user','zl1','--to-user',tn); print('restore',tn,code,e[-800:])
    d=diff(fp,fingerprint(tn)); print(len(d),'diffs',d[:8])
# extract a message and compare to IMAP BODY
