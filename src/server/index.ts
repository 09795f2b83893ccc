// The servers: thin adapters that put the image service on the network.
export { startRegistryServer, parseListen, type RegistryServer, type RegistryServerOptions } from './registry/index.js';
export { startEngineServer, parseHost, MAX_API_VERSION, MIN_API_VERSION, type EngineBackend, type EngineServer, type EngineServerOptions } from './engine/index.js';
