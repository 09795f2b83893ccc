/**
 * The build driver: runs a Dockerfile's stages step by step on the image service's builder methods, as
 * docker's classic builder does — each step is a commit (a layer, or a config change with an empty-layer
 * history entry), looked up first in the image cache; output in the classic builder's words.
 */
import fs from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, NotFoundError, isNotFound, throwIfAborted } from '../errors/index.js';
import type {
  BuilderSupport, ContainerConfig, ContainerLayers, Credentials, ImageCache, LocalImages, ProgressFn, RegistryAccess, ReleasableLayer,
} from '../images/index.js';
import { isPrivileged, saveOverrides } from '../snapshots/index.js';
import { familiarString, hostPlatform, parseNormalizedNamed, parsePlatform, tagNameOnly, type Digest, type Platform } from '../oci/index.js';
import { applyConfigStep, commentConfig, copyConfig, DEFAULT_PATH, setEnv } from './config-steps.js';
import { ensureWorkdir, planCopy, rootlessWrite, writeCopyItem, type Owner, type RootlessWrite } from './copy.js';
import { toInstruction, type Instruction } from './instructions.js';
import { parseDockerfile, type ParsedLine } from './parser.js';
import { resolveOwner } from './owner.js';
import { BuildSource } from './source.js';
import { lookupIn, processWord, type Lookup } from './words.js';

/**
 * What the driver needs of the image service: the builder's methods, releasing a step's working
 * container, naming and finding images, and pulling a missing base image.
 */
export type BuildBackend =
  Pick<BuilderSupport, 'makeImageCache' | 'commitBuildStep' | 'getImageAndReleasableLayer' | 'createLayerFromImage' | 'layerFolders' | 'scratchName'> &
  Pick<ContainerLayers, 'releaseLayer'> & Pick<LocalImages, 'tag' | 'getImage'> & Pick<RegistryAccess, 'pull'>;

export interface BuildOptions {
  /** The build context directory. */
  context: string;
  /** Dockerfile path (relative to the context, or absolute); default `Dockerfile` in the context. */
  dockerfile?: string;
  /** The Dockerfile's text, when it does not come from a file (read from stdin, sent by a client). */
  dockerfileText?: string;
  tags?: string[];
  buildArgs?: Record<string, string>;
  target?: string;
  /** `os[/arch[/variant]]` for every FROM without --platform. */
  platform?: string;
  noCache?: boolean;
  /** Pull base images even when present. */
  pull?: boolean;
  cacheFrom?: string[];
  /** `--label`: labels for the final image, set by one more LABEL step at the end, as docker's classic builder adds it. */
  labels?: Record<string, string>;
  /** Seconds since the epoch: image and history times, and layer mtimes clamped to it. */
  sourceDateEpoch?: number;
  /** Record owners instead of applying them even when privileged (the snapshots floor's rootless mode; automatic when not root). */
  rootless?: boolean;
  /** Credentials for pulling base images by registry domain (default: docker's config file). */
  credentials?: (domain: string) => Credentials | undefined;
  /** Progress of the pulls of missing base images (docker's JSON messages, as the builder streams them). */
  onPullProgress?: ProgressFn;
  /** One line of the classic builder's output (no trailing newline). */
  out?: (line: string) => void;
  /** Called with the final image's ID just before `Successfully built` is printed. */
  onBuilt?: (id: Digest) => void;
  signal?: AbortSignal;
}

export interface BuildResult {
  /** The final image's ID. */
  id: Digest;
  steps: number;
  /** Steps answered by the cache. */
  cacheHits: number;
  /** Steps that made a new image. */
  cacheMisses: number;
}

interface Stage {
  name?: string;
  index: number;
  fromLine: ParsedLine;
  from: Extract<Instruction, { kind: 'from' }>;
  steps: Instruction[];
}

interface StageState {
  /** Current image; undefined while a scratch stage has no step yet. */
  imageId?: Digest;
  config: ContainerConfig;
  platform: Platform;
  /** ARGs declared in this stage with their values (undefined: declared without a value). */
  args: Map<string, string | undefined>;
  cmdSet: boolean;
  maintainer?: string;
}

