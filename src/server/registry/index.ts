// The registry server: the store over the OCI distribution API (pull, push, mirror).
export { startRegistryServer, parseListen, type RegistryServer, type RegistryServerOptions } from './server.js';
