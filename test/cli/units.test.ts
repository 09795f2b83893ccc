// The pieces of the command line that need no store: parser, human forms, tables, templates, progress.
import { describe, expect, it } from 'vitest';
import { parseArgs, type OptionSpec } from '../../src/cli/args.js';
import { ellipsis, formatG, goTime, humanDuration, humanSize, humanSize4, shortId } from '../../src/cli/humanize.js';
import { ProgressDisplay, progressBar } from '../../src/cli/progress.js';
import { alignTabs, renderTable } from '../../src/cli/table.js';
import { parseTemplate } from '../../src/cli/template.js';
import { UsageError } from '../../src/cli/usage.js';
import { imageRows } from '../../src/cli/commands/images.js';
import { eventLine } from '../../src/cli/commands/events.js';

const SPECS: OptionSpec[] = [
  { name: 'all', short: 'a', type: 'bool', help: '' },
  { name: 'force', short: 'f', type: 'bool', help: '' },
  { name: 'quiet', short: 'q', type: 'bool', help: '' },
  { name: 'format', type: 'string', help: '' },
  { name: 'filter', short: 'F', type: 'list', help: '' },
  { name: 'platform', type: 'string', help: '', default: 'linux/amd64' },
];

function usageError(fn: () => unknown): UsageError {
  try { fn(); } catch (e) { if (e instanceof UsageError) return e; throw e; }
  throw new Error('expected a UsageError');
}

describe('argument parser', () => {
  it('combines short booleans (-af) and keeps positional order', () => {
    const p = parseArgs(['-af', 'one', 'two'], SPECS);
    expect(p.bool('all')).toBe(true);
    expect(p.bool('force')).toBe(true);
    expect(p.bool('quiet')).toBe(false);
    expect(p.args).toEqual(['one', 'two']);
  });
  it('takes values as --name value, --name=value, -Fvalue, -F value, and a value flag last in a group', () => {
    const p = parseArgs(['--format', 'json', '--filter=a=1', '-Fb=2', '-F', 'c=3', '-qF', 'd=4'], SPECS);
    expect(p.string('format')).toBe('json');
    expect(p.list('filter')).toEqual(['a=1', 'b=2', 'c=3', 'd=4']);
    expect(p.bool('quiet')).toBe(true);
  });
  it('accepts options after positional arguments and stops at --', () => {
    const p = parseArgs(['img', '-f', '--', '-q', '--all'], SPECS);
    expect(p.bool('force')).toBe(true);
    expect(p.bool('quiet')).toBe(false);
    expect(p.args).toEqual(['img', '-q', '--all']);
  });
  it('parses --bool=false and rejects a bad boolean with docker\'s message', () => {
    expect(parseArgs(['--all=false'], SPECS).bool('all')).toBe(false);
    expect(parseArgs(['--all=false'], SPECS).has('all')).toBe(true);
    const e = usageError(() => parseArgs(['--all=maybe'], SPECS));
    expect(e.message).toBe('invalid argument "maybe" for "-a, --all" flag: strconv.ParseBool: parsing "maybe": invalid syntax');
    expect(e.exitCode).toBe(125);
  });
  it('reports unknown flags and missing values as usage errors (exit 125)', () => {
    expect(usageError(() => parseArgs(['--nope'], SPECS)).message).toBe('unknown flag: --nope');
    expect(usageError(() => parseArgs(['-ax'], SPECS)).message).toBe("unknown shorthand flag: 'x' in -ax");
    expect(usageError(() => parseArgs(['--format'], SPECS)).message).toBe('flag needs an argument: --format');
    expect(usageError(() => parseArgs(['-F'], SPECS)).message).toBe("flag needs an argument: 'F' in -F");
    expect(usageError(() => parseArgs(['--nope'], SPECS)).exitCode).toBe(125);
  });
  it('stops at the first positional argument for global options, and applies defaults', () => {
    const p = parseArgs(['-a', 'images', '-q'], SPECS, { stopAtFirstArg: true });
    expect(p.bool('all')).toBe(true);
    expect(p.args).toEqual(['images', '-q']);
    expect(p.string('platform')).toBe('linux/amd64');
    expect(p.string('format')).toBeUndefined();
  });
  it('treats a lone dash as an argument', () => {
    expect(parseArgs(['-'], SPECS).args).toEqual(['-']);
  });
});