const short = (id: string | undefined): string => (id ?? '').replace(/^sha256:/, '').slice(0, 12);

/** Splits the instructions into the meta ARGs before the first FROM and the stages. */
function stagesOf(instructions: Instruction[]): { meta: Extract<Instruction, { kind: 'arg' }>[]; stages: Stage[] } {
  const meta: Extract<Instruction, { kind: 'arg' }>[] = [];
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.kind === 'from') {
      stages.push({ index: stages.length, fromLine: ins.line, from: ins, steps: [], ...(ins.stage ? { name: ins.stage } : {}) });
    } else if (stages.length === 0) {
      if (ins.kind !== 'arg') throw new InvalidArgumentError(`Dockerfile parse error line ${ins.line.startLine}: ${ins.kind.toUpperCase()} before any FROM: a Dockerfile must begin with FROM (ARG may come first)`, { line: ins.line.startLine });
      meta.push(ins);
    } else {
      stages[stages.length - 1]!.steps.push(ins);
    }
  }
  if (stages.length === 0) throw new InvalidArgumentError('No build stage in current context: a Dockerfile needs a FROM', { reason: 'no-stage' });
  return { meta, stages };
}

function readDockerfile(opts: BuildOptions): string {
  if (opts.dockerfileText !== undefined) return opts.dockerfileText;
  const file = path.resolve(opts.context, opts.dockerfile ?? 'Dockerfile');
  try { return fs.readFileSync(file, 'utf8'); } catch (e) {
    if (isNotFound(e)) throw new NotFoundError(`Cannot locate specified Dockerfile: ${opts.dockerfile ?? 'Dockerfile'}`, { path: file });
    throw e;
  }
}

