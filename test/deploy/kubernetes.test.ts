/**
 * The Kubernetes manifests, as kustomize composes them: every object validates against the
 * Kubernetes (and Prometheus Operator) schemas with no unknown field; the DaemonSet keeps the
 * security policy and holds exactly the capabilities docs/deployment.md lists for its variant; probes,
 * ports, volumes and the ConfigMap's config fit the exporter.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/parse.js';
import { buildResource } from '../../src/publish/otel-resource.js';
import {
  byKey, deploymentCapabilities, featureCapabilities, k8sDir, kubectl, kubectlKustomize, miniKustomize, render, root, unknownFields, VARIANTS,
  type K8sObject,
} from './support.js';

interface Probe { httpGet?: { path: string; port: number | string } }
interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports?: { name?: string; containerPort: number }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    runAsUser?: number; runAsNonRoot?: boolean; privileged?: boolean; allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean;
    capabilities?: { add?: string[]; drop?: string[] };
  };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; mountPropagation?: string }[];
}
interface PodSpec {
  hostNetwork?: boolean; hostPID?: boolean; hostIPC?: boolean;
  containers: Container[]; initContainers?: Container[];
  volumes?: { name: string; hostPath?: { path: string; type?: string }; configMap?: { name: string }; emptyDir?: object }[];
  tolerations?: { operator?: string; key?: string }[];
}
interface DaemonSet extends K8sObject {
  spec: { selector: { matchLabels: Record<string, string> }; updateStrategy?: { type: string; rollingUpdate?: { maxUnavailable?: string | number } }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } };
}

const NAMESPACE = 'bpf-map-exporter';
const one = <T extends K8sObject>(objs: K8sObject[], kind: string): T => {
  const hits = objs.filter((o) => o.kind === kind);
  expect(hits.map((o) => o.metadata.name), kind).toHaveLength(1);
  return hits[0] as T;
};
const daemonSet = (objs: K8sObject[]) => one<DaemonSet>(objs, 'DaemonSet');
const exporter = (objs: K8sObject[]) => {
  const { containers } = daemonSet(objs).spec.template.spec;
  const c = containers.find((x) => x.name === 'exporter');
  if (c === undefined) throw new Error('no exporter container');
  return c;
};
const configOf = (objs: K8sObject[]) => (one<K8sObject & { data: Record<string, string> }>(objs, 'ConfigMap').data)['config.yaml'];

/** Which deployment row of the docs' table each variant is. */
const DOC_ROW: Record<(typeof VARIANTS)[number], string> = { '.': 'kubernetes/base', base: 'kubernetes/base', 'overlays/programs': 'kubernetes/overlays/programs' };
const EXPECTED_KINDS: Record<(typeof VARIANTS)[number], string[]> = {
  '.': ['ConfigMap', 'DaemonSet', 'Namespace', 'PrometheusRule', 'Service', 'ServiceAccount', 'ServiceMonitor'],
  base: ['ConfigMap', 'DaemonSet', 'Namespace', 'Service', 'ServiceAccount'],
  'overlays/programs': ['ConfigMap', 'DaemonSet', 'Namespace', 'PrometheusRule', 'Service', 'ServiceAccount', 'ServiceMonitor'],
};

async function modelClass(o: K8sObject): Promise<new (data: unknown) => { validate(): void }> {
  const mod = (o.apiVersion.startsWith('monitoring.coreos.com/')
    ? await import(`@kubernetes-models/prometheus-operator/${o.apiVersion}/${o.kind}`)
    : await import(`kubernetes-models/${o.apiVersion}/${o.kind}`)) as Record<string, new (data: unknown) => { validate(): void }>;
  const cls = mod[o.kind];
  if (cls === undefined) throw new Error(`no model for ${o.apiVersion} ${o.kind}`);
  return cls;
}

