import t from 'tap';
import { connect } from 'node:net';
import { join } from 'node:path';
import { portOf, sendUdp, startCli, type OutLine } from './helpers.js';

// A datadog.yaml excerpt pasted as is (the agent's key names), plus our own camelCase keys.
const AGENT_YAML = `
statsd_metric_namespace: shop
metric_filterlist:
  - shop.debug.
metric_filterlist_match_prefix: true
metric_tag_filterlist:
  - metric_name: shop.api.calls
    action: exclude
    tags: [user_id]
dogstatsd_mapper_profiles:
  - name: servers
    prefix: "servers."
    mappings:
      - match: "servers.*.http.*.count"
        name: "http.requests"
        tags:
          server: "$1"
          status: "$2"
      - match: 'servers\\.([^.]+)\\.queue\\.depth'
        match_type: regex
        name: "queue.\${1}_depth"
countersAs: count
`;

// A statsd_exporter mapping file, as its README writes them.
const EXPORTER_YAML = `
mappings:
  - match: "legacy.*.hits"
    name: "legacy_hits"
    labels:
      service: "$1"
  - match: "junk.*"
    action: drop
    name: "dropped"
`;

const BASE = ['--statsd-udp', '127.0.0.1:0', '--flush-interval', '1h', '--hostname', 'h'];

/** Series of `metric` as `tags=value` strings, sorted; the counters are counts (`countersAs: count`). */
function seriesOf(lines: OutLine[], metric: string): string[] {
  return lines
    .filter((l) => l.metric === metric && l.kind === undefined)
    .map((l) => `${(l.tags ?? []).join(',')}=${l.value}`)
    .sort();
}

function selfCount(lines: OutLine[], metric: string, tags: string[]): number {
  return lines.filter((l) => l.metric === metric && tags.every((x) => l.tags?.includes(x))).reduce((s, l) => s + l.value!, 0);
}

function files(t: { testdir(fixture: Record<string, string>): string }): { config: string; mapping: string } {
  const dir = t.testdir({ 'metrics-distributor.yaml': AGENT_YAML, 'statsd_mapping.yml': EXPORTER_YAML });
  return { config: join(dir, 'metrics-distributor.yaml'), mapping: join(dir, 'statsd_mapping.yml') };
}

async function sendTcp(port: number, data: string): Promise<void> {
  const sock = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  await new Promise<void>((resolve) => sock.end(data, resolve));
  await new Promise<void>((resolve) => sock.once('close', () => resolve()));
}

/** One logplex frame: `<byte length> <syslog message>`. */
const frame = (msg: string) => `${Buffer.byteLength(msg)} ${msg}`;

t.test('a pasted agent config and a statsd_exporter mapping shape UDP, TCP, HTTP /statsd and log-drain traffic alike', async (t) => {
  const { config, mapping } = files(t);
  const c = startCli([...BASE, '--config', config, '--mapping-config', mapping, '--statsd-tcp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--http-auth', 'u:p']);
  const listeners = await c.listening;
  const auth = { authorization: `Basic ${Buffer.from('u:p').toString('base64')}` };
  await sendUdp(portOf(listeners, 'udp'), [
    'servers.web1.http.200.count:1|c\nservers.web1.http.200.count:1|c\ndebug.trace:1|c\napi.calls:1|c|#user_id:1,route:/a',
    'servers.db.queue.depth:7|g\njvm.heap:5|g\n_e{5,4}:debug|text',
  ]);
  await sendTcp(portOf(listeners, 'tcp'), 'servers.web1.http.200.count:2|c\napi.calls:1|c|#user_id:2,route:/a\nlegacy.cart.hits:3|c\ndebug.tcp:1|c\n');
  const base = `http://127.0.0.1:${portOf(listeners, 'http')}`;
  const statsd = await fetch(`${base}/statsd`, { method: 'POST', headers: auth, body: 'servers.web2.http.500.count:4|c\njunk.x:1|c\napi.calls:1|c|#user_id:3,route:/a' });
  t.equal(statsd.status, 200);
  const drain = [frame('<190>1 2024-01-01T00:00:00+00:00 host app web.1 - count#signups=2 count#debug.hits=5 sample#queue.length=9')].join('');
  const logs = await fetch(`${base}/logs?app=web`, { method: 'POST', headers: { ...auth, 'content-type': 'application/logplex-1', 'logplex-msg-count': '1' }, body: drain });
  t.equal(logs.status, 200);
  await new Promise((r) => setTimeout(r, 300)); // the datagrams are read
  c.proc.kill('SIGTERM');
  t.equal((await c.exited).code, 0, c.stderr());
  const lines = c.lines;

  t.same(seriesOf(lines, 'shop.http.requests'), ['server:web1,status:200=4', 'server:web2,status:500=4'], 'mapped by the agent profile, from UDP, TCP and /statsd');
  t.same(seriesOf(lines, 'shop.queue.db_depth'), ['=7'], 'regex mapping with ${1}');
  t.same(seriesOf(lines, 'shop.api.calls'), ['route:/a=3'], 'user_id excluded: one context for three users, over three front-ends');
  t.same(seriesOf(lines, 'shop.legacy_hits'), ['service:cart=3'], 'statsd_exporter glob and label');
  t.same(seriesOf(lines, 'jvm.heap'), ['=5'], "the agent's default namespace blocklist");
  t.same(seriesOf(lines, 'shop.signups'), ['app:web=2'], 'log-drain samples are namespaced too');
  t.same(seriesOf(lines, 'shop.queue.length'), ['app:web=9']);
  t.notOk(lines.some((l) => l.metric !== undefined && /debug|junk/.test(l.metric)), 'blocked and dropped names never reach a sink');
  t.ok(lines.some((l) => l.kind === 'event' && l.title === 'debug'), 'events are not filtered');
  // debug.trace (UDP) + debug.tcp (TCP) + junk.x (/statsd) + debug.hits (drain) = 4 samples.
  t.equal(selfCount(lines, 'metrics_distributor.dropped', ['component:transform', 'reason:blocked']), 4, 'dropped{component:transform,reason:blocked}');
  t.equal(selfCount(lines, 'metrics_distributor.tags_excluded', ['component:transform']), 3, 'one user_id per new key');
  t.ok(lines.some((l) => l.metric === 'metrics_distributor.received'), 'self-metrics are not namespaced');
});

