// The failure detector against a fake link and a hand-driven clock.
import { describe, expect, test } from 'vitest';
import { HeartbeatMonitor, type HeartbeatLink } from '../src/mesh/heartbeat.js';

const OPTS = { heartbeatInterval: 100, failureTimeout: 500, highWaterMark: 1000 };

function fakeLink() {
  const link = { beats: 0, bufferedAmount: 0, bytesReceived: undefined as number | undefined, failed: [] as string[] };
  const api: HeartbeatLink = {
    sendHeartbeat: () => void link.beats++,
    get bufferedAmount() {
      return link.bufferedAmount;
    },
    get bytesReceived() {
      return link.bytesReceived;
    },
    fail: (reason) => void link.failed.push(reason),
  };
  return { link, api };
}

describe('HeartbeatMonitor', () => {
  test('a silent peer fails after failureTimeout, not before', () => {
    const { link, api } = fakeLink();
    const hb = new HeartbeatMonitor(api, OPTS, 0);
    for (let t = 100; t <= 500; t += 100) hb.tick(t);
    expect(link.failed).toEqual([]);
    hb.tick(600);
    expect(link.failed).toEqual(['heartbeat_timeout']);
    hb.tick(700);
    expect(link.failed).toHaveLength(1); // once
  });

  test('any frame received keeps the peer alive', () => {
    const { link, api } = fakeLink();
    const hb = new HeartbeatMonitor(api, OPTS, 0);
    for (let t = 100; t <= 3000; t += 100) {
      if (t % 400 === 0) hb.received = true;
      hb.tick(t);
    }
    expect(link.failed).toEqual([]);
  });

  test('bytes of a large frame still arriving keep the peer alive; a stall mid-frame does not', () => {
    const { link, api } = fakeLink();
    link.bytesReceived = 0;
    const hb = new HeartbeatMonitor(api, OPTS, 0);
    for (let t = 100; t <= 3000; t += 100) {
      link.bytesReceived += 65536; // no whole frame yet, but bytes flow
      hb.tick(t);
    }
    expect(link.failed).toEqual([]);
    for (let t = 3100; t <= 3500; t += 100) hb.tick(t); // the flow stops
    expect(link.failed).toEqual([]);
    hb.tick(3600);
    expect(link.failed).toEqual(['heartbeat_timeout']);
  });

  test('heartbeats go out only on ticks with nothing else sent', () => {
    const { link, api } = fakeLink();
    const hb = new HeartbeatMonitor(api, OPTS, 0);
    hb.sent = true;
    hb.received = true;
    hb.tick(100);
    expect(link.beats).toBe(0);
    hb.received = true;
    hb.tick(200);
    expect(link.beats).toBe(1);
  });

  test('our own stall (a long gap between ticks) gives the peer a fresh window', () => {
    const { link, api } = fakeLink();
    const hb = new HeartbeatMonitor(api, OPTS, 0);
    hb.tick(100);
    hb.tick(10_000); // this process was stopped for ~10 s
    expect(link.failed).toEqual([]);
    for (let t = 10_100; t <= 10_500; t += 100) hb.tick(t);
    expect(link.failed).toEqual([]);
    hb.tick(10_600); // silent for 600 ms since the stall ended
    expect(link.failed).toEqual(['heartbeat_timeout']);
  });

  test('a write backlog above the high-water mark for longer than failureTimeout fails the link', () => {
    const { link, api } = fakeLink();
    const hb = new HeartbeatMonitor(api, OPTS, 0);
    link.bufferedAmount = 5000;
    for (let t = 100; t <= 600; t += 100) {
      hb.received = true;
      hb.tick(t);
    }
    expect(link.failed).toEqual([]);
    link.bufferedAmount = 10; // drained: the clock restarts
    hb.received = true;
    hb.tick(700);
    link.bufferedAmount = 5000;
    for (let t = 800; t <= 1300; t += 100) {
      hb.received = true;
      hb.tick(t);
    }
    expect(link.failed).toEqual([]);
    hb.received = true;
    hb.tick(1400);
    expect(link.failed).toEqual(['backpressure']);
  });
});
