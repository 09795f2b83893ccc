// The servers: thin adapters that put the image service on the network.
export { startRegistryServer, type RegistryServer, type RegistryServerOptions } from './registry/index.js';
export { startEngineServer, type EngineBackend, type EngineServer, type EngineServerOptions } from './engine/index.js';
