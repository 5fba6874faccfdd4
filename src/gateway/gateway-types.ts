/**
 * The contract between the HTTP gateway of services and the service layer: the core's
 * ports, which the gateway implements (ServiceGateway) and calls (ReplicaSource).
 */
export type { GatewayOpenOptions, GatewayStats, Replica, ReplicaSource, ServiceGateway } from '../core/ports.js';
