/** People's data rights: the public surface for the composition root and for features that keep personal data. */
export { type DataConfig, DATA_DEFAULTS, dataConfigSchema } from './config-schema.js';
export { auditHolder, type LogLines, logLinesHolder, type MqttSessions, mqttSessionsHolder } from './core-holders.js';
export {
  DATA_CLASSES,
  type DataClass,
  type DataExport,
  type DataHolder,
  DataRights,
  type ErasureReport,
  type InventoryEntry,
  type OutboundProcessor,
  type SweepReport,
} from './data-rights.js';
export { dataOperations, registerDataRoutes } from './operations.js';
export { parseSubject, type Subject, subjectOfPrincipal } from './subject.js';
