import path from 'node:path';
import { InvalidArgumentError } from '../errors/index.js';
import type { ContainerConfig } from './types.js';

/**
 * Dockerfile lines applied to a container config, as `docker import -c`, `docker commit -c` and the
 * Engine API's `changes` parameter do (moby's BuildFromConfig). Only the instructions that change the
 * config are allowed; the others fail with docker's words ("run is not a valid change command").
 */
export const CHANGE_COMMANDS = [
  'cmd', 'entrypoint', 'env', 'expose', 'healthcheck', 'label', 'onbuild', 'stopsignal', 'user', 'volume', 'workdir',
] as const;

const ONBUILD_FORBIDDEN: Record<string, string> = {
  onbuild: 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed',
  from: 'FROM isn\'t allowed as an ONBUILD trigger',
  maintainer: 'MAINTAINER isn\'t allowed as an ONBUILD trigger',
};

const SIGNALS = new Set([
  'ABRT', 'ALRM', 'BUS', 'CHLD', 'CLD', 'CONT', 'FPE', 'HUP', 'ILL', 'INT', 'IO', 'IOT', 'KILL', 'PIPE', 'POLL',
  'PROF', 'PWR', 'QUIT', 'SEGV', 'STKFLT', 'STOP', 'SYS', 'TERM', 'TRAP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'USR1',
  'USR2', 'VTALRM', 'WINCH', 'XCPU', 'XFSZ',
]);

function bad(message: string, line?: string): InvalidArgumentError {
  return new InvalidArgumentError(message, line === undefined ? {} : { change: line });
}

/** Joins continuation lines (`\` at the end) and drops blanks and comments. */
function logicalLines(changes: readonly string[]): string[] {
  const out: string[] = [];
  let pending = '';
  for (const raw of changes.join('\n').split('\n')) {
    // A continued line starts where its text starts (the Dockerfile parser trims it).
    const line = pending === '' ? raw.replace(/\r$/, '') : raw.replace(/\r$/, '').trimStart();
    if (pending === '' && /^\s*(#|$)/.test(line)) continue;
    if (/\\\s*$/.test(line)) { pending += line.replace(/\\\s*$/, ''); continue; }
    out.push((pending + line).trim());
    pending = '';
  }
  if (pending.trim() !== '') out.push(pending.trim());
  return out;
}

/** A JSON array of strings (exec form), or undefined when the text is not one. */
function jsonArray(text: string): string[] | undefined {
  if (!text.startsWith('[')) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch { /* shell form */ }
  return undefined;
}

/** Splits on unquoted whitespace, removing quotes and backslash escapes (the Dockerfile word rules). */
function words(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: '"' | "'" | undefined;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < text.length) cur += text[++i];
      else cur += ch;
    } else if (ch === '"' || ch === "'") { quote = ch; inWord = true; }
    else if (ch === '\\' && i + 1 < text.length) { cur += text[++i]; inWord = true; }
    else if (/\s/.test(ch)) { if (inWord) { out.push(cur); cur = ''; inWord = false; } }
    else { cur += ch; inWord = true; }
  }
  if (quote) throw bad(`unexpected end of statement while looking for matching ${quote}`);
  if (inWord) out.push(cur);
  return out;
}

/** `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alt}` from the config's environment; `\$` stays literal. */
function expand(text: string, env: readonly string[]): string {
  const lookup = (name: string): string | undefined => {
    for (let i = env.length - 1; i >= 0; i--) {
      const e = env[i]!;
      const eq = e.indexOf('=');
      if ((eq < 0 ? e : e.slice(0, eq)) === name) return eq < 0 ? '' : e.slice(eq + 1);
    }
    return undefined;
  };
  return text.replace(/\\\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (m, braced?: string, op?: string, word?: string, bare?: string) => {
    if (m === '\\$') return '\\$';
    const name = braced ?? bare!;
    const v = lookup(name);
    if (op === '-') return v === undefined || v === '' ? word! : v;
    if (op === '+') return v === undefined || v === '' ? '' : word!;
    return v ?? '';
  });
}

