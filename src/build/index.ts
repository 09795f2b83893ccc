// The builder: daemonless builds of Dockerfiles whose steps need no process (docker's classic builder's
// output, history and cache), on top of the image service's builder methods.
export { build, type BuildBackend, type BuildOptions, type BuildResult } from './driver.js';
export { extractContextArchive } from './context-archive.js';