describe('human forms (docker go-units)', () => {
  it('formats sizes with 1000-based units and 3 significant digits', () => {
    expect(humanSize(0)).toBe('0B');
    expect(humanSize(999)).toBe('999B');
    expect(humanSize(1000)).toBe('1kB');
    expect(humanSize(7_796_000)).toBe('7.8MB');
    expect(humanSize(5_590_000)).toBe('5.59MB');
    expect(humanSize(123_456_789)).toBe('123MB');
    expect(humanSize(1_234_567_890)).toBe('1.23GB');
    expect(humanSize4(7_796_123)).toBe('7.796MB');
    expect(humanSize4(116_100_000)).toBe('116.1MB');
  });
  it('follows Go %g', () => {
    expect(formatG(999.7, 3)).toBe('1e+03');
    expect(formatG(0.0001234, 3)).toBe('0.000123');
    expect(formatG(12, 3)).toBe('12');
    expect(formatG(1.5, 4)).toBe('1.5');
  });
  it('formats durations like docker', () => {
    expect(humanDuration(500)).toBe('Less than a second');
    expect(humanDuration(1000)).toBe('1 second');
    expect(humanDuration(45_000)).toBe('45 seconds');
    expect(humanDuration(61_000)).toBe('About a minute');
    expect(humanDuration(30 * 60_000)).toBe('30 minutes');
    expect(humanDuration(65 * 60_000)).toBe('About an hour');
    expect(humanDuration(2 * 3_600_000)).toBe('2 hours');
    expect(humanDuration(3 * 86_400_000)).toBe('3 days');
    expect(humanDuration(21 * 86_400_000)).toBe('3 weeks');
    expect(humanDuration(90 * 86_400_000)).toBe('3 months');
    expect(humanDuration(3 * 365 * 86_400_000)).toBe('3 years');
  });
  it('shortens IDs and text', () => {
    expect(shortId('sha256:0123456789abcdef0123')).toBe('0123456789ab');
    expect(shortId('<missing>')).toBe('<missing>');
    expect(ellipsis('abcdef', 4)).toBe('abc…');
    expect(ellipsis('abc', 4)).toBe('abc');
    expect(goTime(0)).toBe('1970-01-01 00:00:00 +0000 UTC');
  });
});

describe('tables', () => {
  it('pads columns like tabwriter(minwidth 10, padding 3) and leaves the last column free', () => {
    const text = renderTable(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], [['alpine', 'latest', 'c059bfaa849c', '2 months ago', '5.59MB']]);
    expect(text).toBe(
      'REPOSITORY   TAG       IMAGE ID       CREATED        SIZE\n' +
      'alpine       latest    c059bfaa849c   2 months ago   5.59MB\n',
    );
  });
  it('counts characters, not bytes', () => {
    expect(alignTabs(['ab…\tx', 'a\ty'])).toBe('ab…       x\na         y\n');
  });
});

describe('templates', () => {
  const data = { ID: 'abc', RepoTags: ['a:1', 'b:2'], Labels: { k: 'v' }, Size: 12, Config: { Cmd: ['/bin/sh'] } };
  it('prints fields, nested fields, json, join, index, len, upper and pipes', () => {
    expect(parseTemplate('{{.ID}} {{.Size}}').execute(data)).toBe('abc 12');
    expect(parseTemplate('{{json .Config.Cmd}}').execute(data)).toBe('["/bin/sh"]');
    expect(parseTemplate('{{join .RepoTags ","}}').execute(data)).toBe('a:1,b:2');
    expect(parseTemplate('{{index .Labels "k"}} {{len .RepoTags}}').execute(data)).toBe('v 2');
    expect(parseTemplate('{{.ID | upper}}').execute(data)).toBe('ABC');
    expect(parseTemplate('{{.RepoTags}} {{.Labels}}').execute(data)).toBe('[a:1 b:2] map[k:v]');
    expect(parseTemplate('{{.Nope}}').execute(data)).toBe('<no value>');
  });
  it('knows docker\'s table prefix and \\t escapes', () => {
    const t = parseTemplate('table {{.ID}}\\t{{.Size}}');
    expect(t.table).toBe(true);
    expect(t.execute(data)).toBe('abc\t12');
  });
  it('rejects unknown functions and unclosed actions', () => {
    expect(() => parseTemplate('{{nope .ID}}').execute(data)).toThrow(/function "nope" not defined/);
    expect(() => parseTemplate('{{.ID')).toThrow(/unclosed action/);
  });
});

