// The servers: thin adapters over the image service.
export { startEngineServer, parseHost, MAX_API_VERSION, MIN_API_VERSION, type EngineServer, type EngineServerOptions } from './engine/index.js';
