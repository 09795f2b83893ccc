/**
 * Fields gated by API version (image list and inspect, events, the image endpoints' query parameters). The image service answers in the newest
 * shapes; these functions give an older client what its version of the API had.
 */
import type { EventMessage, ImageDiskUsage, ImageSummary, InspectResponse } from '../../images/index.js';
import { versionAtLeast } from './request.js';

/** One `GET /images/json` item for API `v`. */
export function summaryFor(s: ImageSummary, v: string): Record<string, unknown> {
  const untagged = s.RepoTags.length === 0 && s.RepoDigests.length === 0;
  const out: Record<string, unknown> = {
    Containers: versionAtLeast(v, '1.51') ? s.Containers : -1,
    Created: s.Created,
    Id: s.Id,
    Labels: s.Labels,
    ParentId: s.ParentId,
    RepoDigests: !versionAtLeast(v, '1.43') && untagged ? ['<none>@<none>'] : s.RepoDigests,
    RepoTags: !versionAtLeast(v, '1.43') && untagged ? ['<none>:<none>'] : s.RepoTags,
    SharedSize: s.SharedSize,
    Size: s.Size,
  };
  if (!versionAtLeast(v, '1.44')) out.VirtualSize = s.Size;
  if (versionAtLeast(v, '1.48') && s.Descriptor) out.Descriptor = s.Descriptor;
  if (versionAtLeast(v, '1.47') && s.Manifests) out.Manifests = s.Manifests;
  return out;
}

/** container.Config with every field at its zero value, in Go's field order (API < 1.50 image inspect). */
const LEGACY_CONFIG_ZERO: Record<string, unknown> = {
  Hostname: '', Domainname: '', User: '', AttachStdin: false, AttachStdout: false, AttachStderr: false,
  ExposedPorts: undefined, Tty: false, OpenStdin: false, StdinOnce: false, Env: null, Cmd: null, Healthcheck: undefined,
  ArgsEscaped: undefined, Image: '', Volumes: null, WorkingDir: '', Entrypoint: null, OnBuild: null, Labels: null,
  StopSignal: undefined, Shell: undefined,
};
/** API 1.50–1.51: the OCI-shaped config, with these keys always present. */
const CONFIG_ALWAYS_151 = ['Cmd', 'Entrypoint', 'Env', 'Labels', 'OnBuild', 'User', 'Volumes', 'WorkingDir'];
const CONFIG_ORDER_OCI = ['User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels', 'StopSignal', 'ArgsEscaped', 'Healthcheck', 'OnBuild', 'Shell'];

function configFor(c: Record<string, unknown>, v: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!versionAtLeast(v, '1.50')) {
    for (const [k, zero] of Object.entries(LEGACY_CONFIG_ZERO)) {
      if (c[k] !== undefined) out[k] = c[k];
      else if (zero !== undefined) out[k] = zero;
    }
    return out;
  }
  for (const k of CONFIG_ORDER_OCI) {
    if (c[k] !== undefined) out[k] = c[k];
    else if (!versionAtLeast(v, '1.52') && CONFIG_ALWAYS_151.includes(k)) out[k] = k === 'User' || k === 'WorkingDir' ? '' : null;
  }
  return out;
}

/** `GET /images/{name}/json` for API `v`, in docker's field order. */
export function inspectFor(i: InspectResponse, v: string, storageDriver: string): Record<string, unknown> {
  const legacy = !versionAtLeast(v, '1.52');
  const out: Record<string, unknown> = { Id: i.Id, RepoTags: i.RepoTags, RepoDigests: i.RepoDigests };
  if (i.Parent !== undefined || legacy) out.Parent = i.Parent ?? '';
  if (i.Comment !== undefined || legacy) out.Comment = i.Comment ?? '';
  if (i.Created !== undefined) out.Created = i.Created;
  else if (!versionAtLeast(v, '1.44')) out.Created = '0001-01-01T00:00:00Z';
  if (!versionAtLeast(v, '1.45')) {
    out.Container = '';
    out.ContainerConfig = configFor({}, '1.49');
  }
  if (i.DockerVersion !== undefined || legacy) out.DockerVersion = i.DockerVersion ?? '';
  if (i.Author !== undefined || legacy) out.Author = i.Author ?? '';
  out.Config = configFor(i.Config as Record<string, unknown>, v);
  out.Architecture = i.Architecture;
  if (i.Variant !== undefined) out.Variant = i.Variant;
  out.Os = i.Os;
  if (i.OsVersion !== undefined) out.OsVersion = i.OsVersion;
  out.Size = i.Size;
  if (!versionAtLeast(v, '1.44')) out.VirtualSize = i.Size;
  if (legacy) out.GraphDriver = { Data: null, Name: storageDriver };
  out.RootFS = i.RootFS;
  out.Metadata = { LastTagTime: i.Metadata.LastTagTime ?? '0001-01-01T00:00:00Z' };
  if (versionAtLeast(v, '1.48') && i.Descriptor) out.Descriptor = i.Descriptor;
  if (versionAtLeast(v, '1.48') && i.Manifests) out.Manifests = i.Manifests;
  return out;
}

/** `GET /system/df`: the `ImageUsage` shape from 1.52, the legacy `LayersSize`/`Images` one below. */
export function diskUsageFor(u: ImageDiskUsage | undefined, v: string, verbose: boolean): Record<string, unknown> {
  if (versionAtLeast(v, '1.52')) {
    const out: Record<string, unknown> = {};
    if (u) {
      out.ImageUsage = { ActiveCount: u.ActiveCount, TotalCount: u.TotalCount, Reclaimable: u.Reclaimable, TotalSize: u.TotalSize, ...(verbose ? { Items: u.Items } : {}) };
      if (!verbose) { out.LayersSize = u.TotalSize; out.Images = u.Items; }
    }
    return out;
  }
  // The legacy shape carries containers, volumes and build cache too; a store has none of them.
  const images = (u?.Items ?? []).map((s) => {
    const item = summaryFor(s, v);
    item.Containers = s.Containers; // df counts users at every version: the CLI sums what they hold
    return item;
  });
  return { LayersSize: u?.TotalSize ?? 0, Images: images, Containers: [], Volumes: [], BuildCache: [] };
}

/** One `GET /events` line: API < 1.52 also carries the legacy `status`/`id`(/`from`) fields. */
export function eventFor(e: EventMessage, v: string): Record<string, unknown> {
  if (versionAtLeast(v, '1.52')) return { ...e };
  return { status: e.Action, id: e.Actor.ID, ...e };
}
