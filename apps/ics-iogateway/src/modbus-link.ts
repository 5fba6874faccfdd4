import { describeError, log } from '@uigniter-demo/common/log';
import { ModbusClientClass, type ModbusClient } from '@uigniter-demo/ics-common/modbus-library';
import { READINGS_LENGTH, READINGS_START, UNIT_ID } from '@uigniter-demo/ics-common/modbus-map';

/**
 * One Modbus TCP connection to the plant. Requests go one at a time (a
 * promise chain), and a failed request drops the connection so the next
 * one reconnects; connection changes are logged once each.
 */
export class ModbusLink {
  private client: ModbusClient | undefined;
  private connecting: Promise<ModbusClient> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private lastFailure = '';
  connected = false;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly timeoutMs = 1000,
  ) {}

  readReadings(): Promise<number[]> {
    return this.enqueue(async (client) => (await client.readHoldingRegisters(READINGS_START, READINGS_LENGTH)).data);
  }

  writeBlock(address: number, values: number[]): Promise<void> {
    return this.enqueue(async (client) => {
      await client.writeRegisters(address, values);
    });
  }

  close(): void {
    this.client?.close(() => undefined);
    this.client = undefined;
  }

  private enqueue<T>(request: (client: ModbusClient) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      const client = await this.connect();
      try {
        return await request(client);
      } catch (err) {
        // A Modbus exception (the plant refused the request) keeps the connection.
        if (!(typeof err === 'object' && err !== null && 'modbusCode' in err)) this.drop(err);
        throw err;
      }
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private connect(): Promise<ModbusClient> {
    if (this.client?.isOpen) return Promise.resolve(this.client);
    this.connecting ??= (async () => {
      const client = new ModbusClientClass();
      client.setTimeout(this.timeoutMs);
      try {
        await client.connectTCP(this.host, { port: this.port });
      } catch (err) {
        this.drop(err);
        throw err;
      }
      client.setID(UNIT_ID);
      this.client = client;
      this.connected = true;
      this.lastFailure = '';
      log(`connected to plant Modbus at ${this.host}:${this.port}`);
      return client;
    })().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private drop(err: unknown): void {
    const message = describeError(err);
    if (this.connected || message !== this.lastFailure) log(`plant Modbus at ${this.host}:${this.port} unavailable: ${message}`);
    this.lastFailure = message;
    this.connected = false;
    this.client?.close(() => undefined);
    this.client = undefined;
  }
}
