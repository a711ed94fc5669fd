/**
 * The Kubernetes manifests, checked without a cluster: every YAML document of the base and of each
 * overlay as kustomize would render it (resources, strategic-merge patches by name, common labels; a
 * small renderer below, enough for what these kustomizations use) is validated against the Kubernetes
 * OpenAPI schemas (kubernetes-models), and the numbers the deployment promises are checked: 3 replicas,
 * 2 CPUs / 4 GiB limits, PLUGIN_DIR=/opt/plugins, /readyz and /healthz probes, a preStop plus clawbox's
 * own hard stop inside terminationGracePeriodSeconds, Services and PDB selecting the pods, every
 * referenced ConfigMap/Secret present, and the ConfigMap's config.yaml accepted by clawbox's own config
 * loader with the Deployment's environment. kubernetes-models does not flag unknown fields (kubectl's
 * server-side field validation would), so the renderer's output is also compared to a known key list
 * for the containers.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import YAML from 'yaml';
import { checkConfig } from '../../app/config.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const KUSTOMIZATIONS = ['base', 'overlays/small-site', 'overlays/external-redis'];
/** clawbox exits at most this long after SIGTERM (app/cli.ts hard stop). */
const CLAWBOX_HARD_STOP_S = 5;

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML documents of any shape
type Doc = Record<string, any>;

function readDocs(file: string): Doc[] {
  return YAML.parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => d.toJS() as Doc)
    .filter((d) => d !== null);
}

/** Strategic merge as kustomize does it for these patches: maps deep, lists of named items by name. */
// biome-ignore lint/suspicious/noExplicitAny: parsed YAML documents of any shape
function merge(target: any, patch: any): any {
  if (Array.isArray(target) && Array.isArray(patch)) {
    if (!patch.every((p) => p && typeof p === 'object' && 'name' in p)) return patch;
    const out = target.map((item) => ({ ...item }));
    for (const p of patch) {
      const i = out.findIndex((item) => item.name === p.name);
      if (i >= 0) out[i] = merge(out[i], p);
      else out.push(p);
    }
    return out;
  }
  if (target && patch && typeof target === 'object' && typeof patch === 'object' && !Array.isArray(patch)) {
    const out = { ...target };
    for (const [key, value] of Object.entries(patch)) out[key] = key in out ? merge(out[key], value) : value;
    return out;
  }
  return patch;
}

