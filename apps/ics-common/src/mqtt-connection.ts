import { connect, type IClientOptions, type ISubscriptionMap, type MqttClient } from 'mqtt';
import { log } from '@uigniter-demo/common/log';

export interface MqttConnectOptions {
  /** host:port of the broker. */
  broker: string;
  /**
   * A fixed id, or a function asked again before every reconnect: an instance
   * of a scaled service (or a clone restored from a snapshot that was already
   * connected) must not reuse an id another instance holds, or the broker hands
   * the session back and forth between them.
   */
  clientId: string | (() => string);
  /**
   * false: a persistent session. The broker keeps our subscriptions and
   * queues QoS 1 messages while we are away (and, with its file-backed
   * persistence, across its own restarts).
   */
  clean: boolean;
  /** Label for log lines (default the client id). */
  label?: string;
  will?: IClientOptions['will'];
  /** No connection log lines (for clients inside test processes). */
  quiet?: boolean;
}

/**
 * Connects with settings suited to a control loop: reconnect every 300 ms,
 * keepalive 5 s. mqtt.js keeps unacknowledged QoS 1 publishes (and queues
 * new ones while offline) and sends them again after reconnecting, so a
 * broker restart loses no QoS 1 message we published. One log line per
 * connect and per loss of connection, not one per failed retry.
 */
export function connectMqtt(options: MqttConnectOptions): MqttClient {
  const id = options.clientId;
  const idOf = typeof id === 'function' ? id : (): string => id;
  const label = options.label ?? idOf();
  const say = options.quiet ? (): void => undefined : log;
  const clientOptions: IClientOptions = {
    clientId: idOf(),
    clean: options.clean,
    reconnectPeriod: 300,
    connectTimeout: 5000,
    keepalive: 5,
    protocolVersion: 4,
    queueQoSZero: false,
  };
  if (options.will) clientOptions.will = options.will;
  const client = connect(`mqtt://${options.broker}`, clientOptions);
  // mqtt.js emits 'reconnect' before it builds the CONNECT packet from its options.
  if (typeof id === 'function') client.on('reconnect', () => (client.options.clientId = idOf()));
  let connected = false;
  let lastError = '';
  client.on('connect', (connack) => {
    connected = true;
    lastError = '';
    say(`${label}: connected to broker ${options.broker} (session present: ${connack.sessionPresent})`);
  });
  client.on('close', () => {
    if (connected) say(`${label}: lost connection to broker ${options.broker}`);
    connected = false;
  });
  client.on('error', (err) => {
    if (err.message !== lastError) say(`${label}: mqtt error: ${err.message}`);
    lastError = err.message;
  });
  return client;
}

/** Resolves on the first successful connection (rejects after `timeoutMs`). */
export function whenConnected(client: MqttClient, timeoutMs = 30_000): Promise<void> {
  if (client.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no broker connection after ${timeoutMs} ms`)), timeoutMs);
    client.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export function publishJson(client: MqttClient, topic: string, message: unknown, qos: 0 | 1, retain = false): Promise<void> {
  return new Promise((resolve, reject) => {
    client.publish(topic, JSON.stringify(message), { qos, retain }, (err) => (err ? reject(err) : resolve()));
  });
}

/**
 * Subscribes on every connect that did not resume a session: with a
 * persistent session (clean: false) the broker still holds our
 * subscriptions, so only a new session needs them. `onSubscribed` runs once
 * the broker has granted them (or found them in the resumed session).
 */
export function subscribeOnConnect(client: MqttClient, subscriptions: ISubscriptionMap, onSubscribed?: () => void): void {
  client.on('connect', (connack) => {
    if (connack.sessionPresent) return onSubscribed?.();
    client.subscribe(subscriptions, (err) => {
      if (err) log(`subscribe failed: ${err.message}`);
      else onSubscribed?.();
    });
  });
}

/** Ends the connection; with `force` unacknowledged messages are dropped. */
export function endMqtt(client: MqttClient, force = false): Promise<void> {
  return new Promise((resolve) => client.end(force, {}, () => resolve()));
}

/** Counts rejected messages and logs the reason of each (the one place every subscriber reports them). */
export class RejectionLog {
  count = 0;
  readonly recent: Array<{ topic: string; reason: string; at: number }> = [];

  constructor(private readonly label: string) {}

  reject(topic: string, reason: string): void {
    this.count++;
    this.recent.push({ topic, reason, at: Date.now() });
    if (this.recent.length > 50) this.recent.shift();
    log(`${this.label}: rejected message on ${topic}: ${reason}`);
  }
}
