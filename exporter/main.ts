#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=4
/**
 * The bpf-map-exporter command line. Thin: parses arguments, calls the library, prints one clear
 * line on expected errors (never a stack trace) and sets the exit code.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DEFAULT_MAX_REQUESTS, RESERVED_PATHS } from '../src/server/paths.js';
import { isExpected } from '../src/util/errors.js';

const USAGE = `usage: bpf-map-exporter <command> [options]

commands:
  run [--config FILE | --config.dir DIR --config.names A,B] [--web.listen-address HOST:PORT]... [--web.config.file FILE]
      [--web.max-connections N] [--web.telemetry-path PATH] [--web.max-requests N] [--web.disable-exporter-metrics]
      [--inventory] [--log.level LEVEL] [--log.format logfmt|json]
                                                     the exporter: /metrics on :9435 (and OTLP push when
                                                     OTEL_EXPORTER_OTLP_ENDPOINT is set); no config: inventory.
                                                     --web.config.file: TLS, basic auth and headers in the
                                                     Prometheus exporter-toolkit format (docs/web-config.md)
                                                     --web.max-connections: connections kept open (default:
                                                     half the free fds, 16 to 1024; docs/deployment.md)
                                                     --web.telemetry-path: where the metrics are (/metrics)
                                                     --web.max-requests: scrapes answered at once, more get
                                                     503 (default 40; 0: no limit)
                                                     --web.disable-exporter-metrics: no process_* and nodejs_*
                                                     --log.format: logfmt (default at a terminal) or JSON
                                                     lines (default otherwise)
  check --config FILE                                validate a config: it parses, its maps resolve, layouts fit,
                                                     the programs of its objects find their attach targets
  check --web.config.file FILE                       validate a web config and the certificate files it names
                                                     (both flags may be given together)
  convert --config.dir DIR --config.names A,B        print ebpf_exporter's configs DIR/A.yaml (+ A.bpf.o)... as our config
                                                     (--config.dir/--config.names also work with run, check and dump:
                                                     their configs run as they are; docs/migrating-from-ebpf-exporter.md)
  dump --config FILE [--map NAME] [--format json|table]
                                                     print the series the config yields right now
  maps [--json]                                      list every BPF map on this host (id, name, type, sizes, entries, fill)
  --version         print the version
  --help            print this help`;

function version(): string {
  // package.json is one folder up from exporter/main.ts and two from dist/exporter/main.js.
  const url = [new URL('../package.json', import.meta.url), new URL('../../package.json', import.meta.url)].find((u) => existsSync(u));
  if (url === undefined) return 'unknown';
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}

async function main(argv: string[]): Promise<number> {
  // The logger reads LOG_LEVEL and LOG_FORMAT when it is first loaded, which is after this.
  const level = flagValue(argv, 'log.level');
  if (level !== undefined && level !== '') process.env.LOG_LEVEL = level;
  const format = flagValue(argv, 'log.format');
  if (format !== undefined) {
    if (format !== 'logfmt' && format !== 'json') return flagError(`--log.format must be logfmt or json, not ${JSON.stringify(format)}`);
    process.env.LOG_FORMAT = format;
  }
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      version: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      json: { type: 'boolean' },
      config: { type: 'string', short: 'c' },
      'config.dir': { type: 'string' },
      'config.names': { type: 'string' },
      map: { type: 'string' },
      format: { type: 'string', default: 'json' },
      'web.listen-address': { type: 'string', multiple: true, default: [':9435'] },
      'web.config.file': { type: 'string' },
      'web.max-connections': { type: 'string' },
      'web.telemetry-path': { type: 'string', default: '/metrics' },
      'web.max-requests': { type: 'string', default: String(DEFAULT_MAX_REQUESTS) },
      'web.disable-exporter-metrics': { type: 'boolean', default: false },
      inventory: { type: 'boolean', default: false },
      'log.level': { type: 'string' },
      'log.format': { type: 'string' },
    },
  });
  if (values.version === true) {
    console.log(version());
    return 0;
  }
  const command = positionals[0];
  if (values.help === true || command === undefined) {
    console.log(USAGE);
    return command === undefined && values.help !== true ? 2 : 0;
  }
  // ebpf_exporter's flags: a folder of NAME.yaml + NAME.bpf.o, and the names to load.
  const dir = values['config.dir'];
  const names = values['config.names'];
  if ((dir === undefined) !== (names === undefined)) return usageError(`--config.dir and --config.names go together (ebpf_exporter's configs), ${dir === undefined ? '--config.dir' : '--config.names'} is missing`);
  if (dir !== undefined && values.config !== undefined) return usageError('--config names our config, --config.dir and --config.names ebpf_exporter\'s: give one or the other');
  const compat = dir === undefined || names === undefined ? undefined : { dir, names };
  if (command === 'run') {
    const max = values['web.max-connections'];
    if (max !== undefined && !/^[1-9]\d{0,6}$/.test(max)) return flagError(`--web.max-connections must be a whole number from 1 to 9999999, not ${JSON.stringify(max)}`);
    const telemetryPath = values['web.telemetry-path'];
    if (!/^\/[\x21-\x7e]*$/.test(telemetryPath) || RESERVED_PATHS.has(telemetryPath)) {
      return flagError(`--web.telemetry-path must be a path of its own such as /metrics (not /, /healthz or /readyz), not ${JSON.stringify(telemetryPath)}`);
    }
    const maxRequests = values['web.max-requests'];
    if (!/^(0|[1-9]\d{0,6})$/.test(maxRequests)) return flagError(`--web.max-requests must be a whole number, 0 for no limit, not ${JSON.stringify(maxRequests)}`);
    const { run } = await import('./run.js');
    return run({
      config: values.config,
      compat,
      listen: values['web.listen-address'],
      webConfig: values['web.config.file'],
      maxConnections: max === undefined ? undefined : Number(max),
      telemetryPath,
      maxRequests: Number(maxRequests),
      disableExporterMetrics: values['web.disable-exporter-metrics'],
      inventory: values.inventory,
      version: version(),
    });
  }
  if (command === 'convert') {
    if (compat === undefined) return usageError('convert needs --config.dir DIR --config.names A,B');
    const { convert } = await import('./config-commands.js');
    const r = convert(compat);
    for (const line of r.out) console.log(line);
    for (const line of r.err) console.error(line);
    return r.code;
  }
  if (command === 'maps') {
    // Loaded lazily: --version and --help work where libbpf.so.1 is missing.
    const { inventory } = await import('../src/bpf/inventory.js');
    const { formatMapTable } = await import('./maps.js');
    const rows = inventory();
    console.log(values.json === true ? JSON.stringify(rows, null, 2) : formatMapTable(rows));
    return 0;
  }
  if (command === 'check' && values['web.config.file'] !== undefined) {
    const { checkWeb } = await import('./web-check.js');
    const web = checkWeb(values['web.config.file']);
    const { check } = await import('./config-commands.js');
    const ref = compat ?? values.config;
    const r = ref === undefined ? { out: [], err: [], code: 0 } : check(ref);
    for (const line of [...r.out, ...web.out]) console.log(line);
    for (const line of [...r.err, ...web.err]) console.error(line);
    return Math.max(r.code, web.code);
  }
  if (command === 'check' || command === 'dump') {
    const ref = compat ?? values.config;
    if (ref === undefined) return usageError(`${command} needs --config FILE (or --config.dir DIR --config.names A,B)`);
    if (values.format !== 'json' && values.format !== 'table') return usageError(`--format must be json or table, not ${JSON.stringify(values.format)}`);
    const { check, dump } = await import('./config-commands.js');
    const r = command === 'check' ? check(ref) : dump(ref, { map: values.map, format: values.format });
    for (const line of r.out) console.log(line);
    for (const line of r.err) console.error(line);
    return r.code;
  }
  return usageError(`unknown command ${JSON.stringify(command)}`);
}

/** The value of `--name VALUE` or `--name=VALUE` in `argv`, before parseArgs runs. */
function flagValue(argv: string[], name: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}`) return argv[i + 1] ?? '';
    if (argv[i].startsWith(`--${name}=`)) return argv[i].slice(name.length + 3);
  }
  return undefined;
}

/** A flag's value is wrong: one line saying which and why, exit 2. */
function flagError(message: string): number {
  console.error(`bpf-map-exporter: ${message}`);
  return 2;
}

function usageError(message: string): number {
  console.error(`bpf-map-exporter: ${message}\n${USAGE}`);
  return 2;
}

/**
 * Exit with `code` once stdout and stderr have handed everything written to them to the system.
 * Through a pipe they are asynchronous: process.exit() at once cut `dump | jq` off after 64 KiB.
 */
function exitAfterOutput(code: number): void {
  process.exitCode = code;
  let open = 2;
  const drained = (): void => {
    if (--open === 0) process.exit(code);
  };
  // A write's callback runs once it and every write before it have left the stream.
  for (const stream of [process.stdout, process.stderr]) stream.write('', drained);
}

main(process.argv.slice(2)).then(exitAfterOutput, (e: unknown) => {
  const err = e as { code?: string; message?: string };
  // Expected errors (ours, bad arguments) are one line: 2 for what the user wrote, 1 for the rest.
  // Anything else is a bug worth its stack.
  const usage = err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' || err.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL';
  if (usage || isExpected(e)) {
    console.error(`bpf-map-exporter: ${err.message}`);
    exitAfterOutput(usage || err.code === 'ERR_CONFIG' ? 2 : 1);
    return;
  }
  console.error(e);
  exitAfterOutput(1);
});
