import { performance } from 'node:perf_hooks';
import { log } from '@uigniter-demo/common/log';
import type { Heartbeat } from '@uigniter-demo/ics-common/messages';

export interface RoleEvents {
  publishHeartbeat(heartbeat: Heartbeat): void;
  announceActive(announcement: Heartbeat): void;
}

/**
 * Active/standby between controller instances over MQTT.
 *
 * - The active publishes a heartbeat (id, epoch) every `heartbeatMs`.
 * - An instance takes over when it has heard no heartbeat from anyone else
 *   for `takeoverMs` (at start: `takeoverMs × priority`, so priority 1 wins
 *   a cold start); it takes epoch = highest epoch seen + 1 and announces it
 *   on the retained control/active topic.
 * - An active that hears a heartbeat or announcement with a higher epoch
 *   (or the same epoch from a smaller id) steps down at once. The gateway
 *   also refuses commands with an epoch below the newest one, so an old
 *   active that comes back (e.g. after a pause) cannot move the plant.
 * - After (re)connecting to the broker, the silence timer restarts: a broker
 *   restart is not mistaken for a dead active.
 */
export class ActiveStandby {
  active = false;
  epoch = 0;
  seenEpoch = 0;
  activeSince = 0;
  private lastHeard: number;
  private heardAnyone = false;
  private timer: NodeJS.Timeout | undefined;
  private connected = false;

  constructor(
    readonly id: string,
    readonly priority: number,
    private readonly heartbeatMs: number,
    private readonly takeoverMs: number,
    private readonly events: RoleEvents,
  ) {
    this.lastHeard = performance.now();
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), Math.max(10, Math.floor(this.heartbeatMs / 2)));
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  onConnected(): void {
    this.connected = true;
    this.lastHeard = performance.now();
  }

  onDisconnected(): void {
    this.connected = false;
  }

  /** A heartbeat or a control/active announcement from any instance. */
  onPeer(message: Heartbeat, kind: 'heartbeat' | 'announcement'): void {
    if (message.id === this.id) return;
    this.seenEpoch = Math.max(this.seenEpoch, message.epoch);
    // A retained announcement may be a dead instance's: only heartbeats prove life.
    if (kind === 'heartbeat') {
      this.lastHeard = performance.now();
      this.heardAnyone = true;
    }
    if (this.active && (message.epoch > this.epoch || (message.epoch === this.epoch && message.id < this.id))) {
      this.active = false;
      log(`stepping down: ${message.id} is active with epoch ${message.epoch} (mine was ${this.epoch})`);
    }
  }

  private tick(): void {
    if (!this.connected) return;
    const now = performance.now();
    if (this.active) {
      this.events.publishHeartbeat({ id: this.id, epoch: this.epoch, at: Date.now() });
      return;
    }
    const wait = this.heardAnyone ? this.takeoverMs : this.takeoverMs * this.priority;
    if (now - this.lastHeard < wait) return;
    this.epoch = this.seenEpoch + 1;
    this.seenEpoch = this.epoch;
    this.active = true;
    this.activeSince = Date.now();
    log(`taking over as active controller with epoch ${this.epoch} (no heartbeat for ${Math.round(now - this.lastHeard)} ms)`);
    const announcement = { id: this.id, epoch: this.epoch, at: Date.now() };
    this.events.announceActive(announcement);
    this.events.publishHeartbeat(announcement);
  }
}
