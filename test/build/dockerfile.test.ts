/**
 * The Dockerfile's pieces without an image: parser directives and continuations, word processing and
 * substitution, instruction forms and their errors, .dockerignore matching, Go formatting of history
 * comments, and the config-only steps.
 */
import { describe, expect, it } from 'vitest';
import { applyConfigStep, commentConfig } from '../../src/build/config-steps.js';
import { isIgnored, parseDockerignore } from '../../src/build/dockerignore.js';
import { goDuration, goQuoteList, goQuoteRune, parseGoDuration } from '../../src/build/go-format.js';
import { toInstruction, type Instruction } from '../../src/build/instructions.js';
import { parseDockerfile } from '../../src/build/parser.js';
import { lookupIn, processWord, processWords, splitWords } from '../../src/build/words.js';

const one = (text: string): Instruction => {
  const p = parseDockerfile(text);
  return toInstruction(p.lines[0]!, p.directives.escape);
};

describe('Dockerfile parser', () => {
  it('reads directives only at the top, and the escape directive changes continuations', () => {
    const p = parseDockerfile('# syntax=docker/dockerfile:1\n# escape=`\nFROM scratch\nENV A=1 `\n  B=2\n# escape=\\\n');
    expect(p.directives).toEqual({ escape: '`', syntax: 'docker/dockerfile:1' });
    expect(p.lines.map((l) => l.original)).toEqual(['FROM scratch', 'ENV A=1   B=2']);
    expect(p.lines[1]).toMatchObject({ keyword: 'env', startLine: 4, endLine: 5 });
  });

  it('skips comments and blank lines, also inside a continued instruction, and warns on empty continuation lines', () => {
    const p = parseDockerfile('FROM scratch\n\n  # comment\nLABEL a=1 \\\n# inside\n\n    b=2\n');
    expect(p.lines.map((l) => l.original)).toEqual(['FROM scratch', 'LABEL a=1     b=2']);
    expect(p.warnings).toHaveLength(1);
  });

  it('refuses a bad or repeated escape directive with the line', () => {
    expect(() => parseDockerfile('# escape=x\nFROM scratch')).toThrow(/line 1: invalid ESCAPE 'x'/);
    expect(() => parseDockerfile('# escape=`\n# escape=`\nFROM scratch')).toThrow(/only one escape parser directive/);
  });

  it('refuses RUN, heredocs and unknown instructions naming the line', () => {
    expect(() => one('\n\nRUN echo hi')).toThrow(expect.objectContaining({ code: 'InvalidArgument', message: expect.stringMatching(/^RUN at line 3/) }));
    expect(() => one('COPY <<EOF /x')).toThrow(/heredoc at line 1/);
    expect(() => one('FROBNICATE x')).toThrow(/line 1: unknown instruction: FROBNICATE/);
  });
});

describe('word processing', () => {
  const env = lookupIn(['A=1', 'EMPTY=', 'SP=x y'], ['A=ignored', 'ARG=2']);

  it('substitutes $VAR, ${VAR}, ${VAR:-default} and ${VAR:+alternative} with ENV before ARG', () => {
    expect(processWord('$A-${ARG}-${NONE:-d}-${EMPTY:-e}-${A:+alt}-${NONE:+alt}', env)).toBe('1-2-d-e-alt-');
    expect(processWord('${NONE:-$A}', env)).toBe('1');
  });

  it('handles quotes and escapes as docker does', () => {
    expect(processWord(`'$A' "$A" \\$A "a\\"b" "c\\d"`, env)).toBe('$A 1 $A a"b c\\d');
    expect(processWord('a`$A', env, '`')).toBe('a$A');
    expect(() => processWord('"open', env)).toThrow(/double-quote/);
    expect(() => processWord('${A:?x}', env)).toThrow(/unsupported modifier/);
  });

  it('splits words on unquoted whitespace, including whitespace a substitution produces', () => {
    expect(processWords('80 $SP "a b"', env)).toEqual(['80', 'x', 'y', 'a b']);
    expect(splitWords('a="b c" d=e')).toEqual(['a="b c"', 'd=e']);
  });
});