function render(dir: string): Doc[] {
  const kustomization = YAML.parse(readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8')) as Doc;
  let docs: Doc[] = [];
  for (const resource of kustomization.resources ?? []) {
    const target = path.resolve(dir, resource);
    docs.push(...(statSync(target).isDirectory() ? render(target) : readDocs(target)));
  }
  for (const { path: patchFile } of kustomization.patches ?? []) {
    for (const patch of readDocs(path.join(dir, patchFile))) {
      const i = docs.findIndex((d) => d.kind === patch.kind && d.metadata?.name === patch.metadata?.name);
      if (i < 0) throw new Error(`${patchFile}: patch target ${patch.kind}/${patch.metadata?.name} not found`);
      docs[i] = merge(docs[i], patch);
    }
  }
  for (const { pairs } of kustomization.labels ?? []) {
    docs = docs.map((d) => ({ ...d, metadata: { ...d.metadata, labels: { ...d.metadata?.labels, ...pairs } } }));
  }
  return docs;
}

async function validate(doc: Doc): Promise<void> {
  const [group, version] = String(doc.apiVersion).includes('/') ? String(doc.apiVersion).split('/') : [null, doc.apiVersion];
  const modulePath = group ? `kubernetes-models/${group}/${version}/${doc.kind}` : `kubernetes-models/${version}/${doc.kind}`;
  const Model = (await import(modulePath)).default ?? (await import(modulePath))[doc.kind];
  new Model(doc).validate();
}

const CONTAINER_KEYS = new Set([
  'name', 'image', 'imagePullPolicy', 'args', 'command', 'env', 'ports', 'resources', 'startupProbe', 'livenessProbe',
  'readinessProbe', 'lifecycle', 'securityContext', 'volumeMounts', 'workingDir',
]);

const find = (docs: Doc[], kind: string, name: string) => docs.find((d) => d.kind === kind && d.metadata?.name === name);

for (const name of KUSTOMIZATIONS) {
  t.test(`${name}: every resource is valid against the Kubernetes schemas`, async (t) => {
    const docs = render(path.join(HERE, name));
    t.ok(docs.length >= 6, `${docs.length} resources`);
    for (const doc of docs) {
      await t.resolves(validate(doc), `${doc.kind}/${doc.metadata?.name}`);
    }
  });

  t.test(`${name}: the deployment the brief asks for`, async (t) => {
    const docs = render(path.join(HERE, name));
    const deployment = find(docs, 'Deployment', 'clawbox')!;
    t.ok(deployment, 'a Deployment named clawbox');
    const spec = deployment.spec;
    t.equal(spec.replicas, 3, 'replicas: 3');
    const pod = spec.template.spec;
    const container = pod.containers.find((c: Doc) => c.name === 'clawbox');
    for (const key of Object.keys(container)) t.ok(CONTAINER_KEYS.has(key), `container key ${key} is a known one`);
    t.same(container.resources.limits, { cpu: '2', memory: '4Gi' }, 'limits: 2 CPUs, 4 GiB');
    const env = Object.fromEntries(container.env.map((e: Doc) => [e.name, e]));
    t.equal(env.PLUGIN_DIR?.value, '/opt/plugins', 'PLUGIN_DIR=/opt/plugins');
    t.ok(container.volumeMounts.some((m: Doc) => m.mountPath === '/opt/plugins'), 'a volume is mounted at PLUGIN_DIR');
    t.equal(env.CLAWBOX_CLUSTER_REPLICA_ID?.valueFrom?.fieldRef?.fieldPath, 'metadata.name', 'replica id = pod name');
    t.equal(container.readinessProbe.httpGet.path, '/readyz', 'readiness: /readyz');
    t.equal(container.livenessProbe.httpGet.path, '/healthz', 'liveness: /healthz');
    const preStop = container.lifecycle.preStop.sleep.seconds as number;
    t.ok(preStop + CLAWBOX_HARD_STOP_S < pod.terminationGracePeriodSeconds, `preStop ${preStop} s + stop ${CLAWBOX_HARD_STOP_S} s < grace ${pod.terminationGracePeriodSeconds} s`);

    const podLabels = spec.template.metadata.labels;
    const selects = (selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => podLabels[k] === v);
    t.ok(selects(spec.selector.matchLabels), 'the Deployment selects its pods');
    const ports = new Set(container.ports.map((p: Doc) => p.name));
    for (const [service, expected] of [
      ['clawbox-mqtt', [1883, 8883]],
      ['clawbox-http', [8080]],
    ] as const) {
      const svc = find(docs, 'Service', service)!;
      t.ok(svc && selects(svc.spec.selector), `${service} selects the pods`);
      t.same(svc.spec.ports.map((p: Doc) => p.port), expected, `${service} ports ${expected.join(', ')}`);
      for (const p of svc.spec.ports) t.ok(ports.has(p.targetPort), `${service} targets the container port ${p.targetPort}`);
    }
    const pdb = find(docs, 'PodDisruptionBudget', 'clawbox')!;
    t.ok(pdb && selects(pdb.spec.selector.matchLabels), 'the PodDisruptionBudget selects the pods');

    // Everything the pod refers to exists in the rendering.
    const refs = [
      ...pod.volumes.filter((v: Doc) => v.configMap).map((v: Doc) => ['ConfigMap', v.configMap.name]),
      ...pod.volumes.filter((v: Doc) => v.secret).map((v: Doc) => ['Secret', v.secret.secretName]),
      ...container.env.filter((e: Doc) => e.valueFrom?.secretKeyRef).map((e: Doc) => ['Secret', e.valueFrom.secretKeyRef.name]),
    ];
    for (const [kind, ref] of refs) t.ok(find(docs, kind, ref), `${kind}/${ref} is part of ${name}`);
    for (const mount of container.volumeMounts) t.ok(pod.volumes.some((v: Doc) => v.name === mount.name), `volume ${mount.name} exists`);

    // clawbox itself accepts the config with the Deployment's environment (secrets given stand-in values).
    const scratch = mkdtempSync(path.join(tmpdir(), 'clawbox-k8s-'));
    t.teardown(() => rmSync(scratch, { recursive: true, force: true }));
    const file = path.join(scratch, 'config.yaml');
    writeFileSync(file, find(docs, 'ConfigMap', 'clawbox-config')!.data['config.yaml']);
    const configEnv: Record<string, string> = {};
    for (const e of container.env) {
      if (e.name.startsWith('CLAWBOX_') && e.name !== 'CLAWBOX_CONFIG') configEnv[e.name] = e.value ?? (e.name.endsWith('REPLICA_ID') ? 'clawbox-7d9f-abcde' : 'stand-in-secret-value-0123456789');
    }
    const { loaded, issues } = checkConfig({ file, env: configEnv });
    t.same(issues, [], 'clawbox config check passes');
    t.match(loaded?.config, { mode: 'appliance', cluster: { enabled: true }, http: { host: '0.0.0.0' } });
  });
}

t.test('small-site: Redis fsyncs every write and is where the config points', async (t) => {
  const docs = render(path.join(HERE, 'overlays/small-site'));
  const redis = find(docs, 'StatefulSet', 'clawbox-redis')!;
  const args = redis.spec.template.spec.containers[0].args.join(' ');
  t.match(args, /--appendonly yes/);
  t.match(args, /--appendfsync always/);
  t.ok(find(docs, 'Service', 'clawbox-redis'), 'a clawbox-redis Service');
  const config = YAML.parse(find(docs, 'ConfigMap', 'clawbox-config')!.data['config.yaml']);
  t.equal(new URL(config.cluster.redis.url).hostname, 'clawbox-redis', 'the config names that Service');
});

t.test('the container build file matches the manifests', async (t) => {
  const file = path.join(ROOT, 'deploy/container/Containerfile');
  t.ok(existsSync(file));
  const text = readFileSync(file, 'utf8');
  t.match(text, /PLUGIN_DIR=\/opt\/plugins/, 'PLUGIN_DIR in the image');
  t.match(text, /EXPOSE 1883 8883 8080/, 'the ports the Services target');
  t.match(text, /USER 10001:10001/, 'the user the pod security context runs as');
  t.match(text, /bin\/clawbox\.js/, 'the clawbox entry point');
});
