/** The scheduler's public surface (see README.md in this folder). */
export { type Clock, FakeClock, type TimerHandle, type Timers, systemClock } from './clock.js';
export {
  DEFAULT_CLASSES,
  DEFAULT_SOURCES,
  type ResolvedSchedulerConfig,
  SCHEDULER_DEFAULTS,
  type SchedulerConfig,
  resolveSchedulerConfig,
  schedulerConfigSchema,
} from './config-schema.js';
export { SchedulerMetrics } from './metrics.js';
export {
  type AgentLaneOptions,
  type AgentPlanOptions,
  type LaneEngine,
  ModelLane,
  type ModelLaneOptions,
  type ScheduledAgentResponse,
  agentFastPath,
  agentHandler,
  agentLane,
  agentPlanner,
} from './model-lane.js';
export { AdaptiveQueue } from './queue.js';
export {
  type Decision,
  type FastPathMatcher,
  type FastRunner,
  type Grant,
  type Lane,
  type LaneJob,
  type LaneName,
  type LaneReporter,
  type Outcome,
  type Route,
  Scheduler,
  type SchedulerOptions,
  type Submission,
} from './scheduler.js';
export {
  type Budget,
  EwmaServiceModel,
  type ServiceSample,
  type ServiceTimeModel,
  type WorkPlan,
  evaluatedTokens,
} from './service-model.js';
export { SchedulerService, type SchedulerServiceDeps } from './service.js';
export type { Path, Rung, SchedulerEvent, ShedReason } from './stats.js';
