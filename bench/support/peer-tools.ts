// The peer tools the benchmarks compare against. `npm run bench` checks them first and, as root,
// installs what is missing from Debian's packages, so a fresh machine runs every benchmark.
import { spawnSync } from 'node:child_process';

/** Command → Debian package. pigz: containerd unpacks gzip layers with unpigz when it is on PATH. */
export const PEER_TOOLS: Record<string, string> = {
  pigz: 'pigz',
  ctr: 'containerd',
  containerd: 'containerd',
  skopeo: 'skopeo',
  umoci: 'umoci',
  'docker-registry': 'docker-registry',
  'mkfs.ext4': 'e2fsprogs',
  tar: 'tar',
  gzip: 'gzip',
  curl: 'curl',
  sha256sum: 'coreutils',
  bash: 'bash',
};

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v '${cmd}'`], { stdio: 'ignore' }).status === 0;

/** Installs missing peers when root; returns the commands still missing (the caller says so). */
export function ensurePeerTools(tools = Object.keys(PEER_TOOLS)): string[] {
  let missing = tools.filter((t) => !has(t));
  if (missing.length > 0 && process.getuid?.() === 0) {
    const pkgs = [...new Set(missing.map((t) => PEER_TOOLS[t] ?? t))];
    console.log(`installing peer tools: ${pkgs.join(' ')}`);
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    spawnSync('apt-get', ['install', '-y', '-qq', ...pkgs], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    missing = tools.filter((t) => !has(t));
  }
  return missing;
}
