import { startDovecot } from '/work/adv2/build/test/helpers/dovecot.js';
import { writeFileSync } from 'node:fs';
const extra = process.argv[3] ?? '';
const dv = await startDovecot({ extraConfig: extra });
const info = { dir: dv.dir, conf: dv.confPath, port: dv.imapPort, lmtp: dv.lmtpSocket, master: dv.masterUser, masterPw: dv.masterPassword, att: dv.attachmentDir, uid: dv.mailUid };
writeFileSync(process.argv[2], JSON.stringify(info, null, 1));
// add users on request via file-based signals: simpler: users are added by writing passwd files directly
process.on('SIGTERM', async () => { await dv.stop({ keepDir: true }); process.exit(0); });
setInterval(() => {}, 1 << 30);
