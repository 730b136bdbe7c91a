/** A restore that cannot go on, with what the operator can do about it; the CLI prints it and exits 1. */
export class RestoreError extends Error {
  override name = 'RestoreError';
}
