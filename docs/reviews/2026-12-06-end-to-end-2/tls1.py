import os; os.environ['DVINFO']='/tmp/adv2/dv2.json'
from mv import *
P=open('/tmp/adv2/tls/port').read().strip()
for n in ['tlsa','tlsb','tlsc','tlsd']:
    try: adduser(n,'sdbox')
    except FileExistsError: pass
base=['--master-user',INFO['master'],'--password-file','/tmp/adv2/pw2','--user','smaildirfs']
cases=[('no trust imaps','tlsa',['--imap',f'imaps://127.0.0.1:{P}'],{}),
       ('ca imaps','tlsa',['--imap',f'imaps://127.0.0.1:{P}','--imap-ca','/tmp/adv2/tls/cert.pem'],{}),
       ('ca imaps localhost','tlsb',['--imap',f'imaps://localhost:{P}','--imap-ca','/tmp/adv2/tls/cert.pem'],{}),
       ('insecure imaps','tlsc',['--imap',f'imaps://127.0.0.1:{P}','--imap-insecure'],{}),
       ('starttls no trust','tlsd',['--imap',f'imap://127.0.0.1:{INFO["port"]}'],{}),
       ('starttls ca','tlsd',['--imap',f'imap://127.0.0.1:{INFO["port"]}','--imap-ca','/tmp/adv2/tls/cert.pem'],{}),
       ('NODE_EXTRA_CA_CERTS','tlsa',['--imap',f'imaps://127.0.0.1:{P}'],{'NODE_EXTRA_CA_CERTS':'/tmp/adv2/tls/cert.pem'}),
       ('ca wrong file','tlsa',['--imap',f'imaps://127.0.0.1:{P}','--imap-ca','/tmp/adv2/tls/key.pem'],{}),
       ('ca missing file','tlsa',['--imap',f'imaps://127.0.0.1:{P}','--imap-ca','/tmp/adv2/tls/nope.pem'],{}),
       ('imaps to plain port','tlsa',['--imap',f'imaps://127.0.0.1:{INFO["port"]}','--imap-insecure'],{}),
]
for name,to,args,env in cases:
    code,o,err=mv('restore','/tmp/adv2/s1.mvd',*base,'--to-user',to,*args,env=env)
    print('==',name,'exit',code,err.strip()[-400:])
