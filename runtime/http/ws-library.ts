/**
 * The `ws` package (WebSocket servers for MQTT over WebSocket and the status page's chat), loaded on the
 * first WebSocket upgrade: most boxes never get one, and an idle runtime need not hold the library.
 * require() so that the first upgrade is served in the same tick; ws's `node` export is CommonJS either way.
 */
import { createRequire } from 'node:module';

type WsLibrary = typeof import('ws');
let loaded: WsLibrary | undefined;

export function wsLibrary(): WsLibrary {
  loaded ??= createRequire(import.meta.url)('ws') as WsLibrary;
  return loaded;
}
