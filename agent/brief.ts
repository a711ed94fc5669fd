/**
 * The short rung's budgets, apart from agent.ts so the composition root can hand them to the scheduler
 * without loading the agent itself (app/agent-wiring.ts loads it on first use).
 */

/** Longest free-text reply on the short rung, in characters. */
export const BRIEF_REPLY_CHARS = 40;
/**
 * Output budget of a brief answer with jump-forward decoding (only the id and the reply are sampled):
 * a reply of BRIEF_REPLY_CHARS is ~10-20 tokens; a budget cut inside the reply still answers (salvaged).
 */
export const BRIEF_OUTPUT_TOKENS = 24;