describe('instructions', () => {
  it('parses FROM with --platform and AS, COPY flags and the JSON form', () => {
    expect(one('FROM --platform=linux/arm64 alpine AS Build')).toMatchObject({ kind: 'from', image: 'alpine', stage: 'build', platform: 'linux/arm64' });
    expect(one('COPY --from=build --chown=1:2 --chmod=640 ["a b", "c", "/d/"]')).toMatchObject({ kind: 'copy', from: 'build', chown: '1:2', chmod: '640', sources: ['a b', 'c'], dest: '/d/' });
    expect(() => one('COPY --nope=1 a b')).toThrow(/Unknown flag: nope/);
    expect(() => one('ADD --from=x a b')).toThrow(/Unknown flag: from/);
    expect(() => one('COPY onlyone')).toThrow(/at least two arguments/);
  });

  it('parses ENV and LABEL pairs, and the legacy one-pair form', () => {
    expect(one('ENV A=1 B="2 3"')).toMatchObject({ pairs: [['A', '1'], ['B', '"2 3"']] });
    expect(one('ENV NAME some value')).toMatchObject({ pairs: [['NAME', 'some value']] });
    expect(() => one('ENV A=1 B')).toThrow(/can't find = in "B"/);
  });

  it('parses HEALTHCHECK forms, SHELL and ONBUILD with their refusals', () => {
    expect(one('HEALTHCHECK --retries=2 CMD ["true"]')).toMatchObject({ none: false, command: ['CMD', 'true'], retries: '2' });
    expect(one('HEALTHCHECK CMD curl -f x')).toMatchObject({ command: ['CMD-SHELL', 'curl -f x'] });
    expect(one('HEALTHCHECK NONE')).toMatchObject({ none: true });
    expect(() => one('SHELL /bin/sh -c')).toThrow(/JSON form/);
    expect(() => one('ONBUILD ONBUILD ENV A=1')).toThrow(/Chaining ONBUILD/);
    expect(() => one('ONBUILD FROM x')).toThrow(/FROM isn't allowed as an ONBUILD trigger/);
  });
});

describe('.dockerignore', () => {
  const patterns = parseDockerignore('# comment\n/logs\n!logs/keep.log\n*.tmp\n**/*.bak\ndocs/[a-c]?.md\n');

  it('matches paths and their parents, with later exceptions winning', () => {
    expect(isIgnored(patterns, 'logs')).toBe(true);
    expect(isIgnored(patterns, 'logs/x.log')).toBe(true);
    expect(isIgnored(patterns, 'logs/keep.log')).toBe(false);
    expect(isIgnored(patterns, 'a.tmp')).toBe(true);
    expect(isIgnored(patterns, 'sub/a.tmp')).toBe(false);
    expect(isIgnored(patterns, 'deep/er/x.bak')).toBe(true);
    expect(isIgnored(patterns, 'x.bak')).toBe(true);
    expect(isIgnored(patterns, 'docs/b1.md')).toBe(true);
    expect(isIgnored(patterns, 'docs/d1.md')).toBe(false);
  });
});

describe('Go formatting of history comments', () => {
  it('quotes like %q and prints durations like time.Duration', () => {
    expect(goQuoteList(['/bin/sh', '-c', 'echo "hi"\t\x01é'])).toBe('["/bin/sh" "-c" "echo \\"hi\\"\\t\\x01é"]');
    expect(goQuoteRune(0)).toBe("'\\x00'");
    expect(goQuoteRune(3)).toBe("'\\x03'");
    expect(goDuration(0)).toBe('0s');
    expect(goDuration(90e9)).toBe('1m30s');
    expect(goDuration(1.5e9)).toBe('1.5s');
    expect(goDuration(100e6)).toBe('100ms');
    expect(goDuration(3723e9)).toBe('1h2m3s');
    expect(parseGoDuration('1m30s')).toBe(90e9);
    expect(parseGoDuration('10x')).toBeUndefined();
  });
});

describe('config-only steps', () => {
  const env = lookupIn([]);

  it('writes docker’s comments and updates the config', () => {
    const c0 = { Env: ['PATH=/bin'] };
    const envStep = applyConfigStep(c0, one('ENV PATH=/usr/bin:$PATH X="a b"'), lookupIn(c0.Env), '\\', false);
    expect(envStep.config.Env).toEqual(['PATH=/usr/bin:/bin', 'X=a b']);
    expect(commentConfig(envStep.config, envStep.comment, envStep.separateNop).Cmd).toEqual(['/bin/sh', '-c', '#(nop) ', 'ENV PATH=/usr/bin:/bin X=a b']);
    const ep = applyConfigStep({ Cmd: ['base'] }, one('ENTRYPOINT run it'), env, '\\', false);
    expect(ep.config).toMatchObject({ Entrypoint: ['/bin/sh', '-c', 'run it'], Cmd: null });
    expect(ep.comment).toBe('ENTRYPOINT ["/bin/sh" "-c" "run it"]');
    const exp = applyConfigStep({}, one('EXPOSE 80 53/udp 9000-9001'), env, '\\', false);
    expect(Object.keys(exp.config.ExposedPorts!).sort()).toEqual(['53/udp', '80/tcp', '9000/tcp', '9001/tcp']);
    expect(exp.comment).toBe('EXPOSE 53/udp 80 9000-9001');
    const hc = applyConfigStep({}, one('HEALTHCHECK --interval=5s --retries=3 CMD ["/bin/true"]'), env, '\\', false);
    expect(hc.comment).toBe('HEALTHCHECK &{["CMD" "/bin/true"] "5s" "0s" "0s" \'\\x03\'}');
    const wd = applyConfigStep({ WorkingDir: '/a' }, one('WORKDIR b/../c/'), env, '\\', false);
    expect(wd.config.WorkingDir).toBe('/a/c');
    expect(commentConfig(wd.config, wd.comment, wd.separateNop).Cmd).toEqual(['/bin/sh', '-c', '#(nop) WORKDIR /a/c']);
    expect(() => applyConfigStep({}, one('STOPSIGNAL not-a-signal'), env, '\\', false)).toThrow(/Invalid signal/);
  });
});
