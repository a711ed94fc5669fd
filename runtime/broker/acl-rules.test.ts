/**
 * Ordered allow/deny ACL rules (acl.ts) through the real broker with real clients: first match wins,
 * deny rules inside a granted subscription, the anonymous rules (no deleting retained device state or
 * discovery configs), `$SYS` only when named, `$share/<group>/` checked as its filter.
 */
import t from 'tap';
import { hashPassword } from '../auth/password.js';
import { closeClient, collect, connect, startTestBroker, until } from '../../app/testing/broker.js';
import { TopicAcl, anonymousRules, userRules } from './acl.js';

const hash = await hashPassword('secret');

t.test('rule order: the first rule whose topic matches decides; nothing matching denies', async (t) => {
  const acl = new TopicAcl(
    userRules({
      acl: [
        { allow: false, access: 'publish', topic: 'home/%u/locked' },
        { allow: false, access: 'subscribe', topic: 'home/secret/#' },
        { allow: false, access: 'clear', topic: 'home/#' },
        { allow: true, access: 'all', topic: 'home/#' },
        { allow: true, access: 'subscribe', topic: '$SYS/broker/#' },
      ],
      publish: ['other/#'],
      subscribe: [],
    }),
    'ann',
    'c1',
  );
  t.notOk(acl.mayPublish('home/ann/locked'), 'deny before allow');
  t.ok(acl.mayPublish('home/bob/locked'), '%u filled in: only ann’s is denied');
  t.ok(acl.mayPublish('home/x'), 'allowed by the later all rule');
  t.notOk(acl.mayPublish('home/x', true), 'but not cleared (empty retained)');
  t.ok(acl.mayPublish('other/x', true), 'legacy publish list: clearing allowed too');
  t.notOk(acl.mayPublish('nowhere'), 'no rule: denied');
  t.notOk(acl.maySubscribe('home/secret/+'), 'a deny rule covering the whole filter refuses it');
  t.ok(acl.maySubscribe('home/#'), 'a filter only overlapping a deny rule is granted...');
  t.notOk(acl.mayReceive('home/secret/x'), '...and the deny applies per message');
  t.ok(acl.mayReceive('home/open'));
  t.notOk(acl.maySubscribe('#'), '# is not covered by home/#');
  t.ok(acl.maySubscribe('$share/g1/home/+'), '$share checked as its filter');
  t.notOk(acl.maySubscribe('$share/g1/elsewhere'));
  t.ok(acl.maySubscribe('$SYS/broker/uptime'), '$SYS only through a rule naming it');
  t.notOk(acl.maySubscribe('$SYS/other'));

  const anonymous = new TopicAcl(anonymousRules('clawbox'), '', 'x');
  t.ok(anonymous.mayPublish('clawbox/lamp/set'));
  t.ok(anonymous.mayPublish('clawbox/lamp'), 'updating state is allowed');
  t.notOk(anonymous.mayPublish('clawbox/lamp', true), 'deleting retained device state is not');
  t.notOk(anonymous.mayPublish('homeassistant/switch/lamp/config', true), 'nor a discovery config');
  t.ok(anonymous.mayPublish('elsewhere/x', true), 'other retained messages may be cleared');
  t.ok(anonymous.maySubscribe('#'));
  t.ok(anonymous.maySubscribe('$SYS/#'), 'reads $SYS');
  t.notOk(anonymous.maySubscribe('$other/#'), 'no other $-topics');
  t.notOk(anonymous.mayPublish('$SYS/x'), 'publishes to no $-topic');

  const failClosed = new TopicAcl([{ allow: false, access: 'all', topic: 'c/%c' }, { allow: true, access: 'all', topic: '#' }], '', 'a/b');
  t.notOk(failClosed.mayPublish('x'), 'a deny rule whose %c cannot be filled in safely denies everything');
});

t.test('anonymous loopback client: reads everything, cannot delete retained device state or discovery configs', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  await tb.broker.publish('clawbox/lamp', '{"state":"ON"}', { retain: true, qos: 1 });
  await tb.broker.publish('homeassistant/switch/lamp/config', '{"name":"Lamp"}', { retain: true, qos: 1 });
  const anon = await connect(tb.url);
  const v5 = await connect(tb.url, { protocolVersion: 5 });
  t.teardown(() => Promise.all([closeClient(anon), closeClient(v5)]));
  await anon.publishAsync('clawbox/lamp', '', { retain: true, qos: 1 });
  const refused = await v5.publishAsync('homeassistant/switch/lamp/config', '', { retain: true, qos: 1 }).then(
    () => null,
    (e: unknown) => e as { code?: number },
  );
  t.equal(refused?.code, 0x87, 'MQTT 5: PUBACK 0x87');
  await anon.publishAsync('scratch/x', 'keep', { retain: true, qos: 1 });
  await anon.publishAsync('scratch/x', '', { retain: true, qos: 1 });

  const reader = await connect(tb.url);
  t.teardown(() => closeClient(reader));
  const inbox = collect(reader);
  await reader.subscribeAsync(['clawbox/lamp', 'homeassistant/#', 'scratch/#', 'clawbox/bridge/state'], { qos: 1 });
  t.ok(await until(() => inbox.all.some((m) => m.topic === 'clawbox/bridge/state')), 'retained messages replayed');
  t.ok(await until(() => inbox.all.length >= 3));
  t.same(
    inbox.all.map((m) => m.topic).sort(),
    ['clawbox/bridge/state', 'clawbox/lamp', 'homeassistant/switch/lamp/config'],
    'device state and discovery config still retained; the scratch message was cleared',
  );
});

t.test('user deny rules through the broker: a granted subscription holds back denied topics', async (t) => {
  const tb = await startTestBroker({
    config: {
      broker: {
        anonymous: 'never',
        users: [
          { username: 'pub', password_hash: hash, publish: ['#'], subscribe: [] },
          {
            username: 'viewer',
            password_hash: hash,
            acl: [
              { allow: false, access: 'subscribe', topic: 'house/private/#' },
              { allow: true, access: 'subscribe', topic: 'house/#' },
            ],
          },
        ],
      },
    },
  });
  t.teardown(() => tb.close());
  const pub = await connect(tb.url, { username: 'pub', password: 'secret' });
  const viewer = await connect(tb.url, { username: 'viewer', password: 'secret' });
  t.teardown(() => Promise.all([closeClient(pub), closeClient(viewer)]));
  const inbox = collect(viewer);
  await viewer.subscribeAsync('house/#', { qos: 1 });
  await pub.publishAsync('house/private/diary', 'no', { qos: 1 });
  await pub.publishAsync('house/kitchen', 'yes', { qos: 1 });
  const [first] = await inbox.next(1);
  t.equal(first?.topic, 'house/kitchen', 'the denied message (published first) was not delivered');
  const denied = await viewer.subscribeAsync('house/private/#', { qos: 1 }).then(
    (granted) => granted[0]?.qos,
    (e: unknown) => (e as { packet?: { granted?: number[] } }).packet?.granted?.[0],
  );
  t.equal(denied, 128, 'a subscription inside the deny rule is refused (0x80)');
});