/** `k=v k2="v 2"` pairs, or the legacy `k v w` (one pair, the rest is the value). */
function keyValues(cmd: string, args: string, env: readonly string[]): [string, string][] {
  const ws = words(args);
  if (ws.length === 0) throw bad(`${cmd.toUpperCase()} requires at least one argument`);
  if (!ws[0]!.includes('=')) {
    if (cmd === 'label' && ws.length === 1) throw bad('LABEL requires at least one argument');
    if (ws.length < 2) throw bad(`${cmd.toUpperCase()} must have two arguments`);
    const m = /^(\S+)\s+([\s\S]*)$/.exec(args.trim())!;
    return [[m[1]!, expand(words(m[2]!).join(' '), env)]];
  }
  return ws.map((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) throw bad(`Syntax error - can't find = in "${w}". Must be of the form: name=value`);
    const key = w.slice(0, eq);
    if (key === '') throw bad(`${cmd.toUpperCase()} names can not be blank`);
    return [expand(key, env), expand(w.slice(eq + 1), env)];
  });
}

function setEnv(env: string[], key: string, value: string): string[] {
  const out = env.filter((e) => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e) !== key);
  const at = env.findIndex((e) => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e) === key);
  const entry = `${key}=${value}`;
  if (at < 0) out.push(entry);
  else out.splice(at, 0, entry);
  return out;
}

/** One port spec: `80`, `80/tcp`, `8000-8002/udp` → `['80/tcp']`-style keys. */
function ports(spec: string): string[] {
  const m = /^(?:(?:\[[^\]]*\]|[^:]*):)?(?:(?:\d+(?:-\d+)?):)?(\d+)(?:-(\d+))?(?:\/([a-zA-Z]+))?$/.exec(spec);
  if (!m) throw bad(`Invalid containerPort: ${spec.split('/')[0]}`);
  const proto = (m[3] ?? 'tcp').toLowerCase();
  if (!['tcp', 'udp', 'sctp'].includes(proto)) throw bad(`Invalid proto: ${proto}`);
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (lo > 65535 || hi > 65535 || hi < lo) throw bad(`Invalid containerPort: ${spec.split('/')[0]}`);
  const out: string[] = [];
  for (let p = lo; p <= hi; p++) out.push(`${p}/${proto}`);
  return out;
}

/** Go duration text (`30s`, `1m30s`, `500ms`) in nanoseconds. */
function duration(flag: string, text: string): number {
  if (text === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  const unit: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let total = 0;
  let end = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) { total += Number(m[1]) * unit[m[2]!]!; end = re.lastIndex; }
  if (end !== text.length || end === 0) throw bad(`time: invalid duration "${text}" for flag --${flag}`);
  return Math.round(total);
}

function healthcheck(args: string): Record<string, unknown> {
  const rest = args.trim();
  if (/^none$/i.test(rest)) return { Test: ['NONE'] };
  const hc: Record<string, unknown> = {};
  let i = 0;
  const parts = rest.split(/\s+/);
  while (i < parts.length && parts[i]!.startsWith('--')) {
    const m = /^--([a-z-]+)=(.*)$/.exec(parts[i]!);
    if (!m) throw bad(`Unknown flag: ${parts[i]!.slice(2)}`);
    const [, flag, value] = m as unknown as [string, string, string];
    const field = ({ interval: 'Interval', timeout: 'Timeout', 'start-period': 'StartPeriod', 'start-interval': 'StartInterval' } as Record<string, string>)[flag];
    if (field) hc[field] = duration(flag, value);
    else if (flag === 'retries') {
      if (!/^-?\d+$/.test(value)) throw bad(`strconv.ParseInt: parsing "${value}": invalid syntax`);
      const n = Number(value);
      if (n < 0) throw bad('--retries cannot be negative');
      hc.Retries = n;
    } else throw bad(`Unknown flag: ${flag}`);
    i++;
  }
  const after = rest.split(/\s+/).slice(i).join(' ');
  const m = /^(\S+)\s*([\s\S]*)$/.exec(after);
  if (!m || m[1]!.toUpperCase() !== 'CMD') throw bad(`Unknown type "${m?.[1]?.toUpperCase() ?? ''}" in HEALTHCHECK (try CMD)`);
  const cmdArgs = m[2]!.trim();
  if (cmdArgs === '') throw bad('Missing command after HEALTHCHECK CMD');
  const exec = jsonArray(cmdArgs);
  hc.Test = exec ? ['CMD', ...exec] : ['CMD-SHELL', cmdArgs];
  return hc;
}

