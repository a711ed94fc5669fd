/**
 * MQTT devices that clawbox does not own, for the mqtt-remote driver's tests: a Tasmota plug/dimmer and a
 * zigbee2mqtt light, each a real mqtt.js client on the broker speaking that firmware's topics. Their
 * "cable" is the TCP connection: unplug() destroys the socket, so the broker publishes the Tasmota LWT.
 */
import mqtt, { type MqttClient } from 'mqtt';

export interface FakeDevice {
  state: { state: 'ON' | 'OFF'; brightness: number };
  responsive: boolean;
  plug(): Promise<void>;
  unplug(): Promise<void>;
  /** A button pressed on the device itself. */
  press(): void;
  close(): Promise<void>;
}

export function fakeTasmota(url: string, topic: string): FakeDevice {
  let client: MqttClient | null = null;
  const device: FakeDevice = {
    state: { state: 'OFF', brightness: 100 },
    responsive: true,
    async plug() {
      client = await mqtt.connectAsync(url, {
        reconnectPeriod: 0,
        will: { topic: `tele/${topic}/LWT`, payload: Buffer.from('Offline'), retain: true, qos: 1 },
      });
      const c = client;
      c.on('message', (t, payload) => {
        if (!device.responsive) return;
        const command = t.slice(`cmnd/${topic}/`.length).toUpperCase();
        const value = payload.toString().trim().toUpperCase();
        if (command === 'POWER' && value !== '') {
          device.state.state = value === 'TOGGLE' ? (device.state.state === 'ON' ? 'OFF' : 'ON') : (value as 'ON' | 'OFF');
          void c.publishAsync(`stat/${topic}/RESULT`, JSON.stringify({ POWER: device.state.state }));
          void c.publishAsync(`stat/${topic}/POWER`, device.state.state);
        } else if (command === 'DIMMER' && value !== '') {
          // Like Tasmota: setting the dimmer switches the light on.
          device.state.brightness = Number(value);
          device.state.state = 'ON';
          void c.publishAsync(`stat/${topic}/RESULT`, JSON.stringify({ POWER: 'ON', Dimmer: device.state.brightness }));
        } else if (command === 'STATE') {
          void c.publishAsync(`stat/${topic}/RESULT`, JSON.stringify({ Time: 'x', POWER: device.state.state, Dimmer: device.state.brightness }));
        }
      });
      await c.subscribeAsync(`cmnd/${topic}/+`);
      await c.publishAsync(`tele/${topic}/LWT`, 'Online', { retain: true, qos: 1 });
    },
    async unplug() {
      client?.stream.destroy();
      client?.end(true);
      client = null;
    },
    press() {
      device.state.state = device.state.state === 'ON' ? 'OFF' : 'ON';
      void client?.publishAsync(`stat/${topic}/POWER`, device.state.state);
    },
    async close() {
      await client?.endAsync(true);
    },
  };
  return device;
}

export function fakeZigbee2mqtt(url: string, name: string, base = 'zigbee2mqtt'): FakeDevice {
  let client: MqttClient | null = null;
  const topic = `${base}/${name}`;
  const publishState = (c: MqttClient, d: FakeDevice) =>
    c.publishAsync(topic, JSON.stringify({ state: d.state.state, brightness: Math.round((d.state.brightness * 254) / 100), linkquality: 90 }));
  const device: FakeDevice = {
    state: { state: 'OFF', brightness: 100 },
    responsive: true,
    async plug() {
      client = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
      const c = client;
      c.on('message', (t, payload) => {
        if (!device.responsive) return;
        const body = JSON.parse(payload.toString()) as Record<string, unknown>;
        if (t.endsWith('/set')) {
          if (body.state === 'ON' || body.state === 'OFF') device.state.state = body.state;
          if (typeof body.brightness === 'number') device.state.brightness = Math.round((body.brightness * 100) / 254);
        }
        void publishState(c, device);
      });
      await c.subscribeAsync([`${topic}/set`, `${topic}/get`]);
      await c.publishAsync(`${topic}/availability`, JSON.stringify({ state: 'online' }), { retain: true, qos: 1 });
    },
    async unplug() {
      // zigbee2mqtt itself stays up and reports the device gone.
      await client?.publishAsync(`${topic}/availability`, JSON.stringify({ state: 'offline' }), { retain: true, qos: 1 });
      await client?.endAsync();
      client = null;
    },
    press() {
      device.state.state = device.state.state === 'ON' ? 'OFF' : 'ON';
      if (client) void publishState(client, device);
    },
    async close() {
      await client?.endAsync(true);
    },
  };
  return device;
}
