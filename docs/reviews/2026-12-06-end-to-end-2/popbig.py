from pop import *
import random
# big: 1500 msgs ~60KB maildir, with flags
n='big'; adduser(n,'maildir')
rnd=random.Random(1)
msgs=[b'From: a@b\r\nMessage-ID: <big%d@x>\r\nSubject: big %d\r\n\r\n' % (i,i) + (b'%05d ' % i + b'z'*90 + b'\r\n')*600 for i in range(1500)]
lmtp(n, msgs)
c=imap(n); c.select('INBOX'); c.uid('STORE','1:500','+FLAGS','(\\Seen)'); c.uid('STORE','100:200','+FLAGS','(\\Flagged kwA)'); c.logout()
print('big done')
# tiny: 50k tiny
n='tiny'; adduser(n,'maildir')
for k in range(0,50000,5000):
    lmtp(n, [b'From: t@b\r\nMessage-ID: <t%d@x>\r\nSubject: t%d\r\n\r\nx%d\r\n' % (i,i,i) for i in range(k,k+5000)])
print('tiny done')
