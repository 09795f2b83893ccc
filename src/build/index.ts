// The builder: daemonless builds of Dockerfiles whose steps need no process (docker's classic builder's
// output, history and cache), on top of the image service's builder methods.
export { build, type BuildBackend, type BuildOptions, type BuildResult } from './driver.js';
export { parseDockerfile, type ParsedDockerfile, type ParsedLine, type Directives } from './parser.js';
export { toInstruction, type Instruction } from './instructions.js';
export { processWord, processWords, lookupIn, type Lookup } from './words.js';
export { parseDockerignore, isIgnored, type IgnorePattern } from './dockerignore.js';
export { BuildSource } from './source.js';
export { extractContextArchive } from './context-archive.js';
