// The child side of procs.ts: `serve({ op: async (args) => value })` answers the parent's
// requests over IPC, `emit(event, data)` pushes events, and the process exits by itself
// when the parent goes away.

type Handler = (args: any) => unknown; // eslint-disable-line @typescript-eslint/no-explicit-any

export function emit(event: string, data?: unknown): void {
  process.send?.({ event, data });
}

export function serve(handlers: Record<string, Handler>): void {
  if (!process.send) throw new Error('a bench child must be forked with an IPC channel');
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: { id: number; op: string; args: unknown }) => {
    const h = handlers[m.op];
    Promise.resolve()
      .then(() => {
        if (!h) throw new Error(`unknown op ${m.op}`);
        return h(m.args);
      })
      .then(
        (value) => process.send?.({ id: m.id, ok: true, value }),
        (e: unknown) => process.send?.({ id: m.id, ok: false, error: (e as Error)?.stack ?? String(e) }),
      );
  });
  emit('ready');
}
