import type { MqttClient } from 'mqtt';
import { describeError, log } from '@uigniter-demo/common/log';
import { commandAddress, decodeReadings, encodeCommand } from '@uigniter-demo/ics-common/modbus-map';
import { parseCommand, parseHeartbeat, type Reading } from '@uigniter-demo/ics-common/messages';
import { publishJson, RejectionLog } from '@uigniter-demo/ics-common/mqtt-connection';
import { actuatorOfCommandTopic, TOPICS } from '@uigniter-demo/ics-common/topics';
import { AlarmDetector } from './alarm-detector.js';
import type { ModbusLink } from './modbus-link.js';

/**
 * Moves data between the plant (Modbus) and the broker (MQTT): readings out
 * once per new plant sample, commands in. A controller command whose epoch
 * is older than the newest active controller's is refused (fencing), so an
 * old active that has not yet noticed it was replaced cannot move the plant.
 */
export class Gateway {
  readonly rejections = new RejectionLog('gateway');
  readonly detector = new AlarmDetector();
  lastSeq = -1;
  readingsPublished = 0;
  commandsWritten = 0;
  alarmsRaised = 0;
  maxEpoch = 0;
  private polling = false;

  constructor(
    private readonly modbus: ModbusLink,
    private readonly mqtt: MqttClient,
  ) {}

  /** One poll: read the plant's registers and publish a reading if the sample is new. */
  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const regs = await this.modbus.readReadings();
      const sample = decodeReadings(regs);
      if (sample.seq === this.lastSeq) return;
      this.lastSeq = sample.seq;
      const reading: Reading = { ...sample, publishedAt: Date.now() };
      // QoS 0, retained: only the newest reading matters to a controller.
      if (this.mqtt.connected) {
        this.mqtt.publish(TOPICS.readings, JSON.stringify(reading), { qos: 0, retain: true });
        this.readingsPublished++;
      }
      for (const alarm of this.detector.check(reading)) {
        this.alarmsRaised++;
        log(`alarm raised: ${alarm.kind} ${alarm.tag} = ${alarm.value} (id ${alarm.id})`);
        // QoS 1: mqtt.js keeps it (also while offline) until the broker acknowledges it.
        publishJson(this.mqtt, TOPICS.alarmsRaised, alarm, 1).catch((err: unknown) => log(`alarm ${alarm.id} not published: ${describeError(err)}`));
      }
    } catch {
      // ModbusLink logged it; the next poll reconnects.
    } finally {
      this.polling = false;
    }
  }

  /** Handles one MQTT message; resolves once it has been acted on (the PUBACK waits for it). */
  async onMessage(topic: string, payload: Buffer): Promise<void> {
    if (topic === TOPICS.active) {
      if (payload.length === 0) return;
      const active = parseHeartbeat(payload);
      if (!active.ok) return this.rejections.reject(topic, active.reason);
      if (active.value.epoch > this.maxEpoch) {
        this.maxEpoch = active.value.epoch;
        log(`active controller: ${active.value.id} (epoch ${active.value.epoch})`);
      }
      return;
    }
    const actuator = actuatorOfCommandTopic(topic);
    if (actuator === undefined) return this.rejections.reject(topic, 'not a command topic this gateway knows');
    const parsed = parseCommand(payload);
    if (!parsed.ok) return this.rejections.reject(topic, parsed.reason);
    const command = parsed.value;
    if (command.source === 'controller') {
      if (command.epoch < this.maxEpoch) {
        return this.rejections.reject(topic, `stale epoch ${command.epoch} from ${command.by} (active epoch is ${this.maxEpoch})`);
      }
      this.maxEpoch = command.epoch;
    }
    try {
      await this.modbus.writeBlock(commandAddress(actuator), encodeCommand(command));
      this.commandsWritten++;
    } catch (err) {
      log(`command ${actuator} = ${command.value} (reading ${command.seq}) not written: ${describeError(err)}`);
    }
  }
}
