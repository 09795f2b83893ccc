/**
 * The instructions that only change the image config (ENV, LABEL, EXPOSE, VOLUME, USER, WORKDIR's
 * path, STOPSIGNAL, CMD, ENTRYPOINT, HEALTHCHECK, SHELL, ONBUILD, MAINTAINER): the new run config and
 * the history comment docker's classic builder writes for each (`ENV A=x B=y z`, `CMD ["/bin/sh" "-c" "x"]`).
 */
import path from 'node:path';
import { InvalidArgumentError } from '../errors/index.js';
import type { ContainerConfig } from '../images/index.js';
import { goDuration, goList, goQuoteList, goQuoteRune, parseGoDuration } from './go-format.js';
import type { Instruction } from './instructions.js';
import { processWord, processWords, type Lookup } from './words.js';

export const DEFAULT_SHELL = ['/bin/sh', '-c'];
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function shellOf(c: ContainerConfig): string[] { return c.Shell && c.Shell.length > 0 ? [...c.Shell] : [...DEFAULT_SHELL]; }

/** A deep copy (run configs are changed step by step; images keep their own). */
export function copyConfig(c: ContainerConfig): ContainerConfig { return structuredClone(c); }

/** `KEY=value` set in place (keeps the position of an existing key), as docker's ENV does. */
export function setEnv(env: readonly string[], key: string, value: string): string[] {
  const out = [...env];
  const i = out.findIndex((e) => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e) === key);
  if (i >= 0) out[i] = `${key}=${value}`;
  else out.push(`${key}=${value}`);
  return out;
}

export interface ConfigStep {
  config: ContainerConfig;
  /** The text after `#(nop) ` in the history. */
  comment: string;
  /** Whether the comment is written as docker's `withCmdComment` (a separate "#(nop) " word) — all but WORKDIR. */
  separateNop: boolean;
  /** A message printed before the step's result (`Note: overriding previous HEALTHCHECK`). */
  note?: string;
  /** MAINTAINER sets the author of later commits. */
  maintainer?: string;
}

const SIGNAL_RE = /^(SIG)?[A-Z][A-Z0-9+-]*$|^\d+$/;

