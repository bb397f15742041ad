/**
 * What the deployment tests share: kustomize builds (kubectl's kustomize when it is installed, else
 * the small subset of kustomize the manifests use, implemented here), the capability tables of
 * docs/deployment.md, strict field-name checks against the schemas of kubernetes-models, and the
 * metric names that PromQL expressions use.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';

export const root = fileURLToPath(new URL('../../', import.meta.url));
export const k8sDir = join(root, 'deploy/kubernetes');

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

/** The variants a user applies, by their path under deploy/kubernetes. */
export const VARIANTS = ['.', 'base', 'overlays/programs'] as const;

// ---------------------------------------------------------------------------------------------
// kustomize

/** kubectl with kustomize, unless BME_NO_KUBECTL=1 (runs the tests as on a machine without it). */
export const kubectl = process.env.BME_NO_KUBECTL === '1' ? undefined : ['/usr/bin/kubectl', '/usr/local/bin/kubectl'].find((p) => existsSync(p) && spawnSync(p, ['kustomize', '--help'], { stdio: 'ignore' }).status === 0);

/** `kubectl kustomize DIR`, parsed. */
export function kubectlKustomize(dir: string): K8sObject[] {
  if (kubectl === undefined) throw new Error('kubectl is not installed');
  const out = execFileSync(kubectl, ['kustomize', dir], { encoding: 'utf8' });
  return parseAllDocuments(out).map((d) => d.toJS() as K8sObject).filter((o) => o !== null);
}

/** The kustomization as deployed: kubectl's kustomize when installed, else the subset below. */
export function render(variant: string): K8sObject[] {
  const dir = join(k8sDir, variant);
  return kubectl !== undefined ? kubectlKustomize(dir) : miniKustomize(dir);
}

const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'PriorityClass', 'PersistentVolume', 'StorageClass']);
const WORKLOADS = new Set(['DaemonSet', 'Deployment', 'StatefulSet', 'ReplicaSet', 'Job']);
const KUSTOMIZATION_KEYS = new Set(['apiVersion', 'kind', 'namespace', 'labels', 'resources', 'components', 'patches']);

interface Kustomization {
  kind?: string;
  namespace?: string;
  labels?: { pairs: Record<string, string>; includeSelectors?: boolean; includeTemplates?: boolean }[];
  resources?: string[];
  components?: string[];
  patches?: { path?: string; patch?: string; target?: { group?: string; version?: string; kind?: string; name?: string } }[];
}

function readKustomization(dir: string): Kustomization {
  const k = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as Kustomization & Record<string, unknown>;
  // Anything beyond the subset is refused, so this builder is never silently wrong.
  for (const key of Object.keys(k)) if (!KUSTOMIZATION_KEYS.has(key)) throw new Error(`${dir}/kustomization.yaml: ${key} is not in the kustomize subset the tests implement`);
  for (const l of k.labels ?? []) if (l.includeSelectors === true) throw new Error(`${dir}: labels with includeSelectors are not implemented`);
  return k;
}

function loadDocs(file: string): K8sObject[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as K8sObject).filter((o) => o !== null);
}

/**
 * The kustomize subset the manifests use: resources (files and folders), components, patches
 * (strategic merge of maps, RFC 6902 JSON patches with a target), namespace and labels (with
 * includeTemplates). The order of the result is not kustomize's; compare by kind and name.
 */
