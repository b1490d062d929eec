#!/usr/bin/env node
// ctest deploy.kustomize: the Kubernetes manifests in deploy/kubernetes, offline.
//
// Renders the base and every overlay with `kubectl kustomize` (CELLAR_KUBECTL, else kubectl on
// PATH), validates every object against the Kubernetes schemas of the npm package
// kubernetes-models (plus: no field the schema does not know, which its validators let
// through), and checks what a schema cannot: Services and disruption budgets select pods that
// exist, every $(VAR) and Secret/ConfigMap a container uses is defined, etcd's --initial-cluster
// names exactly its StatefulSet's pods, Cellar's flags exist in src/server/config.cc and agree
// with its ports, volumes and etcd, its probes and preStop drain hook are there.
//
// CELLAR_KUBECTL_OLD=/path/to/old/kubectl (e.g. Debian 12's kubernetes-client, kustomize v2)
// also renders everything with that one and requires the same objects.
//
// Needs `npm ci` in tests/deploy (scripts/test.sh runs it). Prints `N passed, N failed` last.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const deployDir = path.join(root, 'deploy/kubernetes');
const require = createRequire(import.meta.url);

let passed = 0;
let failed = 0;

function report(name, problems) {
  if (problems.length === 0) {
    passed++;
    console.log(`ok ${passed + failed} - ${name}`);
  } else {
    failed++;
    console.log(`not ok ${passed + failed} - ${name}`);
    for (const p of problems) console.log(`    # ${p}`);
  }
}

// Runs fn(problems): it pushes what is wrong (or throws).
function check(name, fn) {
  const problems = [];
  try {
    fn(problems);
  } catch (e) {
    problems.push(`${e.message}`);
  }
  report(name, problems);
}

