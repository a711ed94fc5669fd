/**
 * OutboundFlow on its own (the broker-level behaviour is in mqtt5-features.test.ts): the window, the
 * order, the bounded queue and what a closed connection hands back.
 */
import t from 'tap';
import { OutboundFlow, RECEIVE_MAXIMUM_UNLIMITED } from './outbound-flow.js';
import type { WrittenPacket } from './write-hook.js';

const publish = (messageId: number): WrittenPacket => ({ cmd: 'publish', qos: 1, messageId, topic: 't' });

t.test('a window of 2, a queue of 3: in order, the fourth waiting one is dropped and reported', async (t) => {
  const written: number[] = [];
  const dropped: number[] = [];
  const flow = new OutboundFlow<string>({ receiveMaximum: 2, queueLimit: 3, onDropped: (p) => dropped.push(p.messageId!) });
  const write = (p: WrittenPacket): boolean => {
    written.push(p.messageId!);
    return true;
  };
  for (let id = 1; id <= 6; id++) t.equal(flow.send(publish(id), id % 2 ? `tag${id}` : undefined, write), true);
  t.same(written, [1, 2], 'two in flight');
  t.same(dropped, [6], 'the queue holds three; the next is dropped');
  t.equal(flow.queued, 3);
  flow.acknowledged(99);
  t.same(written, [1, 2], 'an unknown id frees nothing');
  flow.acknowledged(2);
  t.same(written, [1, 2, 3]);
  flow.received(3); // QoS 2 PUBREC: the client has it, the slot stays taken
  flow.acknowledged(1);
  t.same(written, [1, 2, 3, 4]);
  const left = flow.close();
  t.same(
    left.map((e) => [e.packet.messageId, e.tag]),
    [
      [3, undefined],
      [4, undefined],
      [5, 'tag5'],
    ],
    'on close: in flight then queued; a received message loses its tag (not redelivered)',
  );
});

t.test('no window (MQTT 3.1.1, or a client that named none): everything written, only tagged ones tracked', async (t) => {
  const written: number[] = [];
  const flow = new OutboundFlow<string>({ receiveMaximum: RECEIVE_MAXIMUM_UNLIMITED, queueLimit: 1, onDropped: () => t.fail('nothing dropped') });
  for (let id = 1; id <= 5; id++) flow.send(publish(id), id === 3 ? 'shared' : undefined, (p) => written.push(p.messageId!) > 0);
  t.same(written, [1, 2, 3, 4, 5]);
  t.equal(flow.inFlight, 1, 'only the tagged one is remembered');
  t.same(flow.close().map((e) => e.tag), ['shared']);
});
