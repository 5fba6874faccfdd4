// The native runner's own, re-exported so the ICS tests keep one import path.
export { freePort } from '@uigniter-demo/native/free-port';
