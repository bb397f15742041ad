/**
 * No test may block its worker forever on a child process. Vitest cannot time out a test that waits
 * synchronously (spawnSync, execFileSync, execSync): a child that never exits would hang the whole
 * run. Here every synchronous child gets a timeout unless the test sets its own, so such a child is
 * killed and its test fails with ETIMEDOUT instead.
 */
import childProcess from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';

const CHILD_TIMEOUT_MS = Number(process.env.BME_TEST_CHILD_TIMEOUT_MS ?? 120_000);

type Options = { timeout?: number } | undefined;
const withTimeout = <T extends Options>(options: T): T => ({ timeout: CHILD_TIMEOUT_MS, ...options }) as T;
/** Where a call's options object sits: after the arguments array when there is one. */
const patch = <F extends (...a: never[]) => unknown>(fn: F, hasArgs: (a: unknown[]) => boolean): F =>
  ((...a: unknown[]) => {
    const at = hasArgs(a) ? 2 : 1;
    const opts = a[at];
    if (opts !== undefined && (typeof opts !== 'object' || opts === null)) return fn(...(a as never[]));
    const args = [...a];
    while (args.length < at) args.push(undefined);
    args[at] = withTimeout(opts as Options);
    return fn(...(args as never[]));
  }) as unknown as F;

const arrayArgs = (a: unknown[]) => Array.isArray(a[1]) || a.length > 1 && a[1] === undefined;
childProcess.spawnSync = patch(childProcess.spawnSync, arrayArgs);
childProcess.execFileSync = patch(childProcess.execFileSync, arrayArgs);
childProcess.execSync = patch(childProcess.execSync, () => false);
syncBuiltinESMExports();
