/**
 * What other feature folders may use of models/: the inference engine's request/result types. The
 * composition root (app/) wires the services themselves.
 */
export type { DecodeGuide, GenerateRequest, GenerateResult, JsonGrammar, Timings } from './engine/engine.js';
export type { RateSnapshot } from './engine/rates.js';