/**
 * Applies `changes` to a copy of `config` and returns it. Throws InvalidArgument with docker's message
 * for an instruction outside CHANGE_COMMANDS or a line that does not parse. Calling it on `{}` validates
 * the lines without a config (the Engine API server does that before reading a body).
 */
export function applyChanges(config: ContainerConfig, changes: readonly string[]): ContainerConfig {
  const c: ContainerConfig = structuredClone(config);
  const lines = logicalLines(changes);
  const parsed = lines.map((line) => {
    const m = /^(\S+)\s*([\s\S]*)$/.exec(line)!;
    return { line, cmd: m[1]!.toLowerCase(), args: m[2]!.trim() };
  });
  for (const p of parsed) {
    if (!(CHANGE_COMMANDS as readonly string[]).includes(p.cmd)) throw bad(`${p.cmd} is not a valid change command`, p.line);
  }
  let cmdSet = false;
  for (const { line, cmd, args } of parsed) {
    const env = c.Env ?? [];
    const upper = cmd.toUpperCase();
    switch (cmd) {
      case 'cmd':
      case 'entrypoint': {
        if (args === '' && cmd === 'entrypoint') { c.Entrypoint = null; break; }
        const exec = jsonArray(args);
        const value = exec ?? (args === '' ? [] : ['/bin/sh', '-c', args]);
        if (cmd === 'cmd') { c.Cmd = value; cmdSet = true; }
        else {
          c.Entrypoint = value;
          // Docker's rule: a new ENTRYPOINT drops an inherited CMD unless CMD was set alongside it.
          if (!cmdSet) c.Cmd = null;
        }
        break;
      }
      case 'env':
        for (const [k, v] of keyValues(cmd, args, env)) c.Env = setEnv(c.Env ?? [], k, v);
        break;
      case 'label': {
        const labels = { ...(c.Labels ?? {}) };
        for (const [k, v] of keyValues(cmd, args, env)) labels[k] = v;
        c.Labels = labels;
        break;
      }
      case 'expose': {
        const specs = words(args).map((w) => expand(w, env));
        if (specs.length === 0) throw bad('EXPOSE requires at least one argument', line);
        const exposed = { ...(c.ExposedPorts ?? {}) };
        for (const s of specs) for (const p of ports(s)) exposed[p] = {};
        c.ExposedPorts = exposed;
        break;
      }
      case 'user':
      case 'workdir':
      case 'stopsignal': {
        const ws = words(args);
        if (ws.length !== 1) throw bad(`${upper} requires exactly one argument`, line);
        const v = expand(ws[0]!, env);
        if (cmd === 'user') c.User = v;
        else if (cmd === 'workdir') c.WorkingDir = path.posix.isAbsolute(v) ? path.posix.normalize(v) : path.posix.join('/', c.WorkingDir ?? '/', v);
        else {
          const name = v.toUpperCase().replace(/^SIG/, '');
          const num = /^\d+$/.test(v) ? Number(v) : NaN;
          if (!(SIGNALS.has(name) || /^RTMIN(\+\d+)?$|^RTMAX(-\d+)?$/.test(name) || (num >= 1 && num <= 64))) throw bad(`Invalid signal: ${v}`, line);
          c.StopSignal = v;
        }
        break;
      }
      case 'volume': {
        const list = (jsonArray(args) ?? words(args)).map((w) => expand(w, env));
        if (list.length === 0) throw bad('VOLUME requires at least one argument', line);
        const vols = { ...(c.Volumes ?? {}) };
        for (const v of list) {
          if (v.trim() === '') throw bad('VOLUME specified can not be an empty string', line);
          vols[v] = {};
        }
        c.Volumes = vols;
        break;
      }
      case 'onbuild': {
        const m = /^(\S+)\s*([\s\S]*)$/.exec(args);
        if (!m) throw bad('ONBUILD requires at least one argument', line);
        const trigger = m[1]!.toLowerCase();
        if (ONBUILD_FORBIDDEN[trigger]) throw bad(ONBUILD_FORBIDDEN[trigger]!, line);
        c.OnBuild = [...(c.OnBuild ?? []), `${m[1]!.toUpperCase()} ${m[2]!}`.trim()];
        break;
      }
      case 'healthcheck':
        c.Healthcheck = healthcheck(args);
        break;
    }
  }
  return c;
}