export function miniKustomize(dir: string): K8sObject[] {
  const k = readKustomization(dir);
  let objs: K8sObject[] = [];
  for (const r of k.resources ?? []) {
    const path = resolve(dir, r);
    objs.push(...(statSync(path).isDirectory() ? miniKustomize(path) : loadDocs(path)));
  }
  for (const c of k.components ?? []) objs = applyComponent(resolve(dir, c), objs);
  for (const p of k.patches ?? []) applyPatch(dir, p, objs);
  if (k.namespace !== undefined) for (const o of objs) if (!CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = k.namespace;
  for (const l of k.labels ?? []) {
    for (const o of objs) {
      o.metadata.labels = { ...o.metadata.labels, ...l.pairs };
      const template = (o.spec as { template?: { metadata?: { labels?: Record<string, string> } } } | undefined)?.template;
      if (l.includeTemplates === true && WORKLOADS.has(o.kind) && template !== undefined) {
        template.metadata = { ...template.metadata, labels: { ...template.metadata?.labels, ...l.pairs } };
      }
    }
  }
  return objs;
}

function applyComponent(dir: string, objs: K8sObject[]): K8sObject[] {
  const k = readKustomization(dir);
  if (k.kind !== 'Component') throw new Error(`${dir} is not a Component`);
  if (k.namespace !== undefined || k.labels !== undefined || k.components !== undefined) throw new Error(`${dir}: only resources and patches are implemented in components`);
  const out = [...objs];
  for (const r of k.resources ?? []) out.push(...loadDocs(resolve(dir, r)));
  for (const p of k.patches ?? []) applyPatch(dir, p, out);
  return out;
}

function applyPatch(dir: string, p: NonNullable<Kustomization['patches']>[number], objs: K8sObject[]): void {
  const body: unknown = parse(p.path !== undefined ? readFileSync(resolve(dir, p.path), 'utf8') : p.patch ?? '');
  if (Array.isArray(body)) {
    const t = p.target;
    if (t === undefined) throw new Error(`${dir}: a JSON patch needs a target`);
    const hits = objs.filter((o) => {
      const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
      return (t.kind === undefined || t.kind === o.kind) && (t.name === undefined || t.name === o.metadata.name)
        && (t.group === undefined || t.group === group) && (t.version === undefined || t.version === version);
    });
    if (hits.length === 0) throw new Error(`${dir}: patch target ${JSON.stringify(t)} matches nothing`);
    for (const o of hits) for (const op of body as JsonPatchOp[]) jsonPatch(o, op);
  } else {
    const b = body as K8sObject;
    const hit = objs.find((o) => o.kind === b.kind && o.metadata.name === b.metadata.name);
    if (hit === undefined) throw new Error(`${dir}: patch of ${b.kind}/${b.metadata.name} matches nothing`);
    mergeMaps(hit as unknown as Record<string, unknown>, b as unknown as Record<string, unknown>, `${b.kind}/${b.metadata.name}`);
  }
}

/** Strategic merge restricted to maps: lists (whose merge keys differ per field) are refused. */
function mergeMaps(target: Record<string, unknown>, patch: Record<string, unknown>, path: string): void {
  for (const [key, value] of Object.entries(patch)) {
    if (Array.isArray(value)) throw new Error(`${path}.${key}: lists in strategic merge patches are not implemented`);
    const cur = target[key];
    if (value !== null && typeof value === 'object' && cur !== null && typeof cur === 'object' && !Array.isArray(cur)) {
      mergeMaps(cur as Record<string, unknown>, value as Record<string, unknown>, `${path}.${key}`);
    } else if (value === null) {
      delete target[key];
    } else {
      target[key] = value;
    }
  }
}

interface JsonPatchOp { op: 'add' | 'replace' | 'remove'; path: string; value?: unknown }

function jsonPatch(obj: K8sObject, op: JsonPatchOp): void {
  const parts = op.path.split('/').slice(1).map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
  const last = parts.pop();
  if (last === undefined) throw new Error(`bad JSON patch path ${op.path}`);
  let node: unknown = obj;
  for (const p of parts) {
    node = Array.isArray(node) ? node[Number(p)] : (node as Record<string, unknown> | undefined)?.[p];
    if (node === undefined || node === null || typeof node !== 'object') throw new Error(`JSON patch path ${op.path}: ${p} is missing`);
  }
  if (Array.isArray(node)) {
    const i = last === '-' ? node.length : Number(last);
    if (!Number.isInteger(i) || i < 0 || i > node.length || (op.op !== 'add' && i >= node.length)) throw new Error(`JSON patch path ${op.path}: bad index`);
    if (op.op === 'add') node.splice(i, 0, structuredClone(op.value));
    else if (op.op === 'replace') node[i] = structuredClone(op.value);
    else node.splice(i, 1);
  } else {
    const m = node as Record<string, unknown>;
    if (op.op !== 'add' && !(last in m)) throw new Error(`JSON patch path ${op.path}: nothing to ${op.op}`);
    if (op.op === 'remove') delete m[last];
    else m[last] = structuredClone(op.value);
  }
}

/** Objects keyed `kind/namespace/name`, for comparisons that ignore order. */
export function byKey(objs: readonly K8sObject[]): Map<string, K8sObject> {
  return new Map(objs.map((o) => [`${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`, o]));
}

// ---------------------------------------------------------------------------------------------
// Strict field names: kubernetes-models validates types and required fields but lets unknown keys
// through, so a misspelt `readonly:` would pass. Every key of a manifest must be a property name
// that the kind's validator (and the validators it imports) knows.

const knownCache = new Map<string, Set<string>>();

/**
 * A bare import of these ESM-only packages, resolved by hand (their exports have no require
 * condition): the package folder in the nearest node_modules above `from`, then the subpath.
 */
function resolveBare(spec: string, from: string): string {
  const parts = spec.split('/');
  const pkgLen = spec.startsWith('@') ? 2 : 1;
  const pkg = parts.slice(0, pkgLen).join('/');
  const sub = parts.slice(pkgLen).join('/');
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', pkg);
    if (existsSync(candidate)) return join(candidate, sub.endsWith('.js') ? sub : `${sub}.js`);
    if (dirname(dir) === dir) throw new Error(`cannot resolve ${spec} from ${from}`);
  }
}