describe('the capability tables of docs/deployment.md', () => {
  it('give every deployment exactly the union of its features\' capabilities', () => {
    const features = featureCapabilities();
    const deployments = deploymentCapabilities();
    expect([...features.keys()]).toEqual(['pinned', 'inventory', 'load', 'trace', 'net', 'tracefs-nonroot', 'ksym']);
    expect(features.get('pinned')).toEqual([]);
    expect(features.get('inventory')).toEqual(['CAP_SYS_ADMIN']);
    expect([...deployments.keys()]).toEqual(['kubernetes/base', 'kubernetes/overlays/programs', 'systemd', 'systemd+programs.conf']);
    for (const [name, d] of deployments) {
      const union = new Set<string>();
      for (const f of d.features) {
        const caps = features.get(f);
        expect(caps, `${name}: feature ${f}`).toBeDefined();
        for (const c of caps ?? []) union.add(c);
      }
      expect([...d.capabilities].sort(), name).toEqual([...union].sort());
      expect(new Set(d.capabilities).size, `${name} lists a capability twice`).toBe(d.capabilities.length);
    }
  });
});

describe.each(VARIANTS)('kustomize build deploy/kubernetes/%s', (variant) => {
  const objs = render(variant);

  it('holds the expected objects, each in the exporter\'s namespace', () => {
    expect(objs.map((o) => o.kind).sort()).toEqual(EXPECTED_KINDS[variant]);
    expect(one(objs, 'Namespace').metadata.name).toBe(NAMESPACE);
    for (const o of objs.filter((x) => x.kind !== 'Namespace')) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(NAMESPACE);
    for (const o of objs) expect(o.metadata.labels?.['app.kubernetes.io/part-of'], `${o.kind} label`).toBe('bpf-map-exporter');
  });

  it('validates against the Kubernetes and Prometheus Operator schemas, with no unknown field', async () => {
    for (const o of objs) {
      const Model = await modelClass(o);
      expect(() => new Model(o).validate(), `${o.kind}/${o.metadata.name}`).not.toThrow();
      expect(unknownFields(o), `${o.kind}/${o.metadata.name}`).toEqual([]);
    }
  });

  it('keeps the security policy: no host namespaces, not privileged, no escalation, read-only root, drop ALL', () => {
    const ds = daemonSet(objs);
    const pod = ds.spec.template.spec;
    expect(pod.hostNetwork ?? false).toBe(false);
    expect(pod.hostPID ?? false).toBe(false);
    expect(pod.hostIPC ?? false).toBe(false);
    expect(pod.initContainers ?? []).toEqual([]);
    for (const c of pod.containers) {
      const sc = c.securityContext;
      expect(sc?.privileged, c.name).toBe(false);
      expect(sc?.allowPrivilegeEscalation, c.name).toBe(false);
      expect(sc?.readOnlyRootFilesystem, c.name).toBe(true);
      expect(sc?.capabilities?.drop, c.name).toEqual(['ALL']);
      // uid 0 on purpose: a pod spec has no ambient capabilities (docs/deployment.md).
      expect(sc?.runAsUser, c.name).toBe(0);
    }
  });

  it('adds exactly the capabilities docs/deployment.md lists for this variant', () => {
    const row = deploymentCapabilities().get(DOC_ROW[variant]);
    expect(row).toBeDefined();
    const expected = (row?.capabilities ?? []).map((c) => c.replace(/^CAP_/, '')).sort();
    const added = [...(exporter(objs).securityContext?.capabilities?.add ?? [])].sort();
    expect(added).toEqual(expected);
  });

  it('gives every container requests, limits, and probes on the exporter\'s real paths and port', () => {
    const pod = daemonSet(objs).spec.template.spec;
    for (const c of pod.containers) {
      for (const r of ['cpu', 'memory']) {
        expect(c.resources?.requests?.[r], `${c.name} requests.${r}`).toMatch(/^\d+(m|Mi|Gi)?$/);
        expect(c.resources?.limits?.[r], `${c.name} limits.${r}`).toMatch(/^\d+(m|Mi|Gi)?$/);
      }
      const port = (p: number | string | undefined) => (typeof p === 'number' ? p : c.ports?.find((x) => x.name === p)?.containerPort);
      expect(c.livenessProbe?.httpGet?.path).toBe('/healthz');
      expect(c.readinessProbe?.httpGet?.path).toBe('/readyz');
      expect(port(c.livenessProbe?.httpGet?.port)).toBe(9435);
      expect(port(c.readinessProbe?.httpGet?.port)).toBe(9435);
    }
    // The port the exporter is told to listen on is the one the probes and the Service use.
    const c = exporter(objs);
    const args = c.args ?? [];
    expect(args[args.indexOf('--web.listen-address') + 1]).toBe(':9435');
    expect(c.ports).toEqual([{ name: 'metrics', containerPort: 9435, protocol: 'TCP' }]);
  });

  it('selects its own pods from the DaemonSet, the Service and the ServiceMonitor, on the metrics port', () => {
    const ds = daemonSet(objs);
    const podLabels = ds.spec.template.metadata.labels;
    const matches = (sel: Record<string, string>, labels: Record<string, string>) => Object.entries(sel).every(([k, v]) => labels[k] === v);
    expect(matches(ds.spec.selector.matchLabels, podLabels)).toBe(true);
    const svc = one<K8sObject & { spec: { selector: Record<string, string>; ports: { name: string; port: number; targetPort: string | number }[] } }>(objs, 'Service');
    expect(matches(svc.spec.selector, podLabels)).toBe(true);
    expect(svc.spec.ports).toEqual([{ name: 'metrics', port: 9435, targetPort: 'metrics', protocol: 'TCP' }]);
    const sm = objs.find((o) => o.kind === 'ServiceMonitor') as (K8sObject & { spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string }[] } }) | undefined;
    if (variant === 'base') {
      expect(sm).toBeUndefined();
      return;
    }
    expect(sm).toBeDefined();
    expect(matches(sm!.spec.selector.matchLabels, svc.metadata.labels ?? {})).toBe(true);
    expect(sm!.spec.endpoints.map((e) => [e.port, e.path])).toEqual([['metrics', '/metrics']]);
  });

  it('mounts the host paths it needs, read-only but for the state directory that the config\'s state_file uses', () => {
    const pod = daemonSet(objs).spec.template.spec;
    const c = exporter(objs);
    const hostPaths = Object.fromEntries((pod.volumes ?? []).filter((v) => v.hostPath !== undefined).map((v) => [v.name, v.hostPath!.path]));
    const expected = ['/sys/fs/bpf', '/sys/kernel/btf', '/var/lib/bpf-map-exporter', ...(variant === 'overlays/programs' ? ['/sys/kernel/tracing'] : [])];
    expect(Object.values(hostPaths).sort()).toEqual(expected.sort());
    for (const m of c.volumeMounts ?? []) {
      // Each host path is mounted at the same place in the container.
      if (hostPaths[m.name] !== undefined) expect(m.mountPath).toBe(hostPaths[m.name]);
    }
    const writable = (c.volumeMounts ?? []).filter((m) => m.readOnly !== true).map((m) => m.mountPath);
    expect(writable).toEqual(['/var/lib/bpf-map-exporter']);
    expect((c.volumeMounts ?? []).find((m) => m.mountPath === '/sys/fs/bpf')?.mountPropagation).toBe('HostToContainer');

    // The config is the ConfigMap, at the path the container's --config names.
    const args = c.args ?? [];
    const configPath = args[args.indexOf('--config') + 1];
    const configMount = (c.volumeMounts ?? []).find((m) => configPath.startsWith(`${m.mountPath}/`));
    expect(configMount?.readOnly).toBe(true);
    expect(pod.volumes?.find((v) => v.name === configMount?.name)?.configMap?.name).toBe(one(objs, 'ConfigMap').metadata.name);
    const config = parseConfig(configOf(objs), configPath);
    expect(config.state_file).toBe('/var/lib/bpf-map-exporter/state.json');
    expect(writable.some((w) => config.state_file!.startsWith(`${w}/`))).toBe(true);
  });

  it('passes the node name by the downward API in the variable the OTLP resource reads', () => {
    const env = exporter(objs).env ?? [];
    const node = env.find((e) => e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName');
    expect(node?.name).toBe('K8S_NODE_NAME');
    const saved = { K8S_NODE_NAME: process.env.K8S_NODE_NAME, NODE_NAME: process.env.NODE_NAME };
    try {
      delete process.env.NODE_NAME;
      process.env[node!.name] = 'node-a';
      expect(buildResource({ serviceVersion: 'test' }).attributes['k8s.node.name']).toBe('node-a');
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('runs on every node and rolls out a bounded share at a time', () => {
    const ds = daemonSet(objs);
    expect(ds.spec.template.spec.tolerations).toContainEqual({ operator: 'Exists' });
    expect(ds.spec.updateStrategy?.type).toBe('RollingUpdate');
    expect(ds.spec.updateStrategy?.rollingUpdate?.maxUnavailable).toBeDefined();
  });
});

describe('the ConfigMaps', () => {
  /** A config without where it came from (file, positions) and without its state file. */
  const strip = (c: ReturnType<typeof parseConfig>): unknown => {
    const drop = new Set(['file', 'where', 'state_file', 'at']);
    return JSON.parse(JSON.stringify(c, (k, v: unknown) => (drop.has(k) ? undefined : v)));
  };

  it('base: config/default.yaml (the inventory), plus the state file', () => {
    const text = configOf(render('base'));
    const fromMap = parseConfig(text, '/etc/bpf-map-exporter/config.yaml');
    const def = parseConfig(readFileSync(join(root, 'config/default.yaml'), 'utf8'), '/etc/bpf-map-exporter/config.yaml');
    expect(strip(fromMap)).toEqual(strip(def));
    expect(fromMap.maps).toEqual([]);
    expect(fromMap.state_file).toBe('/var/lib/bpf-map-exporter/state.json');
  });

  it('base: the commented pinned-map and drain jobs are valid once uncommented', () => {
    const text = configOf(render('base'));
    // The commented jobs are the lines "#   - name: ..." and what follows them at deeper indentation.
    const jobs = text.split('\n').filter((l) => /^# {3}\S|^# {5}/.test(l)).map((l) => l.slice(2));
    expect(jobs.filter((l) => l.startsWith('  - name:'))).toHaveLength(2);
    const config = parseConfig(`maps:\n${jobs.join('\n')}\n`, '/etc/bpf-map-exporter/config.yaml');
    expect(config.maps.map((m) => [m.name, 'pinned' in m.source, m.mode ?? 'read'])).toEqual([['syscalls', true, 'read'], ['events', true, 'drain']]);
  });

  it('programs: config/examples/all.yaml with the objects where the image has them, plus the state file', () => {
    const fromMap = parseConfig(configOf(render('overlays/programs')), '/etc/bpf-map-exporter/config.yaml');
    const all = parseConfig(readFileSync(join(root, 'config/examples/all.yaml'), 'utf8'), '/opt/bpf-map-exporter/config/examples/all.yaml');
    expect(strip(fromMap), 'run node deploy/kubernetes/components/programs/generate-configmap.mjs after a change of all.yaml').toEqual(strip(all));
    expect(fromMap.maps.length).toBeGreaterThan(0);
    for (const m of fromMap.maps) expect('object' in m.source && m.source.object.startsWith('/opt/bpf-map-exporter/config/examples/'), m.name).toBe(true);
  });
});

describe('the kustomize subset in test/deploy/support.ts', () => {
  it.skipIf(kubectl === undefined)('builds what kubectl kustomize builds, for every variant', () => {
    for (const v of VARIANTS) {
      const real = byKey(kubectlKustomize(join(k8sDir, v)));
      const mini = byKey(miniKustomize(join(k8sDir, v)));
      expect([...mini.keys()].sort(), v).toEqual([...real.keys()].sort());
      for (const [k, o] of real) expect(mini.get(k), `${v}: ${k}`).toEqual(o);
    }
  });
  if (kubectl === undefined) console.warn('SKIPPING the comparison with kubectl kustomize: kubectl is not installed; the manifests were built by the subset in test/deploy/support.ts');

  it('refuses a kustomization that uses more than the subset', () => {
    expect(() => miniKustomize(join(root, 'test/deploy/fixtures/unsupported'))).toThrow(/images is not in the kustomize subset/);
  });
});
