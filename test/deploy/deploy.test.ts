import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics/metrics.js';
import { BUILT_IN_PRICES } from '../../src/money/prices.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DEPLOY = join(ROOT, 'deploy');

const execFileAsync = promisify(execFile);

/** Metric names in PromQL: the gateway's own, and prom-client's process and Node.js defaults. */
const METRIC_NAME = /\b(?:longcat_gateway|process|nodejs)_[a-z0-9_]+/g;

function readDeploy(path: string): string {
  return readFileSync(join(DEPLOY, path), 'utf8');
}

/** The first capture of `pattern` in `text`; throws, naming `what`, when there is none. */
function capture(text: string, pattern: RegExp, what: string): string {
  const found = pattern.exec(text)?.[1];
  if (found === undefined) throw new Error(`${what} not found (${pattern})`);
  return found;
}

/**
 * Runs promtool from the repository root. A missing promtool is an error, never a skip: these
 * checks are the only thing that proves the rules load.
 */
async function promtool(...args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await execFileAsync('promtool', args, { cwd: ROOT });
    return stdout + stderr;
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (failure.code === 'ENOENT') {
      throw new Error('promtool is not installed: `apt-get install -y prometheus` provides it');
    }
    throw new Error(`promtool ${args.join(' ')} failed:\n${failure.stdout}${failure.stderr}`);
  }
}

/**
 * Every series name the gateway's registry can expose. Histograms and summaries only ever appear
 * as their _bucket/_sum/_count series, so their bare names are left out on purpose.
 */
async function exportedSeries(): Promise<{ series: Set<string>; gatewayMetrics: string[] }> {
  const metrics = await createMetrics().registry.getMetricsAsJSON();
  const series = new Set<string>();
  for (const { name, type } of metrics) {
    // prom-client's typings declare a numeric enum, but the registry reports the type as text.
    switch (String(type)) {
      case 'histogram':
        for (const suffix of ['_bucket', '_sum', '_count']) series.add(name + suffix);
        break;
      case 'summary':
        for (const suffix of ['', '_sum', '_count']) series.add(name + suffix);
        break;
      default:
        series.add(name);
    }
  }
  const gatewayMetrics = metrics.map((m) => m.name).filter((n) => n.startsWith('longcat_gateway_'));
  return { series, gatewayMetrics };
}

function metricNamesIn(text: string): string[] {
  return [...new Set(text.match(METRIC_NAME) ?? [])];
}

interface Panel {
  id?: number;
  type: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  targets?: { expr?: string; datasource?: { uid?: string } }[];
  panels?: Panel[];
}

interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: {
    list: { name: string; type: string; query?: unknown; current?: { value?: string } }[];
  };
}

function loadDashboard(): Dashboard {
  return JSON.parse(readDeploy('grafana/dashboards/longcat-gateway.json')) as Dashboard;
}

function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

function dashboardQueries(dashboard: Dashboard): string[] {
  const panelExprs = allPanels(dashboard.panels).flatMap((p) =>
    (p.targets ?? []).map((t) => t.expr ?? ''),
  );
  const variableQueries = dashboard.templating.list
    .filter((v) => v.type === 'query')
    .map((v) => JSON.stringify(v.query));
  return [...panelExprs, ...variableQueries];
}

describe('Prometheus configuration, checked by promtool', () => {
  it('accepts prometheus.yml and loads the rule file it names', async () => {
    const output = await promtool('check', 'config', 'deploy/prometheus/prometheus.yml');

    expect(output).toContain('SUCCESS: 1 rule files found');
  });

  it('accepts every alert rule in alerts.yml', async () => {
    const output = await promtool('check', 'rules', 'deploy/prometheus/alerts.yml');

    expect(output).toMatch(/SUCCESS: [1-9]\d* rules found/);
  });

  it('fires each alert on its fault and stays quiet on a healthy gateway', async () => {
    const output = await promtool('test', 'rules', 'deploy/prometheus/alerts.test.yml');

    expect(output).toContain('SUCCESS');
  });

  it('gives every alert a severity, a summary and a description', () => {
    const rules = readDeploy('prometheus/alerts.yml')
      .split(/^\s+- alert: /m)
      .slice(1);

    expect(rules.length).toBeGreaterThanOrEqual(6);
    for (const rule of rules) {
      const name = rule.split('\n')[0];
      expect(rule, name).toMatch(/^\s+severity: (critical|warning)$/m);
      expect(rule, name).toMatch(/^\s+summary: \S/m);
      expect(rule, name).toMatch(/^\s+description: \S/m);
    }
  });
});

