import { describe, expect, it } from 'vitest';
import {
  ActorDownError,
  CallTimeoutError,
  ExpirableError,
  LockNotAcquiredError,
  NodeDownError,
  SerializationError,
} from '../src/index.js';
import { fromWire, RemoteError, toCause, toWire } from '../src/errors.js';

describe('errors', () => {
  const ref = { node: 'n1', id: 'a.1' };
  const cases: Error[] = [
    new CallTimeoutError(ref, 100),
    new ActorDownError(ref, 'noproc'),
    new ActorDownError(ref, { crashed: new Error('boom') }),
    new NodeDownError('n2', 'closed'),
    new SerializationError('cannot encode a function'),
    new LockNotAcquiredError('res', 'timeout', 'after 10 ms'),
    new ExpirableError('token', 'fetch_failed', 'github refused', { cause: new Error('403') }),
  ];

  it.each(cases.map((e) => [e.name, e]))('%s has name, code, a clear message and survives the wire', (_n, err) => {
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe(err.constructor.name);
    expect((err as unknown as { code: string }).code).toMatch(/^ERR_/);
    expect(err.message.length).toBeGreaterThan(10);
    const back = fromWire(structuredClone(toWire(err)));
    expect(back).toBeInstanceOf(err.constructor);
    expect(back.message).toBe(err.message);
    if (err.cause) expect((back.cause as Error).message).toBe((err.cause as Error).message);
  });

  it('messages name what failed', () => {
    expect(new CallTimeoutError(ref, 100).message).toBe('call to actor a.1@n1 timed out after 100 ms');
    expect(new NodeDownError('n2').message).toContain('n2');
    expect(new ExpirableError('token', 'timeout').reason).toBe('timeout');
  });

  it('foreign errors come back as RemoteError keeping name and message', () => {
    const back = fromWire(toWire(new TypeError('nope')));
    expect(back).toBeInstanceOf(RemoteError);
    expect((back as RemoteError).remoteName).toBe('TypeError');
    expect(back.message).toBe('nope');
  });

  it('toCause turns anything thrown into an Error', () => {
    expect(toCause('text').message).toBe('text');
    expect(toCause({ a: 1 }).message).toContain('{"a":1}');
    const e = new Error('x');
    expect(toCause(e)).toBe(e);
  });
});

describe('errors from the wire', () => {
  // Regression: a remote ActorDownError carried reason.crashed as plain data, not an Error.
  it('a crashed reason comes back with an Error inside', () => {
    const wire = structuredClone(toWire(new ActorDownError({ node: 'n', id: 'x' }, { crashed: new TypeError('boom') })));
    const back = fromWire(wire) as ActorDownError;
    expect(back).toBeInstanceOf(ActorDownError);
    const reason = back.reason as { crashed: unknown };
    expect(reason.crashed).toBeInstanceOf(Error);
    expect((reason.crashed as Error).message).toBe('boom');
  });

  // Regression: a malformed error reply threw a TypeError inside fromWire (and closed the link).
  it.each([
    { name: 'CallTimeoutError', code: 'ERR_CALL_TIMEOUT', message: 'm' },
    { name: 'ActorDownError', code: 'ERR_ACTOR_DOWN', message: 'm', data: { ref: 5, reason: [] } },
    { name: 'NodeDownError', code: 'ERR_NODE_DOWN', message: 'm', data: { node: {} } },
    { name: 'X', code: 'ERR_EXPIRABLE', message: 7, data: null, cause: 'nope' },
  ])('malformed wire data %o becomes a RemoteError, never a throw', (wire) => {
    const back = fromWire(wire as never);
    expect(back).toBeInstanceOf(RemoteError);
  });
});
