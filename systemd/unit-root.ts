/**
 * A throwaway root file system in which `systemd-analyze verify --root=` and `security --offline` can load
 * the clawbox units: the unit files, executable placeholders at every ExecStart path, and stub units for
 * the targets and services they order themselves against (the host's own units are never consulted).
 */
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const SYSTEMD_DIR = import.meta.dirname;
export const UNIT_DIR = 'usr/lib/systemd/system';

export function unitFiles(): string[] {
  return readdirSync(SYSTEMD_DIR)
    .filter((name) => /\.(service|target|timer|socket|path|mount)$/.test(name))
    .sort();
}

export interface UnitEntry {
  section: string;
  key: string;
  value: string;
}

/** Parses a unit file into its entries in order (no line continuations are used in ours). */
export function parseUnit(text: string): UnitEntry[] {
  const entries: UnitEntry[] = [];
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    entries.push({ section, key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim() });
  }
  return entries;
}

/** Every value of a key, in order (systemd list settings may be given several times). */
export function valuesOf(entries: UnitEntry[], key: string): string[] {
  return entries.filter((e) => e.key === key).map((e) => e.value);
}

const DEPENDENCY_KEYS = ['After', 'Before', 'Wants', 'Requires', 'Conflicts', 'WantedBy', 'RequiredBy', 'BindsTo', 'PartOf', 'OnFailure'];

/** Builds the root and returns its path; `extraUnits` are written beside ours (e.g. a broken one). */
export function buildUnitRoot(extraUnits: Record<string, string> = {}): string {
  const root = mkdtempSync(path.join(tmpdir(), 'clawbox-unit-root-'));
  const unitDir = path.join(root, UNIT_DIR);
  mkdirSync(unitDir, { recursive: true });
  const ours = new Set([...unitFiles(), ...Object.keys(extraUnits)]);
  // What DefaultDependencies=yes adds to every service.
  const referenced = new Set<string>(['sysinit.target', 'basic.target', 'shutdown.target']);
  const executables = new Set<string>();
  const texts: [string, string][] = [
    ...unitFiles().map((name): [string, string] => [name, readFileSync(path.join(SYSTEMD_DIR, name), 'utf8')]),
    ...Object.entries(extraUnits),
  ];
  for (const [name, text] of texts) {
    if (name in extraUnits) writeFileSync(path.join(unitDir, name), text);
    else copyFileSync(path.join(SYSTEMD_DIR, name), path.join(unitDir, name));
    for (const { key, value } of parseUnit(text)) {
      if (DEPENDENCY_KEYS.includes(key)) for (const unit of value.split(/\s+/)) if (unit) referenced.add(unit);
      if (/^Exec(Start|StartPre|StartPost|Stop|StopPost|Reload|Condition)$/.test(key)) {
        // Strip the special prefixes (-, @, +, !, :) in front of the executable path.
        const executable = value.replace(/^[-@+!:]+/, '').split(/\s+/)[0];
        if (executable?.startsWith('/')) executables.add(executable);
      }
    }
  }
  for (const unit of referenced) {
    if (ours.has(unit)) continue;
    const stub = unit.endsWith('.service')
      ? '[Unit]\nDescription=stub\n[Service]\nType=oneshot\nExecStart=/usr/bin/true\n'
      : '[Unit]\nDescription=stub\n';
    writeFileSync(path.join(unitDir, unit), stub);
    executables.add('/usr/bin/true');
  }
  for (const executable of executables) {
    const file = path.join(root, executable);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, '#!/bin/sh\nexit 0\n');
    chmodSync(file, 0o755);
  }
  return root;
}