t.test('--workers 2 apply the same transform in every worker', async (t) => {
  const { config, mapping } = files(t);
  const c = startCli([...BASE, '--config', config, '--mapping-config', mapping, '--workers', '2']);
  const port = portOf(await c.listening, 'udp');
  const packets: string[] = [];
  for (let i = 0; i < 100; i++) packets.push(`servers.web${i % 2}.http.200.count:1|c\ndebug.x:1|c\napi.calls:1|c|#user_id:${i},route:/a\nlegacy.cart.hits:1|c`);
  await sendUdp(port, packets);
  await new Promise((r) => setTimeout(r, 300));
  c.proc.kill('SIGTERM');
  t.equal((await c.exited).code, 0, c.stderr());
  const lines = c.lines;
  t.same(seriesOf(lines, 'shop.http.requests'), ['server:web0,status:200=50', 'server:web1,status:200=50']);
  t.same(seriesOf(lines, 'shop.api.calls'), ['route:/a=100'], 'merged once, not namespaced twice');
  t.same(seriesOf(lines, 'shop.legacy_hits'), ['service:cart=100']);
  t.equal(selfCount(lines, 'metrics_distributor.dropped', ['component:transform', 'reason:blocked']), 100, "the workers' drops reach the primary");
});

t.test('bad transform configs stop start-up with exit 2, naming the key, the profile and the mapping', async (t) => {
  const dir = t.testdir({
    'regex.yaml': 'dogstatsd_mapper_profiles:\n  - name: airflow\n    prefix: airflow.\n    mappings:\n      - match: "airflow.("\n        match_type: regex\n        name: x\n',
    'groups.yaml': 'dogstatsd_mapper_profiles:\n  - name: p\n    prefix: a.\n    mappings:\n      - match: "a.*.*"\n        name: "b.$3"\n',
    'nested.yaml': 'dogstatsd_mapper_profiles:\n  - name: p\n    prefix: a.\n    mappings:\n      - match: "a.*"\n        name: b\n        tag: {}\n',
    'both.yaml': 'namespace: a\nstatsd_metric_namespace: b\n',
    'exporter.yml': 'mappings:\n  - match: "a.*"\n    name: a\n    timer_type: histogram\n',
  });
  const cases: [string[], RegExp][] = [
    [['--config', join(dir, 'regex.yaml')], /key 'dogstatsd_mapper_profiles'.*mappings\[0\]\.match: invalid regex 'airflow\.\(' \(mapping 'airflow\.\('\) \(profile 'airflow'\)/],
    [['--config', join(dir, 'groups.yaml')], /'\$3' refers to group 3, but 'a\.\*\.\*' has 2 group\(s\) \(mapping 'a\.\*\.\*'\) \(profile 'p'\)/],
    [['--config', join(dir, 'nested.yaml')], /mappings\[0\]\.tag: unknown key/],
    [['--config', join(dir, 'both.yaml')], /keys 'namespace' and 'statsd_metric_namespace'/],
    [['--mapping-config', join(dir, 'exporter.yml')], /--mapping-config: mapping-config\.mappings\[0\]\.timer_type: is not supported/],
    [['--metric-filterlist-mode', 'allow'], /needs a --metric-filterlist/],
  ];
  for (const [args, re] of cases) {
    const c = startCli([...BASE, ...args]);
    t.equal((await c.exited).code, 2, args.join(' '));
    t.match(c.stderr(), re);
  }
});
