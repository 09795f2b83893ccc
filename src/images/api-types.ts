/**
 * The Engine API shapes the image service returns (moby API 1.56), so that the command line can print them
 * with `--format json` and the Engine API server (a later floor) can send them unchanged.
 * Field names and casing follow the Engine API exactly.
 */
import type { Descriptor, Platform } from '../oci/index.js';

/** `GET /images/json` item. */
export interface ImageSummary {
  /** Target digest (C8D: the index or manifest digest). */
  Id: string;
  /** Builder parent label or "". */
  ParentId: string;
  /** Familiar names (`alpine:latest`); never null. */
  RepoTags: string[];
  /** `repo@sha256:…`; never null. */
  RepoDigests: string[];
  /** Config `created`, Unix seconds (0 when absent). */
  Created: number;
  /** Present content + unpacked snapshot bytes, over all platforms. */
  Size: number;
  /** -1 unless sharedSize was asked for. */
  SharedSize: number;
  Labels: Record<string, string>;
  /** Number of working containers using any of its manifests. */
  Containers: number;
  Manifests?: ImageManifestSummary[];
  Descriptor?: Descriptor;
}

export type ImageManifestKind = 'image' | 'attestation' | 'unknown';

/** `Manifests[]` entry of a summary or inspect response (API ≥1.47). */
export interface ImageManifestSummary {
  ID: string;
  Descriptor: Descriptor;
  /** Every blob of this manifest is present locally. */
  Available: boolean;
  Size: { Total: number; Content: number };
  Kind: ImageManifestKind;
  ImageData?: {
    Platform: Platform;
    Containers: string[];
    Size: { Unpacked: number };
  };
  AttestationData?: { For: string };
}

/** The image config's `config` section as docker shows it. */
export interface ImageConfigSection {
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, Record<string, never>>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  OnBuild?: string[] | null;
  StopSignal?: string;
  Shell?: string[];
  Healthcheck?: {
    Test?: string[];
    Interval?: number;
    Timeout?: number;
    StartPeriod?: number;
    StartInterval?: number;
    Retries?: number;
  };
  ArgsEscaped?: boolean;
}

/** `GET /images/{name}/json`. */
export interface InspectResponse {
  Id: string;
  RepoTags: string[];
  RepoDigests: string[];
  Parent?: string;
  Comment?: string;
  /** RFC3339Nano; omitted when the config has no `created`. */
  Created?: string;
  DockerVersion?: string;
  Author?: string;
  Config: ImageConfigSection;
  Architecture: string;
  Variant?: string;
  Os: string;
  OsVersion?: string;
  Size: number;
  RootFS: { Type: string; Layers?: string[] };
  Metadata: { LastTagTime?: string };
  Descriptor?: Descriptor;
  Manifests?: ImageManifestSummary[];
}

/** `GET /images/{name}/history` item. */
export interface HistoryResponseItem {
  Id: string;
  Created: number;
  CreatedBy: string;
  Tags: string[] | null;
  Size: number;
  Comment: string;
}

/** `DELETE /images/{name}` item: exactly one key. */
export type DeleteResponse = { Untagged: string; Deleted?: never } | { Deleted: string; Untagged?: never };

/** `POST /images/prune`. */
export interface PruneReport {
  ImagesDeleted: DeleteResponse[] | null;
  SpaceReclaimed: number;
}

/** `/system/df` image section (API ≥1.52 `ImageUsage`). */
export interface ImageDiskUsage {
  ActiveCount: number;
  TotalCount: number;
  Reclaimable: number;
  TotalSize: number;
  Items: ImageSummary[];
}

/** One `GET /events` message. */
export interface EventMessage {
  Type: 'image' | 'container';
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  time: number;
  timeNano: number;
}

/**
 * One progress line of a pull or push: the Engine API's JSON message (`status`, `id`, `progressDetail`,
 * `aux`, `errorDetail`). The command line renders it; the server writes it as a JSON line.
 */
export interface JSONMessage {
  status?: string;
  /** 12 hex of the blob digest for per-blob lines; the tag for the first pull line; absent otherwise. */
  id?: string;
  /** `start`: Unix seconds the transfer began (the docker CLI shows a time left from it). */
  progressDetail?: { current?: number; total?: number; units?: string; start?: number; hidecounts?: boolean };
  aux?: Record<string, unknown>;
  errorDetail?: { code?: number; message: string };
  error?: string;
  stream?: string;
}
