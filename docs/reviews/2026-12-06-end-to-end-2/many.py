from pop import *
import time
n='many'; u=adduser(n,'maildir'); uf=usersfile([u],'/tmp/adv2/manyusers')
c=imap(n)
t0=time.time()
for i in range(2000):
    f=f'F{i//100:02d}/f{i:04d}' if i%2 else f'flat{i:04d}'
    c.create(qm(f)); 
    if i%3==0: c.subscribe(qm(f))
    append(c,f,b'Subject: %d\r\nMessage-ID: <many%d@x>\r\n\r\nb\r\n'%(i,i),'\\Seen' if i%2 else '',1600000000+i)
c.logout(); print('populated',time.time()-t0)
