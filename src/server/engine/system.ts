/** `/_ping`, `/version`, `/info` and `/system/df`: what clients ask a daemon before and beside images. */
import os from 'node:os';
import { badParameter } from './errors.js';
import { boolParam, sendJSON, type EngineRequest } from './request.js';
import { MAX_API_VERSION, MIN_API_VERSION, type Route } from './router.js';
import { diskUsageFor } from './versions.js';

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
const goArch = (): string => ARCH[process.arch] ?? process.arch;

export interface SystemInfo {
  /** Stowage's version, reported as the engine version. */
  version: string;
}

async function ping(r: EngineRequest): Promise<void> {
  const headers = {
    'Builder-Version': '1',
    Swarm: 'inactive',
    'Cache-Control': 'no-cache, no-store, must-revalidate',
    Pragma: 'no-cache',
    'Content-Type': 'text/plain; charset=utf-8',
  };
  if (r.method === 'HEAD') {
    r.res.writeHead(200, { ...headers, 'Content-Length': '0' });
    r.res.end();
    return;
  }
  r.res.writeHead(200, { ...headers, 'Content-Length': '2' });
  r.res.end('OK');
}

function versionBody(info: SystemInfo): Record<string, unknown> {
  const details = {
    ApiVersion: MAX_API_VERSION, MinAPIVersion: MIN_API_VERSION, GitCommit: '', GoVersion: `node ${process.version}`,
    Os: 'linux', Arch: goArch(), KernelVersion: os.release(), Experimental: 'false', BuildTime: '',
  };
  return {
    Platform: { Name: 'Stowage (image store, no containers)' },
    Components: [{ Name: 'Engine', Version: info.version, Details: details }],
    Version: info.version, ApiVersion: MAX_API_VERSION, MinAPIVersion: MIN_API_VERSION, GitCommit: '',
    GoVersion: `node ${process.version}`, Os: 'linux', Arch: goArch(), KernelVersion: os.release(), BuildTime: '',
  };
}

async function infoBody(r: EngineRequest, info: SystemInfo): Promise<Record<string, unknown>> {
  return {
    ID: '', Containers: 0, ContainersRunning: 0, ContainersPaused: 0, ContainersStopped: 0,
    Images: await r.store.countImages(),
    Driver: r.store.storageDriver(),
    DriverStatus: r.store.layerStoreStatus(),
    Plugins: { Volume: [], Network: [], Authorization: null, Log: [] },
    MemoryLimit: false, SwapLimit: false, CpuCfsPeriod: false, CpuCfsQuota: false, CPUShares: false, CPUSet: false,
    PidsLimit: false, IPv4Forwarding: false, Debug: false, NFd: 0, OomKillDisable: false, NGoroutines: 0,
    SystemTime: new Date().toISOString(), LoggingDriver: '', CgroupDriver: '', CgroupVersion: '', NEventsListener: 0,
    KernelVersion: os.release(), OperatingSystem: `${os.type()} (stowage)`, OSVersion: '', OSType: 'linux',
    Architecture: os.machine(), IndexServerAddress: 'https://index.docker.io/v1/',
    RegistryConfig: { InsecureRegistryCIDRs: ['127.0.0.0/8', '::1/128'], IndexConfigs: {}, Mirrors: [] },
    NCPU: os.cpus().length, MemTotal: os.totalmem(), GenericResources: null, DockerRootDir: r.store.root,
    HttpProxy: '', HttpsProxy: '', NoProxy: '', Name: os.hostname(), Labels: [], ExperimentalBuild: false,
    ServerVersion: info.version, Runtimes: {}, DefaultRuntime: '',
    Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
    LiveRestoreEnabled: false, Isolation: '', InitBinary: '', ContainerdCommit: { ID: '' }, RuncCommit: { ID: '' },
    InitCommit: { ID: '' }, SecurityOptions: [], Warnings: [],
  };
}

const DF_TYPES = ['container', 'image', 'volume', 'build-cache'];

async function systemDf(r: EngineRequest): Promise<void> {
  const types = r.query.getAll('type').filter((t) => t !== '');
  for (const t of types) if (!DF_TYPES.includes(t)) throw badParameter(`unknown object type: ${t}`);
  const wantImages = types.length === 0 || types.includes('image');
  const verbose = boolParam(r.query, 'verbose');
  const usage = wantImages ? await r.store.diskUsage({ verbose: true }) : undefined;
  sendJSON(r, 200, diskUsageFor(usage, r.version, verbose));
}

export function systemRoutes(info: SystemInfo): Route[] {
  return [
    { method: ['GET', 'HEAD'], path: /^\/_ping$/, handle: ping },
    { method: 'GET', path: /^\/version$/, handle: async (r) => sendJSON(r, 200, versionBody(info)) },
    { method: 'GET', path: /^\/info$/, handle: async (r) => sendJSON(r, 200, await infoBody(r, info)) },
    { method: 'GET', path: /^\/system\/df$/, handle: systemDf },
  ];
}
