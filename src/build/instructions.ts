/**
 * Typed Dockerfile instructions from parsed lines: flags, JSON or shell forms, KEY=VALUE lists.
 * Arguments stay as written; variables are substituted when a step runs (they depend on the state).
 */
import { InvalidArgumentError } from '../errors/index.js';
import { parseError, type ParsedLine } from './parser.js';
import { splitWords } from './words.js';

interface Base { line: ParsedLine }
/** Either the JSON (exec) form or the shell form of CMD, ENTRYPOINT and HEALTHCHECK commands. */
export type CommandForm = { json: string[] } | { shell: string };

export type Instruction = Base & (
  | { kind: 'from'; image: string; stage?: string; platform?: string }
  | { kind: 'arg'; args: Array<{ key: string; value?: string }> }
  | { kind: 'env' | 'label'; pairs: Array<[string, string]> }
  | { kind: 'copy' | 'add'; sources: string[]; dest: string; from?: string; chown?: string; chmod?: string }
  | { kind: 'workdir' | 'user' | 'stopsignal' | 'maintainer'; value: string }
  | { kind: 'expose'; ports: string[] }
  | { kind: 'volume'; paths: string[] }
  | { kind: 'cmd' | 'entrypoint'; command: CommandForm }
  | { kind: 'healthcheck'; none: true }
  | { kind: 'healthcheck'; none: false; command: string[]; interval?: string; timeout?: string; startPeriod?: string; retries?: string }
  | { kind: 'shell'; shell: string[] }
  | { kind: 'onbuild'; expression: string }
);

const KNOWN = new Set(['from', 'arg', 'env', 'label', 'copy', 'add', 'workdir', 'user', 'stopsignal', 'maintainer', 'expose', 'volume', 'cmd', 'entrypoint', 'healthcheck', 'shell', 'onbuild', 'run']);

const FLAGS: Record<string, string[]> = {
  from: ['platform'], copy: ['from', 'chown', 'chmod'], add: ['chown', 'chmod'],
  healthcheck: ['interval', 'timeout', 'start-period', 'retries'],
};

/** Leading `--name=value` flags (until `--` or the first other word). */
function takeFlags(line: ParsedLine): { flags: Record<string, string>; rest: string } {
  const allowed = FLAGS[line.keyword] ?? [];
  const flags: Record<string, string> = {};
  let rest = line.rest;
  for (;;) {
    const m = /^--([^\s=]*)(=(\S*))?(\s+|$)/.exec(rest);
    if (!m) break;
    rest = rest.slice(m[0].length);
    if (m[1] === '') break; // `--` ends the flags
    const name = m[1]!;
    if (!allowed.includes(name)) throw parseError(line.startLine, `Unknown flag: ${name}`);
    if (m[2] === undefined) throw parseError(line.startLine, `Missing a value on flag: ${name}`);
    if (name in flags) throw parseError(line.startLine, `Duplicate flag specified: ${name}`);
    flags[name] = m[3]!;
  }
  return { flags, rest };
}

