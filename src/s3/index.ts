/** The object-storage target's entry points; the CLI imports this lazily (the AWS SDK is large). */
export { ObjectTarget } from './backup.js';
export { restoreVmFromS3 } from './restore.js';
export { S3Store } from './s3-store.js';
export { collectS3Status } from './status.js';
export { readCatalog } from './catalog.js';
export { completeSets } from './restore.js';
