/**
 * The whole config: the core sections plus each feature folder's, validated by one JSON Schema, and the
 * loader every command uses. The only place that knows every section.
 */
import { schedulerConfigSchema } from '../agent/scheduler/config-schema.js';
import { brainConfigSchema } from '../brain/config-schema.js';
import { channelsConfigSchema } from '../channels/config-schema.js';
import { clusterConfigSchema, clusterCrossCheck } from '../cluster/config-schema.js';
import { devicesConfigSchema, devicesCrossCheck } from '../devices/config-schema.js';
import { discoveryConfigSchema } from '../discovery/index.js';
import { knowledgeConfigSchema } from '../knowledge/index.js';
import { modelsConfigSchema } from '../models/config-schema.js';
import { pluginsConfigSchema } from '../plugins/config-schema.js';
import { createConfigLoader } from '../runtime/config/load.js';
import { composeConfigSchema } from '../runtime/config/schema.js';

export const configSchema = composeConfigSchema({
  devices: devicesConfigSchema,
  models: modelsConfigSchema,
  plugins: pluginsConfigSchema,
  scheduler: schedulerConfigSchema,
  channels: channelsConfigSchema,
  brain: brainConfigSchema,
  cluster: clusterConfigSchema,
  discovery: discoveryConfigSchema,
  knowledge: knowledgeConfigSchema,
});

export const { checkConfig, loadConfig } = createConfigLoader(configSchema, [devicesCrossCheck, clusterCrossCheck]);
export type { LoadConfigOptions, LoadedConfig } from '../runtime/config/load.js';
