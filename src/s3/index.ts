/** The object-storage target's entry points; the CLI imports this lazily (the AWS SDK is large). */
export { ObjectTarget } from './backup.js';
export { ObjectStoreSource } from './restore-source.js';
export { S3Store } from './s3-store.js';
export { bucketTarget } from './status.js';
export { readCatalog } from './catalog.js';
