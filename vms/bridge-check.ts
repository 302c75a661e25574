/**
 * The conformance check of a VMS bridge: runs the contract of docs/vms-bridge.md against any bridge and
 * says, check by check, what was expected and what was seen. Destructive: it promotes the standby in place
 * of the Slave, moves the cameras, fences and demotes the Slave and installs a plugin. Run it against a test
 * site in its initial state.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { VmsUnavailable } from './control-plane';
import type { VmsServerStatus } from './control-plane';
import {
  BridgePaths,
  ShapeError,
  parseCallsAnswer,
  parseErrorBody,
  parseOneStatusBody,
  parseOperation,
  parseStatusBody,
} from './bridge-protocol';
import type { CallAnswer, PluginInstallOperation } from './bridge-protocol';
import { BridgeTransport } from './bridge-transport';
import type { BridgeAnswer, BridgeConnection, BridgeExchange } from './bridge-transport';

export interface BridgeCheckOptions {
  connection: BridgeConnection;
  /** Every answer must come within this. */
  timeoutMs: number;
  /** The plugin install must end within this. */
  installTimeoutMs: number;
  pollIntervalMs?: number;
  standbyId: string;
  slaveId: string;
  /** IP cameras of the Slave, moved to the standby. */
  cameraIds: string[];
  plugin: string;
}

export type CheckVerdict = 'pass' | 'fail' | 'skip';

export interface CheckResult {
  check: string;
  verdict: CheckVerdict;
  expected: string;
  seen: string;
}

const DEFAULT_POLL_INTERVAL_MS = 500;

/** What an answer looked like: `200 {"outcome":"applied"} in 12 ms`. */
const describeAnswer = (answer: BridgeAnswer): string => {
  const body = answer.body === undefined ? '(no body)' : JSON.stringify(answer.body);
  const shown = body.length > 160 ? `${body.slice(0, 157)}...` : body;
  return `${answer.status} ${shown} in ${answer.elapsedMs} ms`;
};

/** The problem with an error answer, or undefined when it is `status` with `{error: {code, message}}`. */
const errorProblem = (answer: CallAnswer, status: number, code: string): string | undefined => {
  if (answer.status !== status) return `status ${answer.status}`;
  try {
    const error = parseErrorBody(answer.body);
    return error.code === code ? undefined : `code "${error.code}"`;
  } catch (problem) {
    if (problem instanceof ShapeError) return problem.message;
    throw problem;
  }
};

const outcomeProblem = (answer: CallAnswer, outcome: string): string | undefined => {
  if (answer.status !== 200) return `status ${answer.status}`;
  const seen = (answer.body as { outcome?: unknown } | undefined)?.outcome;
  return seen === outcome ? undefined : `outcome ${JSON.stringify(seen)}`;
};

class CheckRun {
  readonly results: CheckResult[] = [];
  slowestMs = 0;
  missedDeadlines = 0;
  private readonly transport: BridgeTransport;
  private readonly runId = randomUUID().slice(0, 8);

  constructor(private readonly options: BridgeCheckOptions) {
    this.transport = new BridgeTransport(options.connection);
  }

  requestId(step: string): string {
    return `bridge-check-${this.runId}-${step}`;
  }

  close(): void {
    this.transport.close();
  }

  skip(check: string, expected: string, why: string): void {
    this.results.push({ check, verdict: 'skip', expected, seen: why });
  }

  verdict(check: string, expected: string, problem: string | undefined, seen: string): void {
    this.results.push({ check, verdict: problem === undefined ? 'pass' : 'fail', expected, seen });
  }

  /**
   * One exchange judged by `problemOf` (undefined: as expected). Resolves with the answer, or undefined when
   * none came (the check then fails with the reason). `optional`: a call a bridge need not serve, skipped when
   * it answers 404 or 405.
   */
  async probe(
    check: string,
    expected: string,
    exchange: Omit<BridgeExchange, 'timeoutMs'>,
    problemOf: (answer: BridgeAnswer) => string | undefined,
    { optional = false } = {},
  ): Promise<BridgeAnswer | undefined> {
    let answer: BridgeAnswer;
    try {
      answer = await this.transport.exchange({ ...exchange, timeoutMs: this.options.timeoutMs });
    } catch (error) {
      if (!(error instanceof VmsUnavailable)) throw error;
      if (error.code === 'timeout') this.missedDeadlines += 1;
      this.results.push({ check, verdict: 'fail', expected, seen: error.message });
      return undefined;
    }
    this.slowestMs = Math.max(this.slowestMs, answer.elapsedMs);
    if (optional && (answer.status === 404 || answer.status === 405)) {
      this.skip(check, expected, `not served, optional: ${describeAnswer(answer)}`);
    } else {
      this.verdict(check, expected, problemOf(answer), describeAnswer(answer));
    }
    return answer;
  }

