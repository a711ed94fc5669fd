/**
 * The hybrid deployment feature's public surface: the brain service (role brain), the link an edge
 * offloads through (gRPC over mutual TLS 1.3, or an OpenAI-compatible endpoint), the data policy that
 * decides what may leave the box, and the engine view the agent's remote rung runs on.
 */
export type { BrainBackend, BrainEngine, BrainHealth, BrainReply, BrainRequest, BrainUsage } from './backend.js';
export { modelBackend } from './backend.js';
export { CircuitBreaker, type BreakerState } from './breaker.js';
export { type BrainLink, type GenerateOptions, GrpcBrainLink, type LinkStatus, probeTls } from './client.js';
export { type BrainConfig, BRAIN_DEFAULTS, brainConfigOf, brainConfigSchema } from './config-schema.js';
export { CERT_FILE_NAMES, type CertFiles, createLinkCertificates } from './certs.js';
export { OpenAiBrainLink } from './openai-client.js';
export { DATA_CLASSES, type DataClass, DataPolicy, type PolicyDevice, loadPseudonymKey } from './policy.js';
export { type RemoteEngine, remoteEngine } from './remote-engine.js';
export { BrainServer, type BrainServerStatus } from './server.js';
export { BrainLinkService, BrainService, tlsFilesFor } from './service.js';
export { checkFips, fipsEnabled } from './fips.js';
export { LINK_CIPHER, LINK_PROTOCOL, type TlsFiles } from './tls.js';