describe('metric names in the dashboard and the alerts', () => {
  it('queries only series the gateway exports', async () => {
    const { series } = await exportedSeries();
    const queries = dashboardQueries(loadDashboard());
    const used = metricNamesIn(queries.join('\n'));

    expect(queries.length).toBeGreaterThan(20);
    expect(used.filter((name) => !series.has(name))).toEqual([]);
  });

  it('alerts only on series the gateway exports', async () => {
    const { series } = await exportedSeries();
    const used = metricNamesIn(readDeploy('prometheus/alerts.yml'));

    expect(used.length).toBeGreaterThanOrEqual(5);
    expect(used.filter((name) => !series.has(name))).toEqual([]);
  });

  it('charts every metric the gateway defines', async () => {
    const { gatewayMetrics } = await exportedSeries();
    const charted = metricNamesIn(dashboardQueries(loadDashboard()).join('\n')).map((name) =>
      name.replace(/_(bucket|sum|count)$/, ''),
    );

    expect(gatewayMetrics.length).toBeGreaterThan(0);
    expect(gatewayMetrics.filter((name) => !charted.includes(name))).toEqual([]);
  });
});

describe('Grafana provisioning', () => {
  it('points every panel at the datasource variable, which defaults to the provisioned uid', () => {
    const dashboard = loadDashboard();
    const provisionedUid = capture(
      readDeploy('grafana/provisioning/datasources/prometheus.yaml'),
      /^\s+uid: (\S+)$/m,
      'datasource uid',
    );
    const variable = dashboard.templating.list.find((v) => v.type === 'datasource');
    const queryPanels = allPanels(dashboard.panels).filter((p) => p.type !== 'row');

    expect(variable?.current?.value).toBe(provisionedUid);
    for (const panel of queryPanels) {
      expect(panel.datasource?.uid, panel.title).toBe(`\${${variable?.name}}`);
    }
  });

  it('gives every panel its own id', () => {
    const ids = allPanels(loadDashboard().panels).map((p) => p.id);

    expect(new Set(ids).size).toBe(ids.length);
  });

  it('loads dashboards from where compose mounts them', () => {
    const providerPath = capture(
      readDeploy('grafana/provisioning/dashboards/dashboards.yaml'),
      /^\s+path: (\S+)$/m,
      'dashboard provider path',
    );

    expect(readDeploy('compose.yaml')).toContain(`./grafana/dashboards:${providerPath}:ro`);
  });
});