  /** A mutating call, then the same call again: applied once, then already-applied. */
  async idempotent(what: string, path: string, body: object): Promise<void> {
    for (const [check, outcome] of [
      [what, 'applied'],
      [`${what}, repeated with the same request id`, 'already-applied'],
    ] as const) {
      await this.probe(check, `200 {"outcome":"${outcome}"}`, { method: 'POST', path, body }, (answer) =>
        outcomeProblem(answer, outcome),
      );
    }
  }

  async status(): Promise<VmsServerStatus[] | undefined> {
    const answer = await this.probeQuietly({ method: 'GET', path: BridgePaths.status });
    if (answer?.status !== 200) return undefined;
    try {
      return parseStatusBody(answer.body);
    } catch (error) {
      if (error instanceof ShapeError) return undefined;
      throw error;
    }
  }

  /** The server's status after a call, judged by `problemOf`. */
  async statusAfter(
    check: string,
    expected: string,
    serverId: string,
    problemOf: (server: VmsServerStatus) => string | undefined,
  ): Promise<void> {
    const server = (await this.status())?.find((candidate) => candidate.serverId === serverId);
    if (server === undefined) {
      this.verdict(check, expected, 'missing', `no status of ${serverId}`);
      return;
    }
    this.verdict(check, expected, problemOf(server), JSON.stringify({ ...server, disks: undefined }));
  }

  async pollToEnd(operation: PluginInstallOperation): Promise<void> {
    const check = 'plugin install polled to its end';
    const expected = `succeeded, or failed with a message, within ${this.options.installTimeoutMs} ms`;
    const giveUpAt = Date.now() + this.options.installTimeoutMs;
    let current = operation;
    while (current.status === 'running') {
      if (Date.now() > giveUpAt) {
        this.verdict(check, expected, 'still running', `still running at ${current.progress}%`);
        return;
      }
      await sleep(this.options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS);
      const answer = await this.probeQuietly({
        method: 'GET',
        path: BridgePaths.operation(current.operationId),
      });
      const problem =
        answer === undefined
          ? 'no answer'
          : answer.status !== 200
            ? `status ${answer.status}`
            : shapeOf(parseOperation)(answer);
      if (problem !== undefined) {
        this.verdict(
          check,
          expected,
          problem,
          answer === undefined ? 'no answer in time' : describeAnswer(answer),
        );
        return;
      }
      current = parseOperation((answer as BridgeAnswer).body);
    }
    this.verdict(
      check,
      expected,
      undefined,
      current.status === 'succeeded' ? `succeeded (${current.outcome})` : `failed: ${current.message}`,
    );
  }

  private async probeQuietly(exchange: Omit<BridgeExchange, 'timeoutMs'>): Promise<BridgeAnswer | undefined> {
    try {
      const answer = await this.transport.exchange({ ...exchange, timeoutMs: this.options.timeoutMs });
      this.slowestMs = Math.max(this.slowestMs, answer.elapsedMs);
      return answer;
    } catch (error) {
      if (error instanceof VmsUnavailable && error.code === 'timeout') this.missedDeadlines += 1;
      return undefined;
    }
  }
}

const shapeOf =
  <T>(parse: (body: unknown) => T) =>
  (answer: BridgeAnswer): string | undefined => {
    try {
      parse(answer.body);
      return undefined;
    } catch (error) {
      if (error instanceof ShapeError) return error.message;
      throw error;
    }
  };

