/**
 * Alerts reach a person: each goes to the operator's webhook as a signed JSON POST, once. A webhook that is
 * down for a while — across a restart of the worker — gets it when it comes back; delivery is a workflow.
 */
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ALERT_ID_HEADER,
  ALERT_SIGNATURE_HEADER,
  ALERT_TIMESTAMP_HEADER,
  isAlertSignatureValid,
} from '../../infra/signed-webhook';
import { deliveriesOf } from '../../store/alert-deliveries';
import { raiseAlert } from '../../store/alerts';
import { terminateRunningWorkflows } from '../support/cleanup';
import { buildService, killAllServices, startService } from '../support/service-process';
import { serviceEnv } from '../support/service-env';
import { site, slave } from '../support/site';
import { eventually } from '../support/wait';
import { useTestWorld } from '../support/world';

const SECRET = 'webhook-signing-key-for-tests';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  /** The status answered; none for a request held unanswered. */
  answered?: number;
}

/**
 * The operator's receiver: answers 503 while `down`, 204 otherwise, and nothing while `holding` (a webhook
 * slow to answer); keeps every request it got.
 */
const startReceiver = async () => {
  const received: Received[] = [];
  const state = { down: true, holding: false };
  const server: Server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      if (state.holding) {
        received.push({ headers: request.headers, body });
        return;
      }
      const answered = state.down ? 503 : 204;
      received.push({ headers: request.headers, body, answered });
      response.writeHead(answered).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/vms-alerts`,
    received,
    state,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
};

let receiver: Awaited<ReturnType<typeof startReceiver>> | undefined;

beforeAll(buildService, 180_000);

afterEach(async () => {
  await killAllServices();
  await receiver?.close();
  receiver = undefined;
  await terminateRunningWorkflows(world.current.client, world.current.taskQueue);
});

const world = useTestWorld();

test('an alert raised while the webhook is down is delivered once, signed, when it comes back — across a worker restart', async () => {
  const w = world.current;
  await w.seed(site(slave({ id: 'rec-01' })));
  receiver = await startReceiver();
  const env = {
    ...serviceEnv(w),
    GATEWAY_HOST: '127.0.0.1',
    GATEWAY_PORT: '0',
    ALERT_WEBHOOK_URLS: receiver.url,
    ALERT_WEBHOOK_SECRET: SECRET,
  };
  const first = startService(env);
  await first.ready();

  await raiseAlert(w.db, {
    id: 'test-alert-1',
    kind: 'mass-failure-held',
    serverId: 'rec-01',
    message: 'a test alert',
    details: { reason: 'test' },
  });
  await eventually('the webhook to refuse a first attempt', () =>
    Promise.resolve(receiver !== undefined && receiver.received.length >= 1 ? true : undefined),
  );
  // The second attempt reaches the webhook, which holds it; the worker dies with it unanswered. Another
  // worker starts and the webhook comes back: the delivery goes on.
  receiver.state.holding = true;
  await eventually('the webhook to hold a second attempt', () =>
    Promise.resolve(receiver !== undefined && receiver.received.length >= 2 ? true : undefined),
  );
  await first.kill();
  receiver.state.holding = false;
  receiver.state.down = false;
  const second = startService(env);
  await second.ready();

  const taken = await eventually(
    'the webhook to take the alert',
    () => {
      const accepted = receiver?.received.filter((request) => request.answered === 204) ?? [];
      return Promise.resolve(accepted.length > 0 ? accepted : undefined);
    },
    // A delivery attempt the kill cut short is tried again after its start-to-close timeout (1 minute).
    { timeoutMs: 150_000 },
  );
  expect(taken).toHaveLength(1);
  const [delivery] = taken ?? [];
  const payload = JSON.parse(delivery?.body ?? '{}') as Record<string, unknown>;
  expect(payload).toMatchObject({
    site: w.site,
    id: 'test-alert-1',
    kind: 'mass-failure-held',
    serverId: 'rec-01',
    message: 'a test alert',
    details: { reason: 'test' },
  });
  const headers = delivery?.headers ?? {};
  expect(headers[ALERT_ID_HEADER]).toBe('test-alert-1');
  expect(
    isAlertSignatureValid(
      SECRET,
      String(headers[ALERT_TIMESTAMP_HEADER]),
      delivery?.body ?? '',
      String(headers[ALERT_SIGNATURE_HEADER]),
    ),
  ).toBe(true);
  expect(
    isAlertSignatureValid(
      'another key',
      String(headers[ALERT_TIMESTAMP_HEADER]),
      delivery?.body ?? '',
      String(headers[ALERT_SIGNATURE_HEADER]),
    ),
  ).toBe(false);

  // The worker records the delivery once the webhook answered, and every attempt, the one cut short too.
  const recorded = await eventually('the delivery to be recorded', async () => {
    const [delivery] = await deliveriesOf(w.db, ['test-alert-1']);
    return delivery?.deliveredAt ? delivery : undefined;
  });
  expect(recorded.attempts).toBe(receiver.received.length);
  // Delivered: nothing more is sent, whatever the sweep finds.
  const countAtDelivery = receiver.received.length;
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  expect(receiver.received).toHaveLength(countAtDelivery);
}, 240_000);
