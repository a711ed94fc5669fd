/**
 * The update feature inside the runtime: the `system.update.*` and `system.reboot` operations with their
 * MQTT bridge requests, the `update` section of the status document (the running job, so the web app shows
 * progress live), and the job's `update.job` event on the bus and, for MQTT clients, on
 * `<base>/bridge/event/update` (not retained: progress, not state; the state is system.update.status).
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Component, RuntimeContext } from '../runtime/context.js';
import type { Messaging } from '../runtime/messaging.js';
import type { FrontDoor } from '../runtime/operations/front-door.js';
import type { MqttAdapter } from '../runtime/operations/mqtt-adapter.js';
import { HELPER_SOCKET } from './helper-client.js';
import { UPDATE_BRIDGE_REQUESTS, updateOperations } from './operations.js';
import { type UpdateJobView, UpdateService } from './service.js';

declare module '../runtime/events.js' {
  interface RuntimeEvents {
    /** An update check or install moved on (phase change or another percent). */
    'update.job': [UpdateJobView];
  }
}

export interface UpdateComponentDeps {
  readonly api: { frontDoor: FrontDoor; mqtt: Pick<MqttAdapter, 'bridge'> };
  /** Where the job's progress is published for MQTT clients (the broker); none in tests that do not look. */
  readonly messaging?: Pick<Messaging, 'baseTopic' | 'publish'>;
  /** The update helper's socket; default the OS image's (HELPER_SOCKET). */
  readonly socketPath?: string | undefined;
}

export class UpdateComponent implements Component {
  readonly name = 'update';
  readonly #deps: UpdateComponentDeps;
  #service: UpdateService | null = null;
  #unregister: Array<() => void> = [];

  constructor(deps: UpdateComponentDeps) {
    this.#deps = deps;
  }

  get service(): UpdateService | null {
    return this.#service;
  }

  async start(ctx: RuntimeContext): Promise<void> {
    const service = new UpdateService({
      socketPath: this.#deps.socketPath ?? HELPER_SOCKET,
      // The helper (run as root) installs only from here: on the box /var/lib/clawbox/update.
      downloadDir: path.join(ctx.stateDir, 'update'),
      logger: ctx.logger('update'),
      onJob: (job) => {
        ctx.bus.emit('update.job', job);
        const { messaging } = this.#deps;
        void messaging?.publish(`${messaging.baseTopic}/bridge/event/update`, JSON.stringify(job), { qos: 0 }).catch(() => {});
      },
    });
    this.#service = service;
    // No job outlives the runtime: a bundle left by one that was killed mid-download only takes space.
    await rm(service.bundleFile, { force: true }).catch(() => {});
    const { frontDoor, mqtt } = this.#deps.api;
    this.#unregister = [
      ctx.status.register('update', () => service.view()),
      ...updateOperations(service).map((operation) => frontDoor.register(operation)),
      ...UPDATE_BRIDGE_REQUESTS.map(([topic, operation]) => mqtt.bridge(topic, operation)),
    ];
  }

  async stop(): Promise<void> {
    for (const off of this.#unregister) off();
    this.#unregister = [];
    await this.#service?.stop();
  }
}