describe('compose', () => {
  it('publishes ports on loopback only, and never the admin port', () => {
    const mappings = readDeploy('compose.yaml').match(/^\s+- ['"]?[\d.]*:?\d+:\d+['"]?$/gm) ?? [];

    expect(mappings.length).toBeGreaterThan(0);
    for (const mapping of mappings) {
      expect(mapping).toMatch(/- 127\.0\.0\.1:\d+:\d+$/);
      expect(mapping).not.toMatch(/:8081$/);
    }
  });

  it('stops the gateway no sooner than its drain ends', () => {
    const compose = readDeploy('compose.yaml');
    const drainMs = Number(capture(compose, /SHUTDOWN_GRACE_MS: '(\d+)'/, 'SHUTDOWN_GRACE_MS'));
    const stopSeconds = Number(capture(compose, /stop_grace_period: (\d+)s/, 'stop_grace_period'));

    expect(stopSeconds * 1000).toBeGreaterThan(drainMs);
  });
});

describe('Kubernetes manifests', () => {
  it('mounts the contract price table as the gateway PRICES_FILE', () => {
    const kustomization = readDeploy('k8s/kustomization.yaml');
    const deployment = readDeploy('k8s/deployment.yaml');
    const pricesFile = capture(kustomization, /- PRICES_FILE=(\S+)/, 'PRICES_FILE');
    const mountPath = capture(
      deployment,
      /- name: prices\n\s+mountPath: (\S+)/,
      'prices volume mount',
    );

    expect(JSON.parse(readDeploy('k8s/prices.json'))).toEqual(BUILT_IN_PRICES);
    expect(kustomization).toMatch(/- name: longcat-gateway-prices\n\s+files:\n\s+- prices\.json\n/);
    expect(deployment).toMatch(/- name: prices\n\s+configMap:\n\s+name: longcat-gateway-prices\n/);
    expect(pricesFile).toBe(`${mountPath}/prices.json`);
  });

  it('lets the drain finish before the kubelet kills the pod', () => {
    const deployment = readDeploy('k8s/deployment.yaml');
    const drainMs = Number(
      capture(readDeploy('k8s/kustomization.yaml'), /SHUTDOWN_GRACE_MS=(\d+)/, 'drain'),
    );
    const preStopSeconds = Number(capture(deployment, /command: \[sleep, '(\d+)'\]/, 'preStop'));
    const graceSeconds = Number(
      capture(deployment, /terminationGracePeriodSeconds: (\d+)/, 'grace period'),
    );

    expect(graceSeconds).toBeGreaterThan(preStopSeconds + drainMs / 1000);
  });

  it('probes /healthz on the admin port and runs as a non-root user', () => {
    const deployment = readDeploy('k8s/deployment.yaml');
    const probes = deployment.match(/(readiness|liveness)Probe:\n\s+httpGet:\n[^\n]+\n[^\n]+/g);

    expect(probes).toHaveLength(2);
    for (const probe of probes ?? []) {
      expect(probe).toMatch(/path: \/healthz\n\s+port: admin$/);
    }
    expect(deployment).toMatch(/- name: admin\n\s+containerPort: 8081\n/);
    expect(deployment).toMatch(/runAsNonRoot: true/);
    expect(capture(deployment, /runAsUser: (\d+)/, 'runAsUser')).not.toBe('0');
  });

  it('keeps the admin port on a ClusterIP Service of its own', () => {
    const [publicService, adminService] = readDeploy('k8s/service.yaml').split(/^---$/m);

    expect(publicService).toMatch(/port: 8080\n/);
    expect(publicService).not.toMatch(/port: 8081|targetPort: admin/);
    expect(adminService).toMatch(/type: ClusterIP\n/);
    expect(adminService).toMatch(/port: 8081\n\s+targetPort: admin/);
  });

  it('reads the keys the example Secret shows, and never applies the example', () => {
    const deployment = readDeploy('k8s/deployment.yaml');
    const example = readDeploy('k8s/secret.example.yaml');
    const referenced = [...deployment.matchAll(/secretKeyRef:\n\s+name: (\S+)\n\s+key: (\S+)/g)];
    const exampleKeys = [...(example.split('stringData:')[1] ?? '').matchAll(/^ {2}(\w+):/gm)];
    const applied = capture(
      readDeploy('k8s/kustomization.yaml'),
      /^resources:\n((?:\s+- .+\n)+)/m,
      'kustomization resources',
    );
    const secretKeys = ['ADMIN_TOKEN', 'REDIS_URL', 'UPSTREAM_API_KEY'];

    expect(new Set(referenced.map((m) => m[1]))).toEqual(new Set(['longcat-gateway']));
    expect(referenced.map((m) => m[2]).sort()).toEqual(secretKeys);
    expect(exampleKeys.map((m) => m[1]).sort()).toEqual(secretKeys);
    expect(example).toMatch(/^# EXAMPLE ONLY/);
    expect(applied).toContain('deployment.yaml');
    expect(applied).not.toContain('secret');
  });
});

// No Docker engine runs here or in CI, so the image cannot be built in a test: these read the
// Dockerfile as text and check what a build would need.
describe('Dockerfile', () => {
  const dockerfile = readDeploy('Dockerfile');
  const stages = dockerfile.split(/^FROM /m).slice(1);
  const runtime = stages.at(-1) ?? '';
  const build = stages[0] ?? '';

  it('builds in one stage and runs from another', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(build).toMatch(/^RUN npm ci\b/m);
    expect(build).toMatch(/^RUN npm run build$/m);
    expect(runtime).toMatch(/^RUN npm ci --omit=dev --ignore-scripts\b/m);
    expect(runtime).not.toMatch(/^COPY --from=\S+ \S*node_modules/m);
  });

  it('runs the compiled entry point with lua/ and dist/ beside it, as a non-root user', () => {
    const user = capture(runtime, /^USER (\S+)$/m, 'USER in the runtime stage');

    expect(user.split(':')[0]).not.toMatch(/^(root|0)$/);
    expect(runtime).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m);
    expect(runtime).toMatch(/^COPY lua \.\/lua$/m);
    expect(runtime).toMatch(/^CMD \["node", "dist\/src\/main\.js"\]$/m);
    expect(runtime).toMatch(/^EXPOSE 8080 8081$/m);
  });

  it('copies from the build context only paths that exist in the repository', () => {
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+)$/gm)].flatMap((m) =>
      (m[1] ?? '').split(/\s+/).slice(0, -1),
    );

    expect(sources).toContain('lua');
    expect(sources.filter((path) => !existsSync(join(ROOT, path)))).toEqual([]);
  });
});
