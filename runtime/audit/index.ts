/** The audit log's public surface: the component, the entry and record types, and the readers. */
export { canonicalJson, digest } from './canonical.js';
export { type AuditConfig, AUDIT_DEFAULTS, auditConfigSchema } from './config-schema.js';
export { auditDir, auditFileName } from './files.js';
export { type AuditLogOptions, type AuditStatus, type AuditVerification, AuditLog, type PrincipalProtector } from './log.js';
export { type AuditQuery, queryAuditDir, tailAuditDir } from './read.js';
export { type AuditAnchor, type AuditDecision, type AuditEntry, type AuditLine, type AuditOutcome, type AuditRecord, GENESIS, type PrincipalKind } from './record.js';
export { type VerifyOptions, type VerifyProblem, type VerifyResult, verifyAuditDir } from './verify.js';
