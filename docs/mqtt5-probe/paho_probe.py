# Python paho-mqtt 1.6.1 MQTTv5 client against the probe broker. Prints one line per check, ALL_OK at the end.
import sys, time, threading
import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.subscribeoptions import SubscribeOptions

port = int(sys.argv[1])
ok = True
ev = {}

def client(cid, **kw):
    c = mqtt.Client(client_id=cid, protocol=mqtt.MQTTv5)
    c.connack = threading.Event()
    def on_connect(cl, ud, flags, rc, props=None):
        cl.rc, cl.cprops = rc, props
        cl.connack.set()
    c.on_connect = on_connect
    c.msgs = []
    c.on_message = lambda cl, ud, m: cl.msgs.append(m)
    c.subacks = []
    c.on_subscribe = lambda cl, ud, mid, rcs, props: cl.subacks.append([str(r) for r in rcs])
    return c

a = client('paho-a')
p = Properties(PacketTypes.CONNECT); p.SessionExpiryInterval = 30; p.ReceiveMaximum = 20
a.connect('127.0.0.1', port, clean_start=True, properties=p)
a.loop_start(); a.connack.wait(3)
print('connect: rc=%s connack props=%s' % (a.rc, a.cprops))
a.subscribe([('paho/#', SubscribeOptions(qos=1, noLocal=True, retainAsPublished=True, retainHandling=0)), ('$share/g/paho/x', SubscribeOptions(qos=1))])
time.sleep(0.3)
print('suback reason codes: %s' % a.subacks)
a.publish('paho/own', 'own', qos=1)
b = client('paho-b'); b.connect('127.0.0.1', port); b.loop_start(); b.connack.wait(3)
pp = Properties(PacketTypes.PUBLISH)
pp.UserProperty = [('room', 'hall'), ('room', 'attic')]; pp.ContentType = 'text/plain'; pp.ResponseTopic = 'paho/reply'; pp.CorrelationData = b'id-1'; pp.PayloadFormatIndicator = 1; pp.MessageExpiryInterval = 30
b.publish('paho/t', 'hi', qos=1, properties=pp).wait_for_publish(2)
time.sleep(0.5)
got = [(m.topic, m.payload.decode(), m.properties.json() if hasattr(m.properties, 'json') else str(m.properties)) for m in a.msgs]
print('received (noLocal: paho/own must be absent): %s' % got)
if any(t == 'paho/own' for t, _, _ in got) or not any(t == 'paho/t' for t, _, _ in got): ok = False
c = client('paho-bad'); c.username_pw_set('baduser', 'x'); c.connect('127.0.0.1', port); c.loop_start(); c.connack.wait(3)
print('bad password: rc=%s (value %s)' % (c.rc, getattr(c.rc, 'value', c.rc)))
if getattr(c.rc, 'value', None) != 134: ok = False
c3 = mqtt.Client(client_id='paho-311', protocol=mqtt.MQTTv311); e = threading.Event(); res = {}
c3.on_connect = lambda cl, ud, fl, rc: (res.setdefault('rc', rc), e.set())
c3.connect('127.0.0.1', port); c3.loop_start(); e.wait(3)
print('MQTTv311 on same listener: rc=%s' % res.get('rc'))
for x in (a, b, c, c3): x.loop_stop(); x.disconnect()
print('ALL_OK' if ok else 'SOME_FAILED')