function finish() {
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

let YAML;
try {
  YAML = require('yaml');
  require('kubernetes-models/v1');
} catch (e) {
  report('tests/deploy/node_modules has yaml and kubernetes-models', [
    `${e.message.split('\n')[0]}`,
    'run `npm ci` in tests/deploy (scripts/test.sh does)',
  ]);
  finish();
}

// ---- What the manifests must agree with --------------------------------------------------

// Secrets the manifests use but do not contain: the operator makes them (docs/cluster.md).
const EXTERNAL_SECRETS = {
  'cellar-tls': ['tls.crt', 'tls.key'],
  'cellar-admin-key': ['admin-key'],
};

// `cellar serve` flags, from the source: [name] = takes a value?
function serveFlags() {
  const src = fs.readFileSync(path.join(root, 'src/server/config.cc'), 'utf8');
  const flags = new Map();
  for (const m of src.matchAll(/add_(option|flag)\(\s*"(--[a-z0-9-]+)"/g)) {
    flags.set(m[2], m[1] === 'option');
  }
  for (const m of src.matchAll(/set_config\(\s*"(--[a-z0-9-]+)"/g)) flags.set(m[1], true);
  if (flags.size < 20) throw new Error(`found only ${flags.size} flags in src/server/config.cc`);
  return flags;
}
const SERVE_FLAGS = serveFlags();

const DRAIN_COMMAND = (adminPort) =>
  `cellar --admin-port ${adminPort} --key "\${ADMIN_KEY}" node drain "\${POD_NAME}" --wait`;

// ---- Rendering --------------------------------------------------------------------------

function targets() {
  const overlays = path.join(deployDir, 'overlays');
  const list = ['base'];
  for (const d of fs.readdirSync(overlays).sort()) {
    if (fs.existsSync(path.join(overlays, d, 'kustomization.yaml'))) list.push(`overlays/${d}`);
  }
  return list;
}

function render(kubectl, target) {
  const r = spawnSync(kubectl, ['kustomize', path.join(deployDir, target)], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (r.error) throw new Error(`${kubectl}: ${r.error.message}`);
  if (r.status !== 0) {
    const err = r.stderr.split('\n').filter((l) => l.trim() && !l.startsWith('# Warning:'));
    throw new Error(`${kubectl} kustomize ${target} exited ${r.status}: ${err.join('\n      ')}`);
  }
  const objs = [];
  for (const doc of YAML.parseAllDocuments(r.stdout)) {
    if (doc.errors.length) throw new Error(`unparsable YAML: ${doc.errors[0].message}`);
    const o = doc.toJS();
    if (o != null) objs.push(o);
  }
  if (objs.length === 0) throw new Error('rendered nothing');
  return objs;
}

const id = (o) => `${o.kind}/${o.metadata?.name}`;

// ---- Schemas ----------------------------------------------------------------------------

function modelClass(o) {
  let mod;
  try {
    mod = require(`kubernetes-models/${o.apiVersion}`);
  } catch {
    throw new Error(`kubernetes-models has no API version ${o.apiVersion}`);
  }
  const Cls = mod[o.kind];
  if (typeof Cls !== 'function') throw new Error(`kubernetes-models has no ${o.apiVersion} ${o.kind}`);
  return Cls;
}

// The schemas' validators read every property they know and ignore the others; reading the
// object through proxies that note each read shows the fields no schema knows (a misspelt
// `readinesProbe`, a field at the wrong level).
function unknownFields(model) {
  const seen = new Map(); // object -> Set of keys read
  const wrap = (v) => {
    if (v === null || typeof v !== 'object') return v;
    const keys = new Set();
    seen.set(v, keys);
    return new Proxy(v, {
      get(t, k, r) {
        if (typeof k === 'string') keys.add(k);
        return wrap(Reflect.get(t, k, r));
      },
      has(t, k) {
        if (typeof k === 'string') keys.add(k);
        return Reflect.has(t, k);
      },
    });
  };
  try {
    model.validate.call(wrap(model));
  } catch {
    return []; // the plain validation reports it
  }
  const unknown = [];
  const walk = (v, at) => {
    if (v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, `${at}/${i}`));
      return;
    }
    const read = seen.get(v) ?? new Set();
    for (const k of Object.keys(v)) {
      if (!read.has(k)) unknown.push(`${at}/${k}`);
      else walk(v[k], `${at}/${k}`);
    }
  };
  walk(model, '');
  return unknown;
}

function checkSchemas(label, objs) {
  for (const o of objs) {
    check(`${label}: ${id(o)} is a valid ${o.apiVersion} ${o.kind}`, (problems) => {
      const Cls = modelClass(o);
      const model = new Cls(o);
      try {
        model.validate();
      } catch (e) {
        problems.push(`${id(o)}: ${e.message}`);
        return;
      }
      for (const f of unknownFields(model)) problems.push(`${id(o)}: unknown field ${f}`);
    });
  }
}

// ---- Helpers for the semantic checks ------------------------------------------------------

const WORKLOAD_KINDS = new Set(['StatefulSet', 'Deployment', 'DaemonSet']);
const workloads = (objs) => objs.filter((o) => WORKLOAD_KINDS.has(o.kind));
const podSpec = (w) => w.spec?.template?.spec ?? {};
const podLabels = (w) => w.spec?.template?.metadata?.labels ?? {};
const containersOf = (w) => [...(podSpec(w).initContainers ?? []), ...(podSpec(w).containers ?? [])];

const subsetOf = (sel, labels) =>
  Object.keys(sel).length > 0 && Object.entries(sel).every(([k, v]) => labels[k] === v);

function findObject(objs, kind, name) {
  return objs.find((o) => o.kind === kind && o.metadata?.name === name);
}

function containerPort(c, port) {
  return (c.ports ?? []).find((p) => p.name === port || p.containerPort === port);
}

// The value of $(VAR) references in s, as far as the rendering tells: env values, ConfigMap
// entries, fieldRefs as <metadata.name>, Secrets as <secret:name/key>.
function resolveEnv(objs, c, name) {
  const e = (c.env ?? []).find((x) => x.name === name);
  if (!e) return undefined;
  if (e.value !== undefined) return String(e.value);
  const vf = e.valueFrom ?? {};
  if (vf.fieldRef) return `<${vf.fieldRef.fieldPath}>`;
  if (vf.configMapKeyRef) {
    return findObject(objs, 'ConfigMap', vf.configMapKeyRef.name)?.data?.[vf.configMapKeyRef.key];
  }
  if (vf.secretKeyRef) return `<secret:${vf.secretKeyRef.name}/${vf.secretKeyRef.key}>`;
  if (vf.resourceFieldRef) return `<${vf.resourceFieldRef.resource}>`;
  return undefined;
}
function expand(objs, c, s) {
  return String(s).replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, v) => resolveEnv(objs, c, v) ?? m);
}

// cellar's sizes: k, m, g with b or ib, all powers of 1024.
function cellarBytes(s) {
  const m = /^(\d+)(k|kb|kib|m|mb|mib|g|gb|gib)?$/i.exec(String(s).trim());
  if (!m) return undefined;
  const mult = { k: 1 << 10, m: 1 << 20, g: 1 << 30 }[(m[2] ?? '').charAt(0).toLowerCase()] ?? 1;
  return Number(m[1]) * mult;
}
// Kubernetes quantities (memory).
function k8sBytes(q) {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(q));
  if (!m) return undefined;
  const mult = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(m[1]) * (mult[m[2]] ?? 1);
}
function k8sCpu(q) {
  const m = /^(\d+(?:\.\d+)?)(m)?$/.exec(String(q));
  if (!m) return undefined;
  return Number(m[1]) / (m[2] ? 1000 : 1);
}