/** EXPOSE ports → `80/tcp` keys; ranges expand (`8000-8001/udp`). */
function portKeys(spec: string): string[] {
  const m = /^(?:(?:[^:]*):)?(?:(?:\d*-?\d*):)?(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(spec);
  if (!m) throw new InvalidArgumentError(`Invalid containerPort: ${spec}`, { port: spec });
  const start = Number(m[1]);
  const end = m[2] !== undefined ? Number(m[2]) : start;
  if (start > 65535 || end > 65535 || end < start) throw new InvalidArgumentError(`Invalid containerPort: ${spec}`, { port: spec });
  const proto = (m[3] ?? 'tcp').toLowerCase();
  const out: string[] = [];
  for (let p = start; p <= end; p++) out.push(`${p}/${proto}`);
  return out;
}

function durationFlag(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const d = parseGoDuration(v);
  if (d === undefined) throw new InvalidArgumentError(`time: invalid duration ${JSON.stringify(v)}`, { flag: name });
  if (d !== 0 && d < 1e6) throw new InvalidArgumentError(`Interval "${name}" cannot be less than 1ms`, { flag: name });
  return d;
}

/** Applies one config-only instruction to `current`. `env` resolves variables for the instructions that substitute them. */
export function applyConfigStep(current: ContainerConfig, ins: Instruction, env: Lookup, escape: string, cmdSet: boolean): ConfigStep {
  const c = copyConfig(current);
  const word = (w: string): string => processWord(w, env, escape);
  switch (ins.kind) {
    case 'env': {
      const parts: string[] = [];
      let e = c.Env ?? [];
      for (const [k, v] of ins.pairs) {
        const key = word(k);
        const value = word(v);
        if (key === '') throw new InvalidArgumentError('ENV names can not be blank', { line: ins.line.startLine });
        e = setEnv(e, key, value);
        parts.push(`${key}=${value}`);
      }
      c.Env = e;
      return { config: c, comment: `ENV ${parts.join(' ')}`, separateNop: true };
    }
    case 'label': {
      const parts: string[] = [];
      const labels = { ...(c.Labels ?? {}) };
      for (const [k, v] of ins.pairs) {
        const key = word(k);
        const value = word(v);
        if (key === '') throw new InvalidArgumentError('LABEL names can not be blank', { line: ins.line.startLine });
        labels[key] = value;
        parts.push(`${key}=${value}`);
      }
      c.Labels = labels;
      return { config: c, comment: `LABEL ${parts.join(' ')}`, separateNop: true };
    }
    case 'expose': {
      const ports = ins.ports.flatMap((p) => processWords(p, env, escape));
      const exposed = { ...(c.ExposedPorts ?? {}) };
      for (const p of ports) for (const k of portKeys(p)) exposed[k] = {};
      c.ExposedPorts = exposed;
      return { config: c, comment: `EXPOSE ${[...ports].sort().join(' ')}`, separateNop: true };
    }
    case 'volume': {
      const paths = ins.paths.map(word);
      const vols = { ...(c.Volumes ?? {}) };
      for (const p of paths) {
        if (p.trim() === '') throw new InvalidArgumentError('VOLUME specified can not be an empty string', { line: ins.line.startLine });
        vols[p] = {};
      }
      c.Volumes = vols;
      return { config: c, comment: `VOLUME ${goList(paths)}`, separateNop: true };
    }
    case 'user': {
      c.User = word(ins.value);
      return { config: c, comment: `USER ${c.User}`, separateNop: true };
    }
    case 'workdir': {
      const p = word(ins.value);
      c.WorkingDir = path.posix.isAbsolute(p) ? path.posix.normalize(p) : path.posix.join('/', c.WorkingDir || '/', p);
      if (c.WorkingDir.length > 1) c.WorkingDir = c.WorkingDir.replace(/\/+$/, '');
      return { config: c, comment: `WORKDIR ${c.WorkingDir}`, separateNop: false };
    }
    case 'stopsignal': {
      const sig = word(ins.value);
      if (!SIGNAL_RE.test(sig)) throw new InvalidArgumentError(`Invalid signal: ${sig}`, { line: ins.line.startLine });
      c.StopSignal = sig;
      return { config: c, comment: `STOPSIGNAL ${sig}`, separateNop: true };
    }
    case 'cmd': {
      const cmd = 'json' in ins.command ? ins.command.json : [...shellOf(c), ins.command.shell];
      c.Cmd = cmd;
      return { config: c, comment: `CMD ${goQuoteList(cmd)}`, separateNop: true };
    }
    case 'entrypoint': {
      const ep = 'json' in ins.command ? ins.command.json : [...shellOf(c), ins.command.shell];
      c.Entrypoint = ep.length === 0 ? null : ep;
      // An ENTRYPOINT drops the base image's CMD unless this stage set one.
      if (!cmdSet) c.Cmd = null;
      return { config: c, comment: `ENTRYPOINT ${goQuoteList(ep)}`, separateNop: true };
    }
    case 'healthcheck': {
      let note: string | undefined;
      const old = c.Healthcheck as { Test?: string[] } | undefined;
      if (old?.Test && old.Test.length > 0 && old.Test[0] !== 'NONE') note = `Note: overriding previous HEALTHCHECK: ${goList(old.Test)}`;
      let hc: { Test: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number };
      if (ins.none) hc = { Test: ['NONE'] };
      else {
        hc = { Test: ins.command };
        const interval = durationFlag('interval', ins.interval);
        const timeout = durationFlag('timeout', ins.timeout);
        const start = durationFlag('start-period', ins.startPeriod);
        if (interval) hc.Interval = interval;
        if (timeout) hc.Timeout = timeout;
        if (start) hc.StartPeriod = start;
        if (ins.retries !== undefined) {
          const r = Number(ins.retries);
          if (!Number.isInteger(r)) throw new InvalidArgumentError(`strconv.ParseInt: parsing ${JSON.stringify(ins.retries)}: invalid syntax`, { flag: 'retries' });
          if (r < 1) throw new InvalidArgumentError('--retries cannot be 0 or negative', { flag: 'retries' });
          hc.Retries = r;
        }
      }
      c.Healthcheck = hc;
      const text = `&{${goQuoteList(hc.Test)} "${goDuration(hc.Interval ?? 0)}" "${goDuration(hc.Timeout ?? 0)}" "${goDuration(hc.StartPeriod ?? 0)}" ${goQuoteRune(hc.Retries ?? 0)}}`;
      return { config: c, comment: `HEALTHCHECK ${text}`, separateNop: true, ...(note ? { note } : {}) };
    }
    case 'shell': {
      c.Shell = ins.shell;
      return { config: c, comment: `SHELL ${goList(ins.shell)}`, separateNop: true };
    }
    case 'onbuild': {
      c.OnBuild = [...(c.OnBuild ?? []), ins.expression];
      return { config: c, comment: `ONBUILD ${ins.expression}`, separateNop: true };
    }
    case 'maintainer': {
      return { config: c, comment: `MAINTAINER ${ins.value}`, separateNop: true, maintainer: ins.value };
    }
    default:
      throw new InvalidArgumentError(`${ins.kind.toUpperCase()} does not only change the config`, { line: ins.line.startLine });
  }
}

/** The run config a step is committed (and looked up in the cache) with: Cmd names the step. */
export function commentConfig(c: ContainerConfig, comment: string, separateNop: boolean): ContainerConfig {
  const out = copyConfig(c);
  out.Cmd = separateNop ? [...shellOf(c), '#(nop) ', comment] : [...shellOf(c), `#(nop) ${comment}`];
  return out;
}
