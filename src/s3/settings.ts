import type { Config } from '../config/schema.js';

/** The `s3` section of configuration.json, defaults applied. */
export type S3Settings = NonNullable<Config['s3']>;
