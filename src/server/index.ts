// The servers: thin adapters that put the image service on the network.
export { startRegistryServer, parseListen, type RegistryServer, type RegistryServerOptions } from './registry/index.js';
