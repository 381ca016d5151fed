from pop import *
import base64, time
os.makedirs('/tmp/adv2/s4', exist_ok=True)
blob = os.urandom(75_000_000)
b64 = base64.encodebytes(blob)  # 76-char LF lines
big = b'From: big@x\r\nSubject: huge\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="QQ"\r\n\r\n--QQ\r\nContent-Type: text/plain\r\n\r\nhuge one\r\n--QQ\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n' + b64.replace(b'\n', b'\r\n') + b'--QQ--\r\n'
print('size', len(big))
open('/tmp/adv2/s4/big.eml', 'wb').write(big)
us = []
for prof in ['maildir', 'sdbox', 'mdbox']:
    n = 'h' + prof; us.append(adduser(n, prof))
    t = time.time(); c = imap(n); append(c, 'INBOX', big, '\\Seen', 1600000000)
    # the same attachment shared by a second message in another mailbox
    c.create('Copy'); append(c, 'Copy', big.replace(b'huge one', b'second!!'), '', 1600000001)
    c.logout(); print(prof, 'appended', time.time() - t)
usersfile(us, '/tmp/adv2/s4/users')
fp = {u['name']: fingerprint(u['name']) for u in us}
import pickle; pickle.dump(fp, open('/tmp/adv2/s4/fp.pkl', 'wb'))
