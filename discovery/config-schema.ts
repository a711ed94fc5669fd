/** The `discovery:` section: mDNS / DNS-SD announcements of the box on the local network. */
import type { SectionSchema } from '../runtime/config/schema.js';

export interface DiscoveryConfig {
  enabled: 'auto' | boolean;
  /** The instance name announced; default: the box's name (first-run setup) or its host name. */
  name?: string;
}

declare module '../runtime/config/schema.js' {
  interface ConfigSections {
    discovery: DiscoveryConfig;
  }
}

export const discoveryConfigSchema: SectionSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  description: 'mDNS (Bonjour/Avahi) announcements: _https._tcp or _http._tcp, _mqtt._tcp, _secure-mqtt._tcp and _clawbox._tcp.',
  properties: {
    enabled: {
      enum: ['auto', true, false],
      default: 'auto',
      description: 'auto: on in appliance mode when http.host is not loopback (nobody else could reach a loopback service).',
    },
    name: { type: 'string', minLength: 1, maxLength: 63, description: 'Instance name shown in browsers of the network.' },
  },
};