// `--flag value` / `--flag=value` into a Map (flags without a value: true).
function parseServeArgs(args, problems) {
  const out = new Map();
  for (let i = 0; i < args.length; i++) {
    const a = String(args[i]);
    if (!a.startsWith('--')) {
      problems.push(`stray argument ${JSON.stringify(a)}`);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq < 0 ? a : a.slice(0, eq);
    if (!SERVE_FLAGS.has(name)) {
      problems.push(`${name} is not a flag of cellar serve (src/server/config.cc)`);
      continue;
    }
    if (eq >= 0) out.set(name, a.slice(eq + 1));
    else if (SERVE_FLAGS.get(name)) out.set(name, String(args[++i]));
    else out.set(name, true);
  }
  return out;
}

// The volume mounted at the deepest mount path above `file`, and the file's path inside it.
function mountFor(w, c, file) {
  let best;
  for (const m of c.volumeMounts ?? []) {
    const mp = m.mountPath.replace(/\/$/, '');
    if (file === mp || file.startsWith(`${mp}/`)) {
      if (!best || mp.length > best.mount.mountPath.length) best = { mount: m, rel: file.slice(mp.length + 1) };
    }
  }
  if (!best) return undefined;
  const vol = (podSpec(w).volumes ?? []).find((v) => v.name === best.mount.name);
  const claim = (w.spec?.volumeClaimTemplates ?? []).find((v) => v.metadata?.name === best.mount.name);
  return { ...best, vol, claim };
}

// What file `rel` of a Secret volume is: the Secret key it holds, or undefined.
function secretKeyAt(vol, rel, subPath) {
  const file = subPath ?? rel;
  const items = vol.secret.items;
  if (items) return items.find((it) => it.path === file)?.key;
  return file;
}

// ---- Semantic checks ------------------------------------------------------------------------

function checkCommon(label, objs) {
  check(`${label}: every object is in one namespace and labelled`, (problems) => {
    const ns = new Set(objs.map((o) => o.metadata?.namespace));
    if (ns.size !== 1 || ns.has(undefined) || ns.has('')) {
      problems.push(`namespaces: ${[...ns].join(', ')}`);
    }
    for (const o of objs) {
      const l = o.metadata?.labels ?? {};
      for (const k of ['app.kubernetes.io/name', 'app.kubernetes.io/part-of']) {
        if (!l[k]) problems.push(`${id(o)} has no label ${k}`);
      }
    }
  });

  check(`${label}: every workload's selector matches its pod template`, (problems) => {
    for (const w of workloads(objs)) {
      if (!subsetOf(w.spec?.selector?.matchLabels ?? {}, podLabels(w))) {
        problems.push(`${id(w)}: selector ${JSON.stringify(w.spec?.selector)} misses its pods`);
      }
      if (w.kind === 'StatefulSet') {
        const svc = findObject(objs, 'Service', w.spec.serviceName);
        if (!svc) problems.push(`${id(w)}: serviceName ${w.spec.serviceName} is no Service here`);
        else if (svc.spec?.clusterIP !== 'None') problems.push(`${id(w)}: Service ${w.spec.serviceName} is not headless`);
        else if (!subsetOf(svc.spec.selector ?? {}, podLabels(w))) {
          problems.push(`${id(w)}: its headless Service selects other pods`);
        }
      }
    }
  });

  check(`${label}: every Service selects existing pods, on ports they expose`, (problems) => {
    for (const s of objs.filter((o) => o.kind === 'Service')) {
      const sel = s.spec?.selector ?? {};
      const matched = workloads(objs).filter((w) => subsetOf(sel, podLabels(w)));
      if (matched.length === 0) {
        problems.push(`${id(s)}: selector ${JSON.stringify(sel)} matches no pod template`);
        continue;
      }
      for (const p of s.spec.ports ?? []) {
        const target = p.targetPort ?? p.port;
        for (const w of matched) {
          if (!podSpec(w).containers.some((c) => containerPort(c, target))) {
            problems.push(`${id(s)} port ${p.name ?? p.port}: ${id(w)} has no container port ${target}`);
          }
        }
      }
    }
  });

  check(`${label}: every NetworkPolicy names pods and ports that exist`, (problems) => {
    for (const np of objs.filter((o) => o.kind === 'NetworkPolicy')) {
      const targets = workloads(objs).filter((w) => subsetOf(np.spec?.podSelector?.matchLabels ?? {}, podLabels(w)));
      if (targets.length === 0) problems.push(`${id(np)}: podSelector matches no pods`);
      for (const rule of np.spec?.ingress ?? []) {
        for (const from of rule.from ?? []) {
          if (from.podSelector && !workloads(objs).some((w) => subsetOf(from.podSelector.matchLabels ?? {}, podLabels(w)))) {
            problems.push(`${id(np)}: from ${JSON.stringify(from.podSelector.matchLabels)} matches no pods`);
          }
        }
        for (const p of rule.ports ?? []) {
          for (const w of targets) {
            if (!podSpec(w).containers.some((c) => containerPort(c, p.port))) problems.push(`${id(np)}: ${id(w)} has no port ${p.port}`);
          }
        }
      }
    }
  });

  check(`${label}: every workload has a disruption budget of one`, (problems) => {
    const pdbs = objs.filter((o) => o.kind === 'PodDisruptionBudget');
    for (const p of pdbs) {
      if (!workloads(objs).some((w) => subsetOf(p.spec?.selector?.matchLabels ?? {}, podLabels(w)))) {
        problems.push(`${id(p)} selects no pods`);
      }
    }
    for (const w of workloads(objs)) {
      const mine = pdbs.filter((p) => subsetOf(p.spec?.selector?.matchLabels ?? {}, podLabels(w)));
      if (mine.length !== 1) problems.push(`${id(w)}: ${mine.length} disruption budgets`);
      else if (mine[0].spec.maxUnavailable !== 1) {
        problems.push(`${id(mine[0])}: maxUnavailable ${mine[0].spec.maxUnavailable}, not 1`);
      }
    }
  });

  check(`${label}: every container has readiness and liveness probes on its own ports`, (problems) => {
    for (const w of workloads(objs)) {
      for (const c of podSpec(w).containers ?? []) {
        for (const kind of ['readinessProbe', 'livenessProbe']) {
          const p = c[kind];
          if (!p) {
            problems.push(`${id(w)} container ${c.name}: no ${kind}`);
            continue;
          }
          const port = p.httpGet?.port ?? p.tcpSocket?.port ?? p.grpc?.port;
          if (port === undefined && !p.exec) problems.push(`${id(w)} ${c.name}: ${kind} has no action`);
          if (port !== undefined && !containerPort(c, port)) {
            problems.push(`${id(w)} ${c.name}: ${kind} on port ${port}, which it does not expose`);
          }
        }
      }
    }
  });

  check(`${label}: every volume, Secret, ConfigMap and $(VAR) a container uses is defined`, (problems) => {
    for (const w of workloads(objs)) {
      const spec = podSpec(w);
      const volumes = new Set([
        ...(spec.volumes ?? []).map((v) => v.name),
        ...(w.spec?.volumeClaimTemplates ?? []).map((v) => v.metadata?.name),
      ]);
      const useSecret = (name, key, where) => {
        if (!(name in EXTERNAL_SECRETS)) {
          problems.push(`${id(w)} ${where}: Secret ${name} is not one of the documented Secrets`);
        } else if (key !== undefined && !EXTERNAL_SECRETS[name].includes(key)) {
          problems.push(`${id(w)} ${where}: Secret ${name} has no key ${key} (${EXTERNAL_SECRETS[name]})`);
        }
      };
      const useConfigMap = (name, key, where) => {
        const cm = findObject(objs, 'ConfigMap', name);
        if (!cm) problems.push(`${id(w)} ${where}: no ConfigMap ${name} in the rendering`);
        else if (key !== undefined && !(key in (cm.data ?? {}))) {
          problems.push(`${id(w)} ${where}: ConfigMap ${name} has no key ${key}`);
        }
      };
      for (const v of spec.volumes ?? []) {
        if (v.secret) {
          if (v.secret.items) v.secret.items.forEach((it) => useSecret(v.secret.secretName, it.key, `volume ${v.name}`));
          else useSecret(v.secret.secretName, undefined, `volume ${v.name}`);
        }
        if (v.configMap) {
          if (v.configMap.items) v.configMap.items.forEach((it) => useConfigMap(v.configMap.name, it.key, `volume ${v.name}`));
          else useConfigMap(v.configMap.name, undefined, `volume ${v.name}`);
        }
      }
      for (const c of containersOf(w)) {
        const env = new Set((c.env ?? []).map((e) => e.name));
        for (const e of c.env ?? []) {
          const vf = e.valueFrom ?? {};
          if (vf.secretKeyRef) useSecret(vf.secretKeyRef.name, vf.secretKeyRef.key, `env ${e.name}`);
          if (vf.configMapKeyRef) useConfigMap(vf.configMapKeyRef.name, vf.configMapKeyRef.key, `env ${e.name}`);
        }
        for (const ef of c.envFrom ?? []) {
          if (ef.secretRef) useSecret(ef.secretRef.name, undefined, 'envFrom');
          if (ef.configMapRef) useConfigMap(ef.configMapRef.name, undefined, 'envFrom');
        }
        for (const m of c.volumeMounts ?? []) {
          if (!volumes.has(m.name)) problems.push(`${id(w)} ${c.name}: mount ${m.mountPath} of undefined volume ${m.name}`);
        }
        for (const a of [...(c.command ?? []), ...(c.args ?? [])]) {
          for (const m of String(a).matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
            if (!env.has(m[1])) problems.push(`${id(w)} ${c.name}: argument ${a} uses $(${m[1]}), which is not in its env`);
          }
        }
      }
    }
  });

  check(`${label}: every container runs as non-root on a read-only root file system`, (problems) => {
    for (const w of workloads(objs)) {
      const pod = podSpec(w).securityContext ?? {};
      for (const c of containersOf(w)) {
        const sc = c.securityContext ?? {};
        if (!(sc.runAsNonRoot ?? pod.runAsNonRoot)) problems.push(`${id(w)} ${c.name}: runAsNonRoot not set`);
        if (sc.readOnlyRootFilesystem !== true) problems.push(`${id(w)} ${c.name}: root file system writable`);
        if (sc.allowPrivilegeEscalation !== false) problems.push(`${id(w)} ${c.name}: privilege escalation allowed`);
        if (!c.resources?.requests || !c.resources?.limits?.memory) {
          problems.push(`${id(w)} ${c.name}: no resource requests or memory limit`);
        }
      }
    }
  });
}

function etcdOf(objs) {
  return objs.find((o) => o.kind === 'StatefulSet' && podSpec(o).containers?.some((c) => /\/etcd:/.test(c.image ?? '') || /(^|\/)etcd$/.test(c.command?.[0] ?? '')));
}

// etcd's members: [{name, peer, client}] from its StatefulSet, and its flags.
function etcdFacts(objs, problems) {
  const sts = etcdOf(objs);
  if (!sts) throw new Error('no etcd StatefulSet');
  const c = podSpec(sts).containers.find((x) => /etcd/.test(x.image ?? ''));
  const flags = new Map();
  for (const a of [...(c.command ?? []).slice(1), ...(c.args ?? [])]) {
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(String(a));
    if (m) flags.set(m[1], m[2] ?? true);
    else problems.push(`etcd argument ${a}: use --flag=value`);
  }
  const peerPort = containerPort(c, 'peer')?.containerPort;
  const clientPort = containerPort(c, 'client')?.containerPort;
  const members = [];
  for (let i = 0; i < (sts.spec.replicas ?? 1); i++) {
    const pod = `${sts.metadata.name}-${i}`;
    members.push({
      name: pod,
      peer: `http://${pod}.${sts.spec.serviceName}:${peerPort}`,
      client: `http://${pod}.${sts.spec.serviceName}:${clientPort}`,
    });
  }
  return { sts, c, flags, members, peerPort, clientPort };
}

function checkEtcd(label, objs) {
  check(`${label}: etcd's --initial-cluster lists exactly its StatefulSet's pods`, (problems) => {
    const { sts, flags, members } = etcdFacts(objs, problems);
    const listed = String(flags.get('initial-cluster') ?? '').split(',').filter(Boolean);
    const want = members.map((m) => `${m.name}=${m.peer}`);
    if (JSON.stringify([...listed].sort()) !== JSON.stringify([...want].sort())) {
      problems.push(`--initial-cluster=${listed.join(',')}`);
      problems.push(`  ${sts.spec.replicas} replicas want ${want.join(',')}`);
    }
  });

  check(`${label}: each etcd member is named and advertised as its pod`, (problems) => {
    const { sts, c, flags, peerPort, clientPort } = etcdFacts(objs, problems);
    const podName = resolveEnv(objs, c, 'POD_NAME');
    if (podName !== '<metadata.name>') problems.push('POD_NAME is not the pod name (fieldRef metadata.name)');
    const svc = sts.spec.serviceName;
    const expect = {
      name: '$(POD_NAME)',
      'initial-advertise-peer-urls': `http://$(POD_NAME).${svc}:${peerPort}`,
      'advertise-client-urls': `http://$(POD_NAME).${svc}:${clientPort}`,
      'listen-peer-urls': `http://0.0.0.0:${peerPort}`,
      'listen-client-urls': `http://0.0.0.0:${clientPort}`,
      'initial-cluster-state': 'new',
    };
    for (const [k, v] of Object.entries(expect)) {
      if (flags.get(k) !== v) problems.push(`--${k}=${flags.get(k)}, want ${v}`);
    }
    if (sts.spec.podManagementPolicy !== 'Parallel') {
      problems.push('podManagementPolicy is not Parallel: the members must start together to reach a quorum');
    }
    if (findObject(objs, 'Service', svc)?.spec?.publishNotReadyAddresses !== true) {
      problems.push(`headless Service ${svc} does not publish members before they are ready`);
    }
    for (const kind of ['readinessProbe', 'livenessProbe']) {
      if (c[kind]?.httpGet?.path !== '/health') problems.push(`${kind} is not GET /health`);
    }
    if (!/:v3\.4\.\d+$/.test(c.image)) problems.push(`image ${c.image} is not etcd v3.4.x`);
    const dataDir = String(flags.get('data-dir') ?? '');
    const m = mountFor(sts, c, dataDir);
    if (!m?.claim) problems.push(`--data-dir ${dataDir} is not on a volumeClaimTemplate`);
    else if (m.rel === '') problems.push(`--data-dir ${dataDir} is a volume's root (etcd wants mode 0700)`);
  });
}

function checkCellar(label, objs, cellar) {
  label = `${label}: ${id(cellar)}`;
  check(`${label} runs cellar serve with known flags`, (problems) => {
    const c = podSpec(cellar).containers.find((x) => x.name === 'cellar');
    const argv = [...(c.command ?? []), ...(c.args ?? [])];
    if (argv[0] !== 'cellar' || argv[1] !== 'serve') {
      problems.push(`runs ${argv.slice(0, 2).join(' ')}; want cellar serve (serve first: the server runs only then)`);
    }
    parseServeArgs(argv.slice(2), problems);
    if (!c.image) problems.push('no image');
  });
  const c = podSpec(cellar).containers.find((x) => x.name === 'cellar');
  const argv = [...(c.command ?? []), ...(c.args ?? [])];
  const args = parseServeArgs(argv.slice(2), []);
  const val = (flag) => (args.has(flag) ? expand(objs, c, args.get(flag)) : undefined);

  check(`${label}: --cluster-etcd names every etcd member`, (problems) => {
    const { members } = etcdFacts(objs, problems);
    const urls = String(val('--cluster-etcd') ?? '').split(',').filter(Boolean);
    const want = members.map((m) => m.client);
    if (JSON.stringify([...urls].sort()) !== JSON.stringify([...want].sort())) {
      problems.push(`--cluster-etcd ${urls.join(',')}; etcd's members are ${want.join(',')}`);
    }
  });

  check(`${label}: node id, zone and cluster name are valid`, (problems) => {
    if (val('--node-id') !== '<metadata.name>') problems.push(`--node-id ${val('--node-id')}: want $(POD_NAME), the pod name`);
    for (const f of ['--zone', '--cluster-name']) {
      const v = val(f);
      if (v === undefined || !/^[a-z0-9_-]{1,63}$/.test(v)) problems.push(`${f} ${v}: 1 to 63 of a-z, 0-9, '-' and '_'`);
    }
    const roles = String(val('--roles') ?? 'gateway,storage,control').split(',');
    if (!roles.includes('gateway') || !roles.includes('storage')) problems.push(`--roles ${roles}`);
  });

  check(`${label}: ports, TLS and data directory agree with its pod`, (problems) => {
    for (const [flag, name] of [['--resp-port', 'resp'], ['--api-port', 'api'], ['--admin-port', 'admin']]) {
      const p = containerPort(c, name);
      if (!p) problems.push(`no container port named ${name}`);
      else if (Number(val(flag)) !== p.containerPort) problems.push(`${flag} ${val(flag)} but port ${name} is ${p.containerPort}`);
    }
    const bind = val('--bind') ?? '127.0.0.1';
    if (bind.startsWith('127.') || bind === 'localhost' || bind === '::1') {
      problems.push(`--bind ${bind}: other pods cannot reach it`);
    }
    const tls = args.has('--tls-cert') && args.has('--tls-key');
    if (!tls && !args.has('--allow-plaintext-public')) {
      problems.push('beyond loopback cellar serve refuses to start without --tls-cert/--tls-key or --allow-plaintext-public');
    }
    for (const f of ['--tls-cert', '--tls-key']) {
      if (!args.has(f)) continue;
      const file = val(f);
      const m = mountFor(cellar, c, file);
      if (!m?.vol?.secret) {
        problems.push(`${f} ${file} is not in a mounted Secret`);
        continue;
      }
      const key = secretKeyAt(m.vol, m.rel, m.mount.subPath);
      const keys = EXTERNAL_SECRETS[m.vol.secret.secretName] ?? [];
      if (!keys.includes(key)) problems.push(`${f} ${file}: Secret ${m.vol.secret.secretName} has no key ${key}`);
    }
    const dataDir = val('--data-dir');
    const dm = dataDir && mountFor(cellar, c, dataDir);
    if (!dm || (!dm.vol && !dm.claim)) problems.push(`--data-dir ${dataDir} is not on a volume`);
    const keyMount = (c.volumeMounts ?? []).find((m) => m.mountPath === `${dataDir}/admin.key`);
    if (!keyMount) problems.push(`${dataDir}/admin.key is not mounted from the admin key Secret`);
    else {
      const kv = (podSpec(cellar).volumes ?? []).find((v) => v.name === keyMount.name);
      const key = kv?.secret && secretKeyAt(kv, '', keyMount.subPath);
      if (kv?.secret?.secretName !== 'cellar-admin-key' || key !== 'admin-key') {
        problems.push(`${dataDir}/admin.key is not key admin-key of Secret cellar-admin-key`);
      }
    }
    for (const kind of ['readinessProbe', 'livenessProbe']) {
      const p = c[kind] ?? {};
      const admin = containerPort(c, 'admin');
      if (p.httpGet) {
        if (p.httpGet.path !== '/healthz' || containerPort(c, p.httpGet.port) !== admin) {
          problems.push(`${kind} is not GET /healthz on the admin port`);
        }
        if (tls && p.httpGet.scheme !== 'HTTPS') problems.push(`${kind}: the admin port refuses plaintext when TLS is on: scheme HTTPS`);
      } else if (!p.tcpSocket) {
        problems.push(`${kind}: neither httpGet nor tcpSocket`);
      }
    }
  });

  check(`${label}: memory and threads fit its container`, (problems) => {
    const lim = c.resources?.limits ?? {};
    const items = cellarBytes(val('--memory-limit') ?? '');
    const mem = k8sBytes(lim.memory ?? '');
    if (items === undefined) problems.push(`--memory-limit ${val('--memory-limit')} is no size`);
    if (mem === undefined) problems.push(`memory limit ${lim.memory} is no quantity`);
    if (items !== undefined && mem !== undefined && items > 0.75 * mem) {
      problems.push(`--memory-limit ${val('--memory-limit')} is more than 75% of the container's ${lim.memory} (replies and buffers need the rest)`);
    }
    const threads = Number(val('--threads'));
    const cpu = k8sCpu(lim.cpu ?? '');
    if (!(threads >= 1)) problems.push(`--threads ${val('--threads')}: set it (the default counts the machine's cores, not the pod's)`);
    if (cpu !== undefined && threads > Math.max(1, Math.ceil(cpu))) problems.push(`--threads ${threads} above the CPU limit ${lim.cpu}`);
  });

  check(`${label}: drains itself before it stops (preStop)`, (problems) => {
    const hook = c.lifecycle?.preStop?.exec?.command;
    if (!hook) throw new Error('no preStop exec hook');
    const admin = containerPort(c, 'admin')?.containerPort;
    const want = DRAIN_COMMAND(admin);
    const script = hook[0] === '/bin/sh' && hook[1] === '-c' ? hook[2] : undefined;
    if (script === undefined || !script.includes(want)) {
      problems.push(`preStop runs ${JSON.stringify(hook)}; want /bin/sh -c '${want}' (hooks get no $(VAR) expansion)`);
    }
    if (!String(resolveEnv(objs, c, 'ADMIN_KEY')).startsWith('<secret:cellar-admin-key/')) {
      problems.push('ADMIN_KEY does not come from the Secret cellar-admin-key');
    }
    if (resolveEnv(objs, c, 'POD_NAME') !== '<metadata.name>') problems.push('POD_NAME is not the pod name');
    const grace = podSpec(cellar).terminationGracePeriodSeconds ?? 30;
    if (grace < 60) problems.push(`terminationGracePeriodSeconds ${grace}: too short for a drain`);
  });

  check(`${label}: nodes spread across machines and zones`, (problems) => {
    const spec = podSpec(cellar);
    const labels = podLabels(cellar);
    const terms = [
      ...(spec.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []),
      ...(spec.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((t) => t.podAffinityTerm),
      ...(spec.topologySpreadConstraints ?? []),
    ];
    const pinned = zonePin(cellar);
    for (const key of ['kubernetes.io/hostname', 'topology.kubernetes.io/zone']) {
      const t = terms.filter((x) => x.topologyKey === key);
      if (t.length === 0 && !(key === 'topology.kubernetes.io/zone' && pinned)) problems.push(`nothing spreads the nodes by ${key}`);
      for (const x of t) {
        if (!subsetOf(x.labelSelector?.matchLabels ?? {}, labels)) problems.push(`the ${key} rule selects other pods`);
      }
    }
  });
}

// The zone a StatefulSet's pods are pinned to by required node affinity, if one.
function zonePin(w) {
  const terms = podSpec(w).affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  const zones = new Set();
  for (const t of terms) {
    for (const e of t.matchExpressions ?? []) {
      if (e.key === 'topology.kubernetes.io/zone' && e.operator === 'In') e.values.forEach((v) => zones.add(v));
    }
  }
  return zones.size === 1 ? [...zones][0] : undefined;
}

function checkFleet(label, objs) {
  const fleet = objs.filter((o) => o.kind === 'StatefulSet' && podSpec(o).containers?.some((c) => c.name === 'cellar'));
  const serveArg = (w, flag) => {
    const c = podSpec(w).containers.find((x) => x.name === 'cellar');
    const args = parseServeArgs([...(c.command ?? []), ...(c.args ?? [])].slice(2), []);
    return args.has(flag) ? expand(objs, c, args.get(flag)) : undefined;
  };
  check(`${label}: a Cellar fleet of one StatefulSet per zone`, (problems) => {
    if (fleet.length === 0) throw new Error('no StatefulSet with a container named cellar');
    const zones = new Map();
    for (const w of fleet) {
      const zone = serveArg(w, '--zone');
      const pin = zonePin(w);
      if (fleet.length > 1 && !pin) problems.push(`${id(w)}: one of several StatefulSets, yet not pinned to a zone`);
      if (pin && pin !== zone) problems.push(`${id(w)}: pinned to zone ${pin} but says --zone ${zone}`);
      if (zones.has(zone)) problems.push(`${id(w)} and ${id(zones.get(zone))} both say zone ${zone}`);
      zones.set(zone, w);
      const others = fleet.filter((x) => x !== w && subsetOf(w.spec.selector.matchLabels, podLabels(x)));
      if (others.length) problems.push(`${id(w)}'s selector also selects the pods of ${others.map(id).join(', ')}`);
    }
    const names = new Set(fleet.map((w) => serveArg(w, '--cluster-name')));
    if (names.size !== 1) problems.push(`one fleet, several cluster names: ${[...names].join(', ')}`);
  });
  for (const w of fleet) checkCellar(label, objs, w);
  check(`${label}: Services expose Cellar's RESP, API and admin ports on every node`, (problems) => {
    for (const name of ['resp', 'api', 'admin']) {
      const svcs = objs.filter((s) => s.kind === 'Service' && s.spec?.clusterIP !== 'None' &&
        (s.spec.ports ?? []).some((p) => fleet.some((w) => containerPort(podSpec(w).containers.find((x) => x.name === 'cellar'), p.targetPort ?? p.port)?.name === name)));
      if (svcs.length === 0) problems.push(`no client Service for port ${name}`);
      for (const s of svcs) {
        for (const w of fleet) {
          if (!subsetOf(s.spec.selector ?? {}, podLabels(w))) problems.push(`${id(s)} misses the pods of ${id(w)}`);
        }
      }
    }
  });
}

// Same objects from two kubectl versions (generated names' hash suffixes aside).
function normalize(objs) {
  const cms = new Map();
  for (const o of objs) {
    if (o.kind === 'ConfigMap' || o.kind === 'Secret') {
      cms.set(o.metadata.name, o.metadata.name.replace(/-[a-z0-9]{10}$/, '-HASH'));
    }
  }
  // Names with the hash suffix generalised; empty maps (the old kustomize adds
  // `annotations: {}` to merged ConfigMaps) dropped.
  const text = JSON.stringify(objs, (k, v) => {
    if (typeof v === 'string' && cms.has(v)) return cms.get(v);
    if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0 && k !== '') return undefined;
    return v;
  });
  const sortKeys = (v) => {
    if (Array.isArray(v)) return v.map(sortKeys);
    if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
    return v;
  };
  return JSON.parse(text).map(sortKeys).sort((a, b) => id(a).localeCompare(id(b)));
}
function firstDifference(a, b, at = '') {
  if (JSON.stringify(a) === JSON.stringify(b)) return undefined;
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const d = firstDifference(a[k], b[k], `${at}/${k}`);
      if (d) return d;
    }
  }
  return `${at || '/'}: ${JSON.stringify(a)?.slice(0, 200)} vs ${JSON.stringify(b)?.slice(0, 200)}`;
}

