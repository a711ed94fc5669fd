/** mDNS discovery: the box announces its web app, broker and itself on the local network. */
export { type Announcement, type BoxFacts, announcementsFor } from './announcements.js';
export { type DiscoveryConfig, discoveryConfigSchema } from './config-schema.js';
export { Discovery, type DiscoveryOptions, discoveryEnabled } from './discovery.js';
