/** The object-storage target's entry points; the CLI imports this lazily (the AWS SDK is large). */
export { backupVmToS3 } from './backup.js';
export { restoreVmFromS3 } from './restore.js';
export { S3Store } from './s3-store.js';
export { bucketTarget } from './status.js';
export { readCatalog } from './catalog.js';
export { completeSets } from './restore.js';