/** A JSON array of strings, or undefined when the text is not one (then it is the shell form). */
export function jsonArray(text: string): string[] | undefined {
  const t = text.trim();
  if (!t.startsWith('[')) return undefined;
  try {
    const v: unknown = JSON.parse(t);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch { /* shell form */ }
  return undefined;
}

const commandForm = (text: string): CommandForm => {
  const j = jsonArray(text);
  return j ? { json: j } : { shell: text };
};

/** KEY=VALUE pairs (quotes kept for later processing); the legacy `KEY VALUE` form for ENV and LABEL. */
function keyValues(line: ParsedLine, escape: string, what: string): Array<[string, string]> {
  const words = splitWords(line.rest, escape);
  if (words.length === 0) throw parseError(line.startLine, `${what} requires at least one argument`);
  if (!words[0]!.includes('=')) {
    // Legacy form: the first word is the name and the rest of the line the value.
    const m = /^(\S+)\s*([\s\S]*)$/.exec(line.rest)!;
    if (m[2] === '') throw parseError(line.startLine, `${what} must have two arguments`);
    return [[m[1]!, m[2]!]];
  }
  return words.map((w) => {
    const i = w.indexOf('=');
    if (i < 0) throw parseError(line.startLine, `Syntax error - can't find = in "${w}". Must be of the form: name=value`);
    if (i === 0) throw parseError(line.startLine, `${what} names can not be blank`);
    return [w.slice(0, i), w.slice(i + 1)] as [string, string];
  });
}

/** The heredoc syntax (`<<EOF`) of newer frontends: the classic builder has no such thing. */
const HEREDOC_RE = /(^|\s)<<-?\s*["']?[A-Za-z_][A-Za-z0-9_]*["']?(\s|$)/;

/** One parsed line to its instruction. RUN, heredocs and unknown keywords are refused with the line. */
export function toInstruction(line: ParsedLine, escape: string): Instruction {
  const k = line.keyword;
  if (!KNOWN.has(k)) throw parseError(line.startLine, `unknown instruction: ${line.original.split(/\s/)[0]!.toUpperCase()}`);
  if (k === 'run') {
    throw new InvalidArgumentError(`RUN at line ${line.startLine} (${line.original}) needs a container to run a process: stowage build makes images from Dockerfiles without RUN`, { line: line.startLine, reason: 'run-unsupported' });
  }
  if ((k === 'copy' || k === 'add') && HEREDOC_RE.test(line.rest)) {
    throw new InvalidArgumentError(`heredoc at line ${line.startLine} (${line.original}): heredocs need BuildKit's Dockerfile frontend; the classic builder refuses them`, { line: line.startLine, reason: 'heredoc-unsupported' });
  }
  const { flags, rest } = takeFlags(line);
  const upper = k.toUpperCase();
  const need = (cond: boolean, msg: string): void => { if (!cond) throw parseError(line.startLine, msg); };
  switch (k) {
    case 'from': {
      const w = rest.trim().split(/\s+/).filter(Boolean);
      need(w.length === 1 || (w.length === 3 && w[1]!.toLowerCase() === 'as'), 'FROM requires either one or three arguments');
      return { kind: 'from', line, image: w[0]!, ...(w.length === 3 ? { stage: w[2]!.toLowerCase() } : {}), ...(flags.platform !== undefined ? { platform: flags.platform } : {}) };
    }
    case 'arg': {
      const words = splitWords(rest, escape);
      need(words.length > 0, 'ARG requires at least one argument');
      return {
        kind: 'arg', line,
        args: words.map((w) => {
          const i = w.indexOf('=');
          return i < 0 ? { key: w } : { key: w.slice(0, i), value: w.slice(i + 1) };
        }),
      };
    }
    case 'env': case 'label':
      return { kind: k, line, pairs: keyValues(line, escape, upper) };
    case 'copy': case 'add': {
      const words = jsonArray(rest) ?? rest.trim().split(/\s+/).filter(Boolean);
      need(words.length >= 2, `${upper} requires at least two arguments, but only one was provided. Destination could not be determined.`);
      return {
        kind: k, line, sources: words.slice(0, -1), dest: words[words.length - 1]!,
        ...(flags.from !== undefined ? { from: flags.from } : {}),
        ...(flags.chown !== undefined ? { chown: flags.chown } : {}),
        ...(flags.chmod !== undefined ? { chmod: flags.chmod } : {}),
      };
    }
    case 'workdir': case 'user': case 'stopsignal': case 'maintainer': {
      const v = rest.trim();
      need(v !== '', `${upper} requires exactly one argument`);
      if (k !== 'maintainer') need(!/\s/.test(v) || k === 'workdir', `${upper} requires exactly one argument`);
      return { kind: k, line, value: v };
    }
    case 'expose': {
      const ports = rest.trim().split(/\s+/).filter(Boolean);
      need(ports.length > 0, 'EXPOSE requires at least one argument');
      return { kind: 'expose', line, ports };
    }
    case 'volume': {
      const paths = jsonArray(rest) ?? rest.trim().split(/\s+/).filter(Boolean);
      need(paths.length > 0, 'VOLUME requires at least one argument');
      return { kind: 'volume', line, paths };
    }
    case 'cmd': case 'entrypoint':
      return { kind: k, line, command: commandForm(rest) };
    case 'healthcheck': {
      const words = rest.trim().split(/\s+/);
      const type = (words[0] ?? '').toUpperCase();
      if (type === 'NONE') {
        need(words.length === 1, 'HEALTHCHECK NONE takes no arguments');
        need(Object.keys(flags).length === 0, 'HEALTHCHECK NONE takes no flags');
        return { kind: 'healthcheck', line, none: true };
      }
      need(type === 'CMD', `Unknown type "${type}" in HEALTHCHECK (try CMD)`);
      const cmdText = rest.trim().slice(3).trim();
      need(cmdText !== '', 'Missing command after HEALTHCHECK CMD');
      const form = commandForm(cmdText);
      return {
        kind: 'healthcheck', line, none: false,
        command: 'json' in form ? ['CMD', ...form.json] : ['CMD-SHELL', form.shell],
        ...(flags.interval !== undefined ? { interval: flags.interval } : {}),
        ...(flags.timeout !== undefined ? { timeout: flags.timeout } : {}),
        ...(flags['start-period'] !== undefined ? { startPeriod: flags['start-period'] } : {}),
        ...(flags.retries !== undefined ? { retries: flags.retries } : {}),
      };
    }
    case 'shell': {
      const j = jsonArray(rest);
      need(j !== undefined, 'SHELL requires the arguments to be in JSON form');
      need(j!.length > 0, 'SHELL requires at least one argument');
      return { kind: 'shell', line, shell: j! };
    }
    case 'onbuild': {
      const expr = rest.trim();
      const trig = (expr.split(/\s/)[0] ?? '').toUpperCase();
      need(expr !== '', 'ONBUILD requires at least one argument');
      need(trig !== 'ONBUILD', "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
      need(trig !== 'FROM' && trig !== 'MAINTAINER', `${trig} isn't allowed as an ONBUILD trigger`);
      return { kind: 'onbuild', line, expression: expr };
    }
  }
  throw parseError(line.startLine, `unknown instruction: ${upper}`);
}
