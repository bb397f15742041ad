/** Who is publishing: the OpenTelemetry resource of the exporter, and its version. */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultResource, detectResources, envDetector, resourceFromAttributes, type Resource } from '@opentelemetry/resources';

export const SERVICE_NAME = 'bpf-map-exporter';

let version: string | undefined;

/**
 * The exporter's package version. Found by walking up from this file to the package.json named
 * bpf-map-exporter, because this module runs both from src/ (tsx, tests) and from dist/src/ (built),
 * at different depths below the package root.
 */
export function exporterVersion(): string {
  if (version !== undefined) return version;
  version = 'unknown';
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === SERVICE_NAME && typeof pkg.version === 'string') {
        version = pkg.version;
        break;
      }
    } catch {
      // No package.json here (or not readable): keep walking up.
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return version;
}

export interface ResourceOptions {
  /** service.version; default: the package version. */
  serviceVersion?: string;
}

/**
 * The resource of every export: the SDK's defaults (telemetry.sdk.*), then service.name, service.version,
 * host.name (os.hostname()) and k8s.node.name (from K8S_NODE_NAME, else NODE_NAME, when set: a
 * DaemonSet passes it with the downward API, since a pod's hostname is the pod's name), then what the
 * operator sets in OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, which win.
 *
 * The MeterProvider alone does not read OTEL_RESOURCE_ATTRIBUTES (its default resource is only the SDK's
 * defaults; the NodeSDK package is what runs detectors), so the SDK's envDetector is run here.
 */
export function buildResource(opts: ResourceOptions = {}): Resource {
  const attributes: Record<string, string> = {
    'service.name': SERVICE_NAME,
    'service.version': opts.serviceVersion ?? exporterVersion(),
    'host.name': hostname(),
  };
  const node = nonEmpty(process.env.K8S_NODE_NAME) ?? nonEmpty(process.env.NODE_NAME);
  if (node !== undefined) attributes['k8s.node.name'] = node;
  return defaultResource()
    .merge(resourceFromAttributes(attributes))
    .merge(detectResources({ detectors: [envDetector] }));
}

function nonEmpty(s: string | undefined): string | undefined {
  const t = s?.trim();
  return t === undefined || t === '' ? undefined : t;
}
