/**
 * Images built in code, with no daemon and no registry: from object literals of files, from directories,
 * on top of other images; reproducible; random images of a given shape for property tests. A built image
 * is an `ImageSource`: `store.addImage(image, { ref })` writes it into a store.
 */
export { buildImage, type BuiltImage, type ImageSpec, type LayerSpec } from './build.js';
export { buildIndex, type BuiltIndex } from './index-image.js';
export type { ImageConfigSpec, HistoryEntry } from './config.js';
export type { DirectoryLayerOptions } from './directory.js';
export type {
  FileTree, FileSpec, FileEntrySpec, DirectorySpec, SymlinkSpec, HardlinkSpec, DeleteSpec, EntryMeta,
} from './file-tree.js';
export type { ManifestFormat } from './layer-blob.js';
export { randomImageSpec, type RandomImageShape } from './random.js';
export { mergeLayers } from './merge.js';
export { writeImageArchive, writeOciLayout, type ExportOptions } from './export.js';
