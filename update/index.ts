/** The A/B system update: signed bundles, the inactive slot, boot counting and the boot health check. */
export { applyUpdate, type ApplyResult, preflight } from './apply.js';
export { BUNDLE_FORMAT, checkPayloads, loadTrustedKeys, type Manifest, MANIFEST_SCHEMA, openBundle, PAYLOAD_FILES } from './bundle.js';
export { runUpdateCommand } from './cli.js';
export { formatStatus, recordBootVerdict, type UpdateStatus, updateStatus } from './status.js';
export { type Slot, type SystemLayout, systemLayout } from './system.js';
export { UpdateComponent, type UpdateComponentDeps } from './component.js';
export { registerUpdateRoutes } from './http-routes.js';
export { createUpdateHelper, type UpdateHelperOptions } from './helper.js';