describe('progress display', () => {
  const capture = (tty: boolean, columns = 120) => {
    let text = '';
    return { out: { write: (s: string) => { text += s; }, isTTY: tty, columns }, text: () => text };
  };
  it('draws docker\'s bar', () => {
    expect(progressBar({ current: 12_300_000, total: 45_600_000 }, 120)).toBe(`[=============>${' '.repeat(37)}]   12.3MB/45.6MB`);
    expect(progressBar({ current: 5, total: 10 }, 80)).toBe('      5B/10B');
    expect(progressBar({}, 120)).toBe('');
  });
  it('prints only state changes off a terminal', () => {
    const c = capture(false);
    const d = new ProgressDisplay(c.out);
    d.write({ id: 'latest', status: 'Pulling from demo/hello' });
    d.write({ id: 'abc123def456', status: 'Pulling fs layer', progressDetail: {} });
    d.write({ id: 'abc123def456', status: 'Downloading', progressDetail: { current: 10, total: 100 } });
    d.write({ id: 'abc123def456', status: 'Pull complete', progressDetail: {} });
    d.write({ status: 'Digest: sha256:00' });
    d.write({ aux: {} } as never);
    expect(c.text()).toBe('latest: Pulling from demo/hello\nabc123def456: Pulling fs layer\nabc123def456: Pull complete\nDigest: sha256:00\n');
  });
  it('redraws each layer\'s line in place on a terminal', () => {
    const c = capture(true);
    const d = new ProgressDisplay(c.out);
    d.write({ id: 'aaaaaaaaaaaa', status: 'Pulling fs layer', progressDetail: {} });
    d.write({ id: 'bbbbbbbbbbbb', status: 'Pulling fs layer', progressDetail: {} });
    d.write({ id: 'aaaaaaaaaaaa', status: 'Downloading', progressDetail: { current: 50, total: 100 } });
    const t = c.text();
    // Second update of the first layer: two lines up, redraw, two lines down.
    expect(t).toContain('\x1b[2A\x1b[2K\raaaaaaaaaaaa: Downloading [=========================>');
    expect(t.endsWith('\x1b[2B')).toBe(true);
    expect(t.split('\n').length - 1).toBe(2);
  });
});

describe('image rows (docker\'s formatter)', () => {
  const base = { ParentId: '', Created: Math.trunc(Date.now() / 1000) - 7200, Size: 7_796_000, SharedSize: -1, Labels: {}, Containers: 0 };
  it('makes one row per tag, hides digests unless asked, and shows dangling images as <none>', () => {
    const d = 'sha256:' + 'a'.repeat(64);
    const rows = imageRows([
      { ...base, Id: 'sha256:' + '1'.repeat(64), RepoTags: ['alpine:latest', 'alpine:3', 'localhost:5000/x:1'], RepoDigests: [`alpine@${d}`] },
      { ...base, Id: 'sha256:' + '2'.repeat(64), RepoTags: [], RepoDigests: [] },
      { ...base, Id: 'sha256:' + '3'.repeat(64), RepoTags: [], RepoDigests: [`busybox@${d}`] },
    ], { trunc: true, digests: false });
    expect(rows.map((r) => `${r.Repository} ${r.Tag} ${r.Digest} ${r.ID} ${r.CreatedSince} ${r.Size}`)).toEqual([
      'alpine latest <none> 111111111111 2 hours ago 7.8MB',
      'alpine 3 <none> 111111111111 2 hours ago 7.8MB',
      'localhost:5000/x 1 <none> 111111111111 2 hours ago 7.8MB',
      '<none> <none> <none> 222222222222 2 hours ago 7.8MB',
      'busybox <none>  333333333333 2 hours ago 7.8MB',
    ]);
    const withDigests = imageRows([{ ...base, Id: 'sha256:' + '1'.repeat(64), RepoTags: ['alpine:latest'], RepoDigests: [`alpine@${d}`] }], { trunc: false, digests: true });
    expect(withDigests[0]!.Digest).toBe(d);
    expect(withDigests[0]!.ID).toBe('sha256:' + '1'.repeat(64));
  });
});

describe('event lines', () => {
  it('prints docker\'s default event form with sorted attributes', () => {
    const line = eventLine({ Type: 'image', Action: 'pull', Actor: { ID: 'alpine:latest', Attributes: { name: 'alpine', b: '1' } }, scope: 'local', time: 1700000000, timeNano: 1700000000123456768 });
    expect(line).toBe('2023-11-14T22:13:20.123456768Z image pull alpine:latest (b=1, name=alpine)');
  });
});

describe('image rows in templates', () => {
  it('expose docker\'s formatter fields to {{json .}}', () => {
    const [row] = imageRows([{ Id: 'sha256:' + '1'.repeat(64), ParentId: '', RepoTags: ['a:1'], RepoDigests: [], Created: 0, Size: 1000, SharedSize: -1, Labels: {}, Containers: -1 }], { trunc: true, digests: false });
    const json = JSON.parse(parseTemplate('{{json .}}').execute(row)) as Record<string, string>;
    expect(json).toMatchObject({ ID: '111111111111', Repository: 'a', Tag: '1', Digest: '<none>', Size: '1kB', SharedSize: 'N/A', Containers: 'N/A', CreatedAt: '1970-01-01 00:00:00 +0000 UTC' });
  });
});