function validatorFile(kind: string, apiVersion: string): string {
  const pkg = apiVersion.startsWith('monitoring.coreos.com/') ? '@kubernetes-models/prometheus-operator' : 'kubernetes-models';
  return resolveBare(`${pkg}/${apiVersion}/${kind}`, root);
}

function knownProperties(kind: string, apiVersion: string): Set<string> {
  const key = `${apiVersion}/${kind}`;
  const cached = knownCache.get(key);
  if (cached !== undefined) return cached;
  const names = new Set<string>();
  const seen = new Set<string>();
  const queue = [validatorFile(kind, apiVersion)];
  for (let i = 0; i < queue.length && i < 5000; i++) {
    const file = queue[i];
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/data\.([A-Za-z_$][\w$]*)/g)) names.add(m[1]);
    for (const m of text.matchAll(/data\["([^"]+)"\]/g)) names.add(m[1]);
    for (const m of text.matchAll(/from"([^"]+)"/g)) {
      const spec = m[1];
      // Only other validators (their _schemas files) hold property names; runtime helpers do not.
      if (!spec.includes('_schemas') && !spec.startsWith('.')) continue;
      const resolved = spec.startsWith('.') ? resolve(dirname(file), spec) : resolveBare(spec, dirname(file));
      queue.push(resolved.endsWith('.js') ? resolved : `${resolved}.js`);
    }
  }
  knownCache.set(key, names);
  return names;
}

// Maps whose keys are the user's: labels, annotations, ConfigMap data, resource quantities, a
// Service's selector.
const FREE_FORM = new Set(['labels', 'annotations', 'data', 'matchLabels', 'requests', 'limits', 'nodeSelector']);

/** Keys of `obj` that no schema of its kind knows, as paths. */
export function unknownFields(obj: K8sObject): string[] {
  const known = knownProperties(obj.kind, obj.apiVersion);
  const bad: string[] = [];
  const walk = (node: unknown, path: string): void => {
    if (Array.isArray(node)) node.forEach((v, i) => walk(v, `${path}[${i}]`));
    else if (node !== null && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        if (!known.has(k)) bad.push(`${path}.${k}`);
        const freeForm = FREE_FORM.has(k) || (obj.kind === 'Service' && path === '.spec' && k === 'selector');
        if (!freeForm) walk(v, `${path}.${k}`);
      }
    }
  };
  walk(obj, '');
  return bad;
}

// ---------------------------------------------------------------------------------------------
// The capability tables of docs/deployment.md: the one list that manifests and units must match.

export const deploymentDoc = join(root, 'docs/deployment.md');

function table(marker: string): string[][] {
  const text = readFileSync(deploymentDoc, 'utf8');
  const start = text.indexOf(`<!-- capabilities:${marker} -->`);
  const end = text.indexOf(`<!-- /capabilities:${marker} -->`);
  if (start < 0 || end < start) throw new Error(`docs/deployment.md has no capabilities:${marker} table`);
  const rows = text.slice(start, end).split('\n').filter((l) => l.startsWith('|')).slice(2);
  return rows.map((r) => r.split('|').slice(1, -1).map((c) => c.trim()));
}

/** Capability names as written in the docs (CAP_X) and in the manifests (X). */
const capList = (cell: string): string[] => (cell === 'none' ? [] : cell.split(/\s+/).filter((c) => c !== ''));

