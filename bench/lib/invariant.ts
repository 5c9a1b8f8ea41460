// The shared mutual-exclusion invariant of the lock benchmarks (ours, and redlock's with
// `--compare redlock`), checked by every contender of every process.
import { closeSync, openSync, readSync, writeSync } from 'node:fs';

/** A token as a number for the ordering check, or NaN when it is not numeric. */
function tokenNumber(token: unknown): number {
  if (typeof token === 'number') return token;
  if (typeof token === 'bigint') return Number(token);
  return NaN;
}

/**
 * The shared invariant: per resource a 16-byte slot of a file every contender of every
 * process reads and writes with synchronous pread/pwrite (one page cache, so all see the same
 * bytes at once). Bytes 0-7: the holder's id, 0 when free: a holder entering must find 0, and
 * must find its own id when it leaves. Bytes 8-15: the last fencing token granted, which the
 * next holder's token must exceed. Timestamps from different processes are never compared.
 */
export class Invariant {
  readonly #fd: number;
  readonly #buf = Buffer.alloc(8);
  violations = 0;
  tokenViolations = 0;
  tokenChecks = 0;

  constructor(file: string) {
    this.#fd = openSync(file, 'r+');
  }

  enter(resource: number, id: number, token: unknown): void {
    const off = resource * 16;
    readSync(this.#fd, this.#buf, 0, 8, off);
    if (this.#buf.readDoubleLE(0) !== 0) this.violations++;
    this.#buf.writeDoubleLE(id, 0);
    writeSync(this.#fd, this.#buf, 0, 8, off);
    const t = tokenNumber(token);
    if (!Number.isNaN(t)) {
      this.tokenChecks++;
      readSync(this.#fd, this.#buf, 0, 8, off + 8);
      const last = this.#buf.readDoubleLE(0);
      if (last !== 0 && !(t > last)) this.tokenViolations++;
      this.#buf.writeDoubleLE(t, 0);
      writeSync(this.#fd, this.#buf, 0, 8, off + 8);
    }
  }

  leave(resource: number, id: number): void {
    const off = resource * 16;
    readSync(this.#fd, this.#buf, 0, 8, off);
    if (this.#buf.readDoubleLE(0) !== id) this.violations++;
    this.#buf.writeDoubleLE(0, 0);
    writeSync(this.#fd, this.#buf, 0, 8, off);
  }

  close(): void {
    closeSync(this.#fd);
  }
}

