import { generateKeyPairSync } from 'node:crypto';

/** A P-256 key in PEM for the in-process ssh2 servers and their clients: ssh2's own ed25519 generator writes about one key in 250 that its parser then rejects. */
export const newKey = (): string =>
  generateKeyPairSync('ec', {
    namedCurve: 'prime256v1',
    privateKeyEncoding: { type: 'sec1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  }).privateKey;
