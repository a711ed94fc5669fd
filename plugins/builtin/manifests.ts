/**
 * Type-only imports of the built-in manifests: nothing is loaded at run time, but tsc then copies each
 * clawbox.plugin.json into dist/ beside the compiled plugin, where discovery finds it.
 */
import type ComputeManifest from './compute/clawbox.plugin.json';
import type ContentSafetyManifest from './content-safety/clawbox.plugin.json';
import type DbQueryManifest from './db-query/clawbox.plugin.json';
import type IotControlManifest from './iot-control/clawbox.plugin.json';
import type ImessageManifest from './imessage/clawbox.plugin.json';
import type TelegramManifest from './telegram/clawbox.plugin.json';
import type WhatsappManifest from './whatsapp/clawbox.plugin.json';

export type BuiltinManifests = [
  typeof ComputeManifest,
  typeof ContentSafetyManifest,
  typeof DbQueryManifest,
  typeof IotControlManifest,
  typeof ImessageManifest,
  typeof TelegramManifest,
  typeof WhatsappManifest,
];
