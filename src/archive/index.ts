// The archive floor: docker-archive (legacy and dual) and OCI image layout tars, read and written as
// streams. It knows tar and the formats' JSON; where blobs come from and go to is the caller's business.
export {
  OCI_LAYOUT_FILE, INDEX_FILE, MANIFEST_FILE, OCI_LAYOUT_VERSION, IMAGE_NAME_ANNOTATION,
  REF_NAME_ANNOTATION, blobPath, digestOfBlobPath, parseDockerManifest, parseJson,
  type DockerManifestEntry, type Repositories,
} from './layout.js';
export { readArchive, memberAt, type ArchiveContents, type MemberSink, type StoredMember } from './read.js';
export { writeArchive, type ArchiveBlob, type ArchivePlan } from './write.js';
