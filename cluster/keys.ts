/** Every Redis key and channel the cluster feature uses, in one place (the broker's own are aedes'). */
export const KEYS = {
  replicaIds: 'clawbox:replicas',
  replica: (id: string) => `clawbox:replica:${id}`,
  lease: (device: string) => `clawbox:lease:device:${device}`,
  deviceEvents: 'clawbox:device-events',
  rpc: (replica: string) => `clawbox:rpc:${replica}`,
  agentQueue: 'clawbox:agent-queue',
  agentQueued: 'clawbox:agent-queued',
} as const;
