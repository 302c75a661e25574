/**
 * A signed webhook call, as the operator's receiver takes alerts: a JSON POST, signed with HMAC-SHA256 over
 * `timestamp.body` (the timestamp in `x-vms-timestamp`, so a captured request cannot be replayed later as
 * new), with the alert's id in `x-vms-alert-id` (the same alert may arrive twice after a retry: its id is
 * the key to drop the second).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export const ALERT_ID_HEADER = 'x-vms-alert-id';
export const ALERT_TIMESTAMP_HEADER = 'x-vms-timestamp';
export const ALERT_SIGNATURE_HEADER = 'x-vms-signature';

export const alertSignature = (secret: string, timestamp: string, body: string): string =>
  `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;

/** What a receiver runs: the signature matches, in constant time. */
export const isAlertSignatureValid = (
  secret: string,
  timestamp: string,
  body: string,
  signature: string,
): boolean => {
  const expected = Buffer.from(alertSignature(secret, timestamp, body));
  const given = Buffer.from(signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
};

/** The webhook as it is recorded and logged: no credentials, no query. */
export const webhookName = (webhook: string): string => {
  const url = new URL(webhook);
  return `${url.origin}${url.pathname}`;
};

/** POSTs the body; resolves when the webhook answered 2xx, rejects with what it answered otherwise. */
export const postToWebhook = (
  webhook: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<void> =>
  new Promise((resolve, reject) => {
    const url = new URL(webhook);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const sent = send(
      url,
      {
        method: 'POST',
        timeout: timeoutMs,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          ...headers,
        },
      },
      (response) => {
        response.resume();
        response.on('end', () => {
          const status = response.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve();
          else reject(new Error(`the webhook answered HTTP ${status}`));
        });
      },
    );
    sent.on('timeout', () => sent.destroy(new Error(`the webhook did not answer within ${timeoutMs} ms`)));
    sent.on('error', reject);
    sent.end(body);
  });
