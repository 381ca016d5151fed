import { storageConformance } from '../../helpers/storage-conformance.js';
import { tempDir } from '../../helpers/temp.js';
import { openMaildirStore } from '../../../src/storage/maildir/index.js';
import { parseLocation } from '../../../src/storage/location.js';

for (const variant of ['maildir:~/Maildir', 'maildir:~/Maildir:LAYOUT=fs:UTF-8']) {
  storageConformance(variant, async (t) => {
    const home = await tempDir(t, 'mv-conf-');
    const loc = parseLocation(variant, { user: 'alice', home });
    return { store: await openMaildirStore(loc, 'alice', { create: true }), reopen: () => openMaildirStore(loc, 'alice') };
  });
}