// ---- Main ------------------------------------------------------------------------------

const kubectl = process.env.CELLAR_KUBECTL || 'kubectl';
const oldKubectl = process.env.CELLAR_KUBECTL_OLD;

check('docs/cluster.md tells how to create every Secret the manifests use', (problems) => {
  const doc = fs.readFileSync(path.join(root, 'docs/cluster.md'), 'utf8');
  for (const [name, keys] of Object.entries(EXTERNAL_SECRETS)) {
    const line = doc.split('\n').find((l) => l.includes('create secret') && l.includes(` ${name}`));
    if (!line) problems.push(`no \`kubectl create secret ... ${name}\``);
    else if (name !== 'cellar-tls' && !keys.every((k) => line.includes(`${k}=`))) problems.push(`${name}: keys ${keys}`);
  }
});

for (const target of targets()) {
  let objs;
  check(`${target}: kubectl kustomize renders it`, () => {
    objs = render(kubectl, target);
  });
  if (!objs) continue;
  checkSchemas(target, objs);
  checkCommon(target, objs);
  checkEtcd(target, objs);
  checkFleet(target, objs);
  if (oldKubectl) {
    check(`${target}: ${oldKubectl} renders the same objects`, (problems) => {
      const d = firstDifference(normalize(objs), normalize(render(oldKubectl, target)));
      if (d) problems.push(d);
    });
  }
}

finish();
