/**
 * Agent tokens: `vmsa_<id>_<secret>`. The id names the credential to operators (lists, revocation); the
 * secret is 32 random bytes. Only the SHA-256 of the whole token is stored, so a copy of the database
 * lets nobody heartbeat for a server.
 */
import { createHash, randomBytes } from 'node:crypto';

const TOKEN_PATTERN = /^vmsa_([a-z0-9]{10})_[A-Za-z0-9_-]{43}$/;
const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

export interface IssuedToken {
  id: string;
  token: string;
  hash: Buffer;
}

export const hashToken = (token: string): Buffer => createHash('sha256').update(token).digest();

export const newAgentToken = (): IssuedToken => {
  const id = [...randomBytes(10)].map((byte) => ID_ALPHABET[byte % ID_ALPHABET.length]).join('');
  const token = `vmsa_${id}_${randomBytes(32).toString('base64url')}`;
  return { id, token, hash: hashToken(token) };
};

/** Whether a text has the shape of a token: anything else is refused without a look-up. */
export const looksLikeAgentToken = (text: string): boolean => TOKEN_PATTERN.test(text);
