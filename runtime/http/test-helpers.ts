/** Small helpers for the HTTP tests: raw node:http requests (any Host/Origin header) and a strict Prometheus text check. */
import { type IncomingMessage, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function request(
  port: number,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer; chunks?: Buffer[]; tls?: boolean } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const target = { host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers, agent: false };
    // tls: the box's self-signed certificate; these tests check answers, not the chain.
    const send = (onResponse: (res: IncomingMessage) => void) =>
      options.tls ? httpsRequest({ ...target, rejectUnauthorized: false }, onResponse) : httpRequest(target, onResponse);
    const req = send(
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    if (options.chunks) {
      for (const chunk of options.chunks) req.write(chunk);
      req.end();
    } else {
      req.end(options.body);
    }
  });
}

export const json = (answer: Answer): unknown => JSON.parse(answer.body);

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABELS = `\\{(?:${NAME.replace(':', '')}="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"(?:,${NAME.replace(':', '')}="(?:[^"\\\\\\n]|\\\\[\\\\"n])*")*,?)?\\}`;
// Prometheus parses values with Go's ParseFloat: Inf and NaN in any case (prom-client writes "Nan").
const VALUE = '(?:[+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?|[+-]?[Ii][Nn][Ff]|[Nn][Aa][Nn])';
const SAMPLE = new RegExp(`^(${NAME})(${LABELS})? (${VALUE})(?: -?\\d+)?$`);
const HELP = new RegExp(`^# HELP (${NAME}) .*$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);

export interface PromFamily {
  type: string;
  samples: { name: string; labels: string; value: number }[];
}

/**
 * Parses Prometheus text exposition format 0.0.4 strictly: every line is a HELP, TYPE, comment or sample
 * that matches the grammar; every sample belongs to a family whose TYPE came first; a family is declared
 * once; histogram buckets are cumulative and end with +Inf equal to _count. Throws on the first problem.
 */
export function parsePrometheus(text: string): Map<string, PromFamily> {
  const families = new Map<string, PromFamily>();
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  const lines = text.split('\n').slice(0, -1);
  lines.forEach((line, i) => {
    const where = `line ${i + 1}: ${line}`;
    if (line === '') return;
    if (line.startsWith('# HELP ')) {
      if (!HELP.test(line)) throw new Error(`bad HELP ${where}`);
      return;
    }
    if (line.startsWith('# TYPE ')) {
      const m = TYPE.exec(line);
      if (!m) throw new Error(`bad TYPE ${where}`);
      if (families.has(m[1]!)) throw new Error(`family declared twice ${where}`);
      families.set(m[1]!, { type: m[2]!, samples: [] });
      return;
    }
    if (line.startsWith('#')) return;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`bad sample ${where}`);
    const name = m[1]!;
    const family =
      families.get(name) ??
      families.get(name.replace(/_(bucket|sum|count|total|created)$/, '')) ??
      families.get(name.replace(/_(sum|count)$/, ''));
    if (!family) throw new Error(`sample without a TYPE ${where}`);
    const raw = m[3]!.toLowerCase();
    const value = raw.endsWith('inf') ? (raw.startsWith('-') ? -Infinity : Infinity) : raw === 'nan' ? Number.NaN : Number(raw);
    family.samples.push({ name, labels: m[2] ?? '', value });
  });
  for (const [name, family] of families) {
    if (family.type !== 'histogram') continue;
    const series = new Map<string, { buckets: [number, number][]; count?: number }>();
    for (const s of family.samples) {
      const le = /le="([^"]*)"/.exec(s.labels)?.[1];
      const key = s.labels.replace(/,?le="[^"]*"/, '').replace('{,', '{');
      const entry = series.get(key) ?? { buckets: [] };
      series.set(key, entry);
      if (s.name === `${name}_bucket` && le !== undefined) entry.buckets.push([le === '+Inf' ? Infinity : Number(le), s.value]);
      if (s.name === `${name}_count`) entry.count = s.value;
    }
    for (const [key, { buckets, count }] of series) {
      if (buckets.length === 0) continue;
      for (let i = 1; i < buckets.length; i++) {
        if (buckets[i]![0] <= buckets[i - 1]![0] || buckets[i]![1] < buckets[i - 1]![1]) throw new Error(`histogram ${name}${key} buckets not cumulative`);
      }
      const last = buckets.at(-1)!;
      if (last[0] !== Infinity) throw new Error(`histogram ${name}${key} has no +Inf bucket`);
      if (count !== undefined && last[1] !== count) throw new Error(`histogram ${name}${key}: +Inf bucket ${last[1]} != count ${count}`);
    }
  }
  return families;
}
