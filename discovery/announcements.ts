/**
 * Which DNS-SD services the box announces, as plain data (the seam the tests check without a network):
 *   _https._tcp or _http._tcp  the web app (path=/)
 *   _mqtt._tcp                 the broker's plain TCP listener (when it listens beyond loopback)
 *   _secure-mqtt._tcp          the broker's TLS listener (when enabled)
 *   _clawbox._tcp              this box: TXT version, name, and the web app's scheme and port
 */
export interface Announcement {
  name: string;
  type: string;
  port: number;
  txt: Record<string, string>;
}

export interface BoxFacts {
  name: string;
  version: string;
  http: { port: number; tls: boolean; reachable: boolean };
  mqtt: { port: number; reachable: boolean } | null;
  mqtts: { port: number } | null;
}

export function announcementsFor(box: BoxFacts): Announcement[] {
  const out: Announcement[] = [];
  const web = box.http.tls ? 'https' : 'http';
  if (box.http.reachable) out.push({ name: box.name, type: web, port: box.http.port, txt: { path: '/' } });
  if (box.mqtt?.reachable) out.push({ name: box.name, type: 'mqtt', port: box.mqtt.port, txt: {} });
  if (box.mqtts) out.push({ name: box.name, type: 'secure-mqtt', port: box.mqtts.port, txt: {} });
  out.push({ name: box.name, type: 'clawbox', port: box.http.port, txt: { version: box.version, name: box.name, scheme: web, path: '/' } });
  return out;
}