/** feature id -> its capabilities (CAP_ names), from the features table. */
export function featureCapabilities(): Map<string, string[]> {
  return new Map(table('features').map(([id, caps]) => [id.replaceAll('`', ''), capList(caps)]));
}

/** deployment id -> { features, capabilities }, from the deployments table. */
export function deploymentCapabilities(): Map<string, { features: string[]; capabilities: string[] }> {
  return new Map(table('deployments').map(([id, features, caps]) => [id.replaceAll('`', ''), { features: features.split(/\s+/), capabilities: capList(caps) }]));
}

// ---------------------------------------------------------------------------------------------
// PromQL: the metric names an expression selects.

const PROMQL_WORDS = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset',
  'sum', 'min', 'max', 'avg', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values', 'group',
  'rate', 'irate', 'increase', 'delta', 'idelta', 'deriv', 'time', 'vector', 'scalar', 'abs', 'absent', 'absent_over_time',
  'changes', 'resets', 'clamp_min', 'clamp_max', 'label_replace', 'label_join', 'histogram_quantile', 'sort', 'sort_desc',
  'max_over_time', 'min_over_time', 'avg_over_time', 'sum_over_time', 'count_over_time', 'last_over_time', 'timestamp',
  'round', 'ceil', 'floor', 'predict_linear', 'humanize', 'humanizePercentage', 'inf', 'nan',
]);

/** Metric names in a PromQL expression: identifiers outside quotes, braces and brackets that are not functions or keywords. */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(?<![\w$:.])([a-zA-Z_:][\w:]*)\b(?!\s*\()/g)) {
    if (!PROMQL_WORDS.has(m[1]) && !/^\d/.test(m[1])) names.add(m[1]);
  }
  return [...names];
}

// ---------------------------------------------------------------------------------------------
// The real command line: arguments that a manifest or unit passes must parse. `--version` makes
// the CLI exit 0 right after parsing (before any BPF), so no privilege is needed; an unknown flag
// exits 2 first.

export function cliParses(args: readonly string[]): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'exporter/main.ts'), ...args, '--version'], { encoding: 'utf8', cwd: root });
  return { status: r.status, output: r.stdout + r.stderr };
}

/** Split a shell-free command line (systemd ExecStart, no quotes used) into words. */
export const words = (line: string): string[] => line.trim().split(/\s+/);

// ---------------------------------------------------------------------------------------------
// The image's runtime stage, laid out without a container runtime: what deploy/image/Dockerfile's
// final stage holds under /opt/bpf-map-exporter (package.json, dist/ from the TypeScript build,
// config/, and the node_modules that `npm ci --omit=dev` installs: the lock file's entries not marked
// dev, for this platform), under `dir` instead of /.

export const IMAGE_HOME = '/opt/bpf-map-exporter';

/** ENTRYPOINT and CMD of the Dockerfile's final stage (exec form). */
export function imageCommand(): { entrypoint: string[]; cmd: string[] } {
  const text = readFileSync(join(root, 'deploy/image/Dockerfile'), 'utf8');
  const last = (op: string) => {
    const all = [...text.matchAll(new RegExp(`^${op} (\\[.*\\])$`, 'gm'))];
    if (all.length === 0) throw new Error(`no ${op} in the Dockerfile`);
    return JSON.parse(all.at(-1)![1]) as string[];
  };
  return { entrypoint: last('ENTRYPOINT'), cmd: last('CMD') };
}

export function imageLayout(dir: string): string {
  const home = join(dir, IMAGE_HOME);
  mkdirSync(home, { recursive: true });
  copyFileSync(join(root, 'package.json'), join(home, 'package.json'));
  cpSync(join(root, 'config'), join(home, 'config'), { recursive: true });
  // tsc emits even where files in progress elsewhere in the checkout have type errors; what the
  // image needs is that the entry point was emitted.
  spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', join(home, 'dist')], { stdio: 'ignore' });
  if (!existsSync(join(home, 'dist/exporter/main.js'))) throw new Error('the TypeScript build emitted no dist/exporter/main.js');
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  for (const [path, entry] of Object.entries(lock.packages)) {
    // Other platforms' optional packages are not installed here, as they would not be in the image.
    if (path === '' || entry.dev === true || !existsSync(join(root, path))) continue;
    cpSync(join(root, path), join(home, path), { recursive: true, filter: (src) => !src.slice(join(root, path).length).includes('/node_modules/') });
  }
  return home;
}
