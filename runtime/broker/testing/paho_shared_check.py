"""Python paho-mqtt (Debian python3-paho-mqtt) in shared subscriptions on the embedded broker.

Run by runtime/broker/mqtt5-features.test.ts as `/usr/bin/python3 paho_shared_check.py <port>`; prints one JSON
object: what CONNACK said, which messages each member got, and how a shared subscription with No Local ended.
Every wait is for an event (CONNACK, SUBACK, messages, a disconnect), bounded.
"""
import json
import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

port = int(sys.argv[1])
out = {}
TOTAL = 12
lock = threading.Lock()
received = []
all_in = threading.Event()


def member(cid, version=mqtt.MQTTv5):
    c = mqtt.Client(client_id=cid, protocol=version)
    c.connacked = threading.Event()
    c.subacked = threading.Event()
    c.disconnected = threading.Event()
    c.payloads = []

    def on_message(cl, userdata, m):
        with lock:
            cl.payloads.append(int(m.payload))
            received.append(m.payload)
            if len(received) >= TOTAL:
                all_in.set()

    def on_connect(cl, userdata, flags, rc, props=None):
        cl.connack_props = props
        cl.connacked.set()

    def on_disconnect(cl, userdata, rc, props=None):
        cl.disconnect_rc = getattr(rc, "value", rc)
        cl.disconnected.set()

    c.on_connect = on_connect
    c.on_message = on_message
    c.on_disconnect = on_disconnect
    c.on_subscribe = lambda cl, userdata, mid, rcs, props=None: cl.subacked.set()
    return c


a = member("paho-share-a")
b = member("paho-share-b")
old = member("paho-share-311", mqtt.MQTTv311)
old.on_connect = lambda cl, userdata, flags, rc: cl.connacked.set()
for c in (a, b, old):
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.connacked.wait(10)
out["shared_available"] = getattr(a.connack_props, "SharedSubscriptionAvailable", None)
a.subscribe([("$share/py/pyshare/#", SubscribeOptions(qos=1))])
b.subscribe([("$share/py/pyshare/#", SubscribeOptions(qos=1))])
old.subscribe("$share/py/pyshare/#", qos=1)
for c in (a, b, old):
    c.subacked.wait(10)

for i in range(TOTAL):
    a.publish("pyshare/t", str(i), qos=1).wait_for_publish(10)
all_in.wait(20)
out["members"] = [sorted(c.payloads) for c in (a, b, old)]

nl = member("paho-share-nl")
nl.connect("127.0.0.1", port)
nl.loop_start()
nl.connacked.wait(10)
nl.subscribe([("$share/py/pyshare/#", SubscribeOptions(qos=1, noLocal=True))])
nl.disconnected.wait(10)
out["no_local_disconnect_rc"] = getattr(nl, "disconnect_rc", None)

for c in (a, b, old, nl):
    c.loop_stop()
    c.disconnect()
print(json.dumps(out))