export const checkBridge = async (options: BridgeCheckOptions): Promise<CheckResult[]> => {
  const run = new CheckRun(options);
  const { standbyId, slaveId, cameraIds, plugin } = options;
  const token = options.connection.token;
  try {
    const health = await run.probe(
      'health',
      '200 with a JSON body',
      { method: 'GET', path: BridgePaths.health },
      (answer) => (answer.status === 200 && answer.json ? undefined : `status ${answer.status}`),
    );
    if (health === undefined) return run.results;
    const unknownServer = `bridge-check-unknown-${randomUUID().slice(0, 8)}`;

    await run.probe(
      'server status: every server, in the protocol shape',
      `200 {"servers": [...]} listing ${standbyId} and ${slaveId}`,
      { method: 'GET', path: BridgePaths.status },
      (answer) => {
        if (answer.status !== 200) return `status ${answer.status}`;
        const problem = shapeOf(parseStatusBody)(answer);
        if (problem !== undefined) return problem;
        const ids = parseStatusBody(answer.body).map((server) => server.serverId);
        const missing = [standbyId, slaveId].filter((id) => !ids.includes(id));
        return missing.length === 0 ? undefined : `missing ${missing.join(', ')}`;
      },
    );

    await run.probe(
      `server status: ${standbyId} alone`,
      `200 {"serverId": "${standbyId}", ...} in the protocol shape`,
      { method: 'GET', path: BridgePaths.serverStatus(standbyId) },
      (answer) => {
        if (answer.status !== 200) return `status ${answer.status}`;
        const problem = shapeOf(parseOneStatusBody)(answer);
        if (problem !== undefined) return problem;
        const { serverId } = parseOneStatusBody(answer.body);
        return serverId === standbyId ? undefined : `serverId ${serverId}`;
      },
    );

    await run.probe(
      `server status: ${standbyId} and an unknown server, named`,
      `200 {"servers": [...]} listing ${standbyId}, not ${unknownServer} (listing every server is fine)`,
      { method: 'GET', path: BridgePaths.statusOfServers([standbyId, unknownServer]) },
      (answer) => {
        if (answer.status !== 200) return `status ${answer.status}`;
        const problem = shapeOf(parseStatusBody)(answer);
        if (problem !== undefined) return problem;
        const ids = parseStatusBody(answer.body).map((server) => server.serverId);
        if (!ids.includes(standbyId)) return `missing ${standbyId}`;
        return ids.includes(unknownServer) ? `lists ${unknownServer}` : undefined;
      },
    );

    const unauthorized = '401 {"error": {"code": "unauthorized", ...}}';
    if (token === undefined) {
      run.skip('a call without the token is refused', unauthorized, 'no --token given');
      run.skip('a call with a wrong token is refused', unauthorized, 'no --token given');
    } else {
      await run.probe(
        'a call without the token is refused',
        unauthorized,
        { method: 'GET', path: BridgePaths.status, token: null },
        (answer) => errorProblem(answer, 401, 'unauthorized'),
      );
      await run.probe(
        'a call with a wrong token is refused',
        unauthorized,
        { method: 'GET', path: BridgePaths.status, token: `not-${token}` },
        (answer) => errorProblem(answer, 401, 'unauthorized'),
      );
    }

    const malformed = '400 {"error": {"code": "malformed-request", ...}}';
    await run.probe(
      'a body that is not JSON is refused',
      malformed,
      { method: 'POST', path: BridgePaths.promote(standbyId), rawBody: '{"requestId": ' },
      (answer) => errorProblem(answer, 400, 'malformed-request'),
    );
    await run.probe(
      'a body without a required field is refused',
      malformed,
      {
        method: 'POST',
        path: BridgePaths.promote(standbyId),
        body: { requestId: run.requestId('malformed') },
      },
      (answer) => errorProblem(answer, 400, 'malformed-request'),
    );
    await run.probe(
      'a call about an unknown server is refused',
      '404 {"error": {"code": "unknown-server", ...}}',
      {
        method: 'POST',
        path: BridgePaths.promote(unknownServer),
        body: { requestId: run.requestId('unknown-server'), replacesServerId: slaveId },
      },
      (answer) => errorProblem(answer, 404, 'unknown-server'),
    );
    await run.probe(
      'the status of an unknown server is refused',
      '404 {"error": {"code": "unknown-server", ...}}',
      { method: 'GET', path: BridgePaths.serverStatus(unknownServer) },
      (answer) => errorProblem(answer, 404, 'unknown-server'),
    );
    await run.probe(
      'an unknown operation is not found',
      '404 {"error": {"code": "unknown-operation", ...}}',
      { method: 'GET', path: BridgePaths.operation(`bridge-check-${randomUUID()}`) },
      (answer) => errorProblem(answer, 404, 'unknown-operation'),
    );

    await run.idempotent(`promote ${standbyId} in place of ${slaveId}`, BridgePaths.promote(standbyId), {
      requestId: run.requestId('promote'),
      replacesServerId: slaveId,
    });
    // The repeated promotion and a refused one, in one request: each answered as it would be alone.
    await run.probe(
      'several calls in one request, answered in order',
      '200 {"answers": [{"status": 200, "body": {"outcome": "already-applied"}}, ' +
        '{"status": 404, "body": {"error": {"code": "unknown-server", ...}}}]}',
      {
        method: 'POST',
        path: BridgePaths.calls,
        body: {
          calls: [
            {
              method: 'POST',
              path: BridgePaths.promote(standbyId),
              body: { requestId: run.requestId('promote'), replacesServerId: slaveId },
            },
            {
              method: 'POST',
              path: BridgePaths.promote(unknownServer),
              body: { requestId: run.requestId('unknown-server'), replacesServerId: slaveId },
            },
          ],
        },
      },
      (answer) => {
        if (answer.status !== 200) return `status ${answer.status}`;
        let answers: CallAnswer[];
        try {
          answers = parseCallsAnswer(answer.body, 2);
        } catch (error) {
          if (error instanceof ShapeError) return error.message;
          throw error;
        }
        const [repeated, refused] = answers as [CallAnswer, CallAnswer];
        const problem = outcomeProblem(repeated, 'already-applied');
        if (problem !== undefined) return `answers[0]: ${problem}`;
        const refusal = errorProblem(refused, 404, 'unknown-server');
        return refusal === undefined ? undefined : `answers[1]: ${refusal}`;
      },
      { optional: true },
    );
    await run.statusAfter(`status: ${standbyId} is a recorder`, 'role "recorder"', standbyId, (server) =>
      server.role === 'recorder' ? undefined : `role ${server.role}`,
    );

    await run.idempotent(
      `rebind ${cameraIds.join(', ')} to ${standbyId}`,
      BridgePaths.rebindCameras(standbyId),
      {
        requestId: run.requestId('rebind'),
        cameraIds,
      },
    );
    await run.probe(
      'a rebind of an unknown camera is refused',
      '404 {"error": {"code": "unknown-camera", ...}}',
      {
        method: 'POST',
        path: BridgePaths.rebindCameras(standbyId),
        body: { requestId: run.requestId('unknown-camera'), cameraIds: [`bridge-check-${randomUUID()}`] },
      },
      (answer) => errorProblem(answer, 404, 'unknown-camera'),
    );

    await run.idempotent(`fence ${slaveId}`, BridgePaths.fence(slaveId), {
      requestId: run.requestId('fence'),
    });
    await run.statusAfter(`status: ${slaveId} records nothing`, 'recording false', slaveId, (server) =>
      server.recording === false ? undefined : `recording ${String(server.recording)}`,
    );
    await run.idempotent(`demote ${slaveId} to standby`, BridgePaths.demote(slaveId), {
      requestId: run.requestId('demote'),
    });
    await run.statusAfter(`status: ${slaveId} is a standby`, 'role "standby"', slaveId, (server) =>
      server.role === 'standby' ? undefined : `role ${server.role}`,
    );

    const install = { requestId: run.requestId('install'), plugin };
    const started = await run.probe(
      `plugin install of ${plugin} on ${standbyId} starts an operation`,
      '202 {"operationId", "status": "running", "progress", ...}',
      { method: 'POST', path: BridgePaths.pluginInstalls(standbyId), body: install },
      (answer) => (answer.status === 202 ? shapeOf(parseOperation)(answer) : `status ${answer.status}`),
    );
    const operation =
      started?.status === 202 && shapeOf(parseOperation)(started) === undefined
        ? parseOperation(started.body)
        : undefined;
    if (operation === undefined) {
      run.skip('plugin install started again with the same request id', 'the same operation', 'no operation');
      run.skip('plugin install polled to its end', 'an end', 'no operation');
    } else {
      await run.probe(
        'plugin install started again with the same request id',
        `202 (running) or 200 (ended) with operationId ${operation.operationId}`,
        { method: 'POST', path: BridgePaths.pluginInstalls(standbyId), body: install },
        (answer) => {
          if (answer.status !== 202 && answer.status !== 200) return `status ${answer.status}`;
          const again = (answer.body as { operationId?: unknown } | undefined)?.operationId;
          return again === operation.operationId ? undefined : `operationId ${JSON.stringify(again)}`;
        },
      );
      await run.pollToEnd(operation);
    }

    run.verdict(
      `every answer within ${options.timeoutMs} ms`,
      `no answer slower than ${options.timeoutMs} ms`,
      run.missedDeadlines === 0 ? undefined : 'missed',
      run.missedDeadlines === 0
        ? `slowest answer ${run.slowestMs} ms`
        : `${run.missedDeadlines} calls got no answer in time (slowest answered ${run.slowestMs} ms)`,
    );
    return run.results;
  } finally {
    run.close();
  }
};
