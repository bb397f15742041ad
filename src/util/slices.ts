/**
 * Yielding between slices of work: nextTurn() for work a request may be waiting for (a render, a
 * read), nextSlice() for work that no request waits for (the OTLP request of an export, the point
 * messages of new series), which also gives way to the HTTP responses being written.
 *
 * A /metrics body of 8 MB (100,000 series) is written over several turns of the event loop, one
 * socket buffer at a time. Work that yields after every slice with a bare setImmediate runs a slice
 * between each of those writes, so a scrape that meets an export takes as long as all of it.
 * nextSlice() lets the responses in progress finish first, for at most DEFER_MS per slice, so that
 * slow or stuck clients slow the work down and never stop it. A document's render does not wait:
 * the next scrape may be waiting for it. The count is the process's: there is one event loop,
 * whatever the number of servers.
 */

/** Responses begun and not yet done. */
let writing = 0;

/** How long a slice waits at most for the responses in progress to be written out. */
export const DEFER_MS = 10;

/** A response begins to be written; call what this returns once it is done (more calls do nothing). */
export function responseBegun(): () => void {
  writing++;
  let done = false;
  return () => {
    if (done) return;
    done = true;
    writing--;
  };
}

/** Whether a response is being written. */
export function responding(): boolean {
  return writing > 0;
}

/** Resolves after this turn of the loop. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Resolves after this turn of the loop, once no response is being written (or after DEFER_MS). */
export function nextSlice(): Promise<void> {
  return new Promise((resolve) => {
    const since = Date.now();
    const check = (): void => {
      if (writing === 0 || Date.now() - since >= DEFER_MS) resolve();
      else setTimeout(check, 1);
    };
    setImmediate(check);
  });
}
