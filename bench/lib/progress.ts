// The progress bar (cli-progress) on stderr, only on a TTY and without --quiet; otherwise
// a no-op, so benches report progress unconditionally.
import cliProgress from 'cli-progress';

export interface Progress {
  /** `fraction` of the whole bench done (0..1), with a phase label. */
  update(fraction: number, phase: string): void;
  stop(): void;
}

export function createProgress(name: string, enabled: boolean): Progress {
  if (!enabled || !process.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${name} |{bar}| {percentage}% {phase}`,
      hideCursor: true,
      clearOnComplete: true,
      barsize: 30,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(1000, 0, { phase: 'starting' });
  return {
    update(fraction, phase) {
      bar.update(Math.max(0, Math.min(1000, Math.round(fraction * 1000))), { phase });
    },
    stop() {
      bar.stop();
    },
  };
}
