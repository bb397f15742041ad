import type { ExpositionCache } from '../../../src/publish/prometheus.js';

/**
 * An exposition whose /metrics answers wait until `release()`: scrapes held in progress. `entered`
 * resolves once the first is inside, `inside()` counts them all.
 */
export function heldExposition(): { exposition: ExpositionCache; entered: Promise<void>; inside: () => number; release: () => void } {
  let entered!: () => void;
  let release!: () => void;
  const enteredP = new Promise<void>((r) => (entered = r));
  const gate = new Promise<void>((r) => (release = r));
  let inside = 0;
  const exposition = {
    renderChunks: async () => {
      inside++;
      entered();
      await gate;
      return [Buffer.from('held_metric 1\n')];
    },
  } as unknown as ExpositionCache;
  return { exposition, entered: enteredP, inside: () => inside, release };
}