/** Runs a build. The result is tagged with every `tags` entry. */
export async function build(svc: BuildBackend, opts: BuildOptions): Promise<BuildResult> {
  const out = opts.out ?? (() => undefined);
  const parsed = parseDockerfile(readDockerfile(opts));
  for (const w of parsed.warnings) out(w);
  const escape = parsed.directives.escape;
  const instructions = parsed.lines.map((l) => toInstruction(l, escape));
  let { meta, stages } = stagesOf(instructions);
  if (opts.target !== undefined) {
    const i = stages.findIndex((s) => s.name === opts.target!.toLowerCase());
    if (i < 0) throw new InvalidArgumentError(`failed to reach build target ${opts.target} in Dockerfile`, { target: opts.target });
    stages = stages.slice(0, i + 1);
  }
  const extra = Object.entries(opts.labels ?? {});
  if (extra.length > 0) {
    // Printed as docker prints it (`LABEL k=v`); the values are literal, so they are quoted for the word processor.
    const literal = (t: string): string => `'${t.replaceAll("'", `'${escape}''`)}'`;
    const original = 'LABEL ' + extra.map(([k, v]) => `${k}=${v}`).join(' ');
    const line = { keyword: 'label', rest: original.slice('LABEL '.length), original, startLine: 0, endLine: 0 };
    stages[stages.length - 1]!.steps.push({ kind: 'label', line, pairs: extra.map(([k, v]) => [literal(k), literal(v)] as [string, string]) });
  }
  const total = meta.length + stages.reduce((n, s) => n + 1 + s.steps.length, 0);
  const buildArgs = new Map(Object.entries(opts.buildArgs ?? {}));
  const usedArgs = new Set<string>();
  const context = BuildSource.context(opts.context);
  const cache: ImageCache | undefined = opts.noCache ? undefined : await svc.makeImageCache(opts.cacheFrom ? { cacheFrom: opts.cacheFrom } : {});
  const created = opts.sourceDateEpoch !== undefined ? new Date(opts.sourceDateEpoch * 1000) : undefined;
  const defaultPlatform = opts.platform ? parsePlatform(opts.platform) : undefined;
  const held: ReleasableLayer[] = [];
  // Base images missing from the store are pulled, with the caller's credentials for their registry.
  const pull = async (ref: string, platform?: Platform): Promise<void> => {
    const creds = opts.credentials?.(parseNormalizedNamed(ref).domain);
    await svc.pull(ref, {
      ...(platform ? { platform } : {}), ...(creds ? { credentials: creds } : {}),
      ...(opts.onPullProgress ? { onProgress: opts.onPullProgress } : {}), ...(opts.signal ? { signal: opts.signal } : {}),
    });
  };
  const stageImages: Array<{ name?: string; state: StageState }> = [];
  let step = 0;
  let hits = 0;
  let misses = 0;

  // Meta ARGs: usable in FROM lines; a stage's `ARG NAME` without a value picks them up.
  const metaArgs = new Map<string, string | undefined>();
  const metaLookup: Lookup = (n) => (metaArgs.has(n) ? metaArgs.get(n) : undefined);
  for (const ins of meta) {
    out(`Step ${++step}/${total} : ${ins.line.original}`);
    for (const a of ins.args) {
      const key = processWord(a.key, metaLookup, escape);
      if (buildArgs.has(key)) { metaArgs.set(key, buildArgs.get(key)); usedArgs.add(key); }
      else metaArgs.set(key, a.value === undefined ? undefined : processWord(a.value, metaLookup, escape));
    }
  }

  const stageEnv = (s: StageState): Lookup => {
    const args: string[] = [];
    for (const [k, v] of s.args) if (v !== undefined) args.push(`${k}=${v}`);
    return lookupIn(s.config.Env ?? [], args);
  };

  /** One commit: a cache probe, then the step's image (with `write` filling a working container, if any). */
  const commit = async (s: StageState, config: ContainerConfig, runConfig: ContainerConfig, write?: (upper: string, lowers: string[], rootless?: RootlessWrite) => Promise<void>): Promise<void> => {
    throwIfAborted(opts.signal);
    if (cache) {
      const hit = await cache.getCache(s.imageId, runConfig, s.platform);
      if (hit) {
        out(' ---> Using cache');
        s.imageId = hit;
        s.config = config;
        hits++;
        return;
      }
    }
    let container: string | undefined;
    try {
      if (write) {
        const c = await svc.createLayerFromImage(s.imageId ?? '', { platform: s.platform, name: svc.scratchName('build-step') });
        container = c.id;
        const [upper, ...lowers] = await svc.layerFolders(c.id);
        const rootless = isPrivileged(opts.rootless) ? undefined : await rootlessWrite(lowers);
        await write(upper!, lowers, rootless);
        // Unprivileged, the owners and modes live in override records, which the layer diff reads.
        if (rootless) await saveOverrides(upper!, rootless.overrides);
      }
      const r = await svc.commitBuildStep({
        ...(s.imageId ? { parent: s.imageId } : {}),
        ...(container ? { container } : {}),
        config, containerConfig: runConfig, platform: s.platform,
        ...(s.maintainer !== undefined ? { author: s.maintainer } : {}),
        ...(created ? { created } : {}),
        ...(opts.sourceDateEpoch !== undefined ? { sourceDateEpoch: opts.sourceDateEpoch } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      s.imageId = r.id;
      s.config = config;
      misses++;
    } finally {
      if (container) await svc.releaseLayer(container).catch(() => undefined);
    }
  };

  /** The tree a `COPY --from` reads: an earlier stage (by name or index) or an image. */
  const sourceFor = async (from: string, s: StageState): Promise<BuildSource> => {
    const byName = stageImages.find((x) => x.name !== undefined && x.name === from.toLowerCase());
    const byIndex = /^\d+$/.test(from) ? stageImages[Number(from)] : undefined;
    const st = byName?.state ?? byIndex?.state;
    // A stage is the image it made, whatever its platform; an image is taken for the stage's platform.
    const got = st
      ? await svc.getImageAndReleasableLayer(st.imageId ?? '', { pullPolicy: 'never', ...(opts.signal ? { signal: opts.signal } : {}) })
      : await svc.getImageAndReleasableLayer(from, { platform: s.platform, pullPolicy: 'missing', pull, ...(opts.signal ? { signal: opts.signal } : {}) });
    held.push(got.layer);
    return BuildSource.tree(await got.layer.mount());
  };

  const dispatch = async (s: StageState, ins: Instruction): Promise<void> => {
    const env = stageEnv(s);
    const word = (w: string): string => processWord(w, env, escape);
    switch (ins.kind) {
      case 'arg': {
        const parts: string[] = [];
        for (const a of ins.args) {
          const key = word(a.key);
          const declared = a.value === undefined ? undefined : word(a.value);
          let value = declared;
          if (buildArgs.has(key)) { value = buildArgs.get(key); usedArgs.add(key); }
          else if (value === undefined && metaArgs.has(key)) value = metaArgs.get(key);
          s.args.set(key, value);
          parts.push(declared === undefined ? key : `${key}=${declared}`);
        }
        const comment = `ARG ${parts.join(' ')}`;
        await commit(s, copyConfig(s.config), commentConfig(s.config, comment, true));
        return;
      }
      case 'copy': case 'add': {
        const what = ins.kind.toUpperCase();
        const src = ins.from !== undefined ? await sourceFor(word(ins.from), s) : context;
        const sources = ins.sources.map(word);
        const dest = word(ins.dest);
        const plan = planCopy(src, sources, what);
        if (plan.items.length > 1 && !dest.endsWith('/')) throw new InvalidArgumentError(`When using ${what} with more than one source file, the destination must be a directory and end with a /`, { line: ins.line.startLine });
        const chown = ins.chown !== undefined ? word(ins.chown) : undefined;
        const chmod = ins.chmod !== undefined ? word(ins.chmod) : undefined;
        let mode: number | undefined;
        if (chmod !== undefined) {
          if (!/^[0-7]{3,4}$/.test(chmod)) throw new InvalidArgumentError(`invalid chmod parameter ${JSON.stringify(chmod)}: use octal permission bits`, { line: ins.line.startLine });
          mode = parseInt(chmod, 8);
        }
        const comment = `${what} ${chown !== undefined ? `--chown=${chown}` : ''}${chmod !== undefined ? `--chmod=${chmod} ` : ''}${plan.hash} in ${dest} `;
        const runConfig = commentConfig(s.config, comment, false);
        const absDest = path.posix.isAbsolute(dest) ? dest : path.posix.join('/', s.config.WorkingDir || '/', dest) + (dest.endsWith('/') || dest === '.' ? '/' : '');
        await commit(s, copyConfig(s.config), runConfig, async (upper, lowers, rootless) => {
          const owner: Owner | undefined = chown !== undefined ? resolveOwner(chown, lowers, upper) : undefined;
          for (const it of plan.items) {
            await writeCopyItem({
              upper, lowers, ...(owner ? { owner } : {}), ...(mode !== undefined ? { chmod: mode } : {}), ...(rootless ? { rootless } : {}),
              extractArchives: ins.kind === 'add', ...(opts.signal ? { signal: opts.signal } : {}),
            }, it, absDest);
          }
        });
        return;
      }
      case 'workdir': {
        const r = applyConfigStep(s.config, ins, env, escape, s.cmdSet);
        const dir = r.config.WorkingDir!;
        // docker makes the directory (root-owned, 0755) in a container and commits it: an empty layer when it exists.
        await commit(s, r.config, commentConfig(r.config, r.comment, false), async (upper, lowers, rootless) => {
          ensureWorkdir({ upper, lowers, extractArchives: false, ...(rootless ? { rootless } : {}) }, dir);
        });
        return;
      }
      case 'from':
        throw new InvalidArgumentError('FROM inside a stage', { line: ins.line.startLine });
      default: {
        const r = applyConfigStep(s.config, ins, env, escape, s.cmdSet);
        if (ins.kind === 'cmd') s.cmdSet = true;
        if (r.note) out(r.note);
        if (r.maintainer !== undefined) s.maintainer = r.maintainer;
        await commit(s, r.config, commentConfig(r.config, r.comment, r.separateNop));
      }
    }
  };

  try {
    for (const stage of stages) {
      out(`Step ${++step}/${total} : ${stage.fromLine.original}`);
      const from = stage.from;
      const imageRef = processWord(from.image, metaLookup, escape);
      const platformText = from.platform !== undefined ? processWord(from.platform, metaLookup, escape) : undefined;
      const platform = platformText ? parsePlatform(platformText) : defaultPlatform;
      const prior = stageImages.find((x) => x.name !== undefined && x.name === imageRef.toLowerCase());
      let state: StageState;
      if (prior) {
        state = { ...prior.state, config: copyConfig(prior.state.config), args: new Map(), cmdSet: false };
        if (prior.state.imageId === undefined) delete state.imageId;
      } else if (imageRef.toLowerCase() === 'scratch') {
        state = { config: {}, platform: platform ?? hostPlatform(), args: new Map(), cmdSet: false };
      } else {
        const got = await svc.getImageAndReleasableLayer(imageRef, {
          ...(platform ? { platform } : {}), pullPolicy: opts.pull ? 'always' : 'missing', pull, ...(opts.signal ? { signal: opts.signal } : {}),
        });
        held.push(got.layer);
        const img = got.image!;
        const cfg = img.config;
        state = {
          imageId: img.id, config: copyConfig(cfg.config ?? {}), args: new Map(), cmdSet: false,
          platform: platform ?? { os: cfg.os, architecture: cfg.architecture, ...(cfg.variant ? { variant: cfg.variant } : {}) },
        };
      }
      delete state.maintainer; // MAINTAINER counts for its own stage only
      // docker's beginStage: a default PATH, the stdin flags cleared.
      const env = state.config.Env ?? [];
      if (!env.some((e) => e.startsWith('PATH='))) state.config.Env = setEnv(env, 'PATH', DEFAULT_PATH);
      delete state.config.OpenStdin;
      delete state.config.StdinOnce;
      const triggers = state.config.OnBuild ?? [];
      if (triggers.length > 0) {
        state.config.OnBuild = null;
        out(`# Executing ${triggers.length} build trigger${triggers.length > 1 ? 's' : ''}`);
        for (const t of triggers) {
          const p = parseDockerfile(t);
          for (const l of p.lines) await dispatch(state, toInstruction({ ...l, startLine: stage.fromLine.startLine, endLine: stage.fromLine.endLine }, escape));
        }
      }
      out(` ---> ${short(state.imageId)}`);
      stageImages.push({ ...(stage.name ? { name: stage.name } : {}), state });
      for (const ins of stage.steps) {
        out(`Step ${++step}/${total} : ${ins.line.original}`);
        await dispatch(state, ins);
        out(` ---> ${short(state.imageId)}`);
      }
    }
  } finally {
    for (const l of held) await l.release().catch(() => undefined);
  }

  const last = stageImages[stageImages.length - 1]!.state;
  if (last.imageId === undefined) {
    // A last stage of only `FROM scratch` made no image: docker fails the same way.
    throw new InvalidArgumentError('No image was generated. Is your Dockerfile empty?', { reason: 'empty-build' });
  }
  const unused = [...buildArgs.keys()].filter((k) => !usedArgs.has(k)).sort();
  if (unused.length > 0) out(`[Warning] One or more build-args [${unused.join(' ')}] were not consumed`);
  opts.onBuilt?.(last.imageId);
  out(`Successfully built ${short(last.imageId)}`);
  for (const t of opts.tags ?? []) {
    await svc.tag(last.imageId, t);
    out(`Successfully tagged ${familiarTag(t)}`);
  }
  return { id: last.imageId, steps: step, cacheHits: hits, cacheMisses: misses };
}

/** `Successfully tagged` prints the familiar form with the default tag (`foo:latest`). */
function familiarTag(t: string): string {
  return familiarString(tagNameOnly(parseNormalizedNamed(t)));
}
