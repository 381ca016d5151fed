import { storageConformance } from '../../helpers/storage-conformance.js';
import { MemoryStore, createMemoryStoreData } from '../../../src/storage/memory/index.js';

storageConformance('memory', async () => {
  const data = createMemoryStoreData();
  return { store: new MemoryStore('alice', data), reopen: async () => new MemoryStore('alice', data) };
});
