// The `--change` parser shared by import, commit and the Engine API: docker's allowed set, forms and errors.
import { describe, expect, it } from 'vitest';
import { CHANGE_COMMANDS, applyChanges } from '../../src/images/index.js';

describe('applyChanges', () => {
  it('applies every allowed instruction, with docker\'s forms', () => {
    const c = applyChanges({ Env: ['PATH=/bin', 'HOME=/root'], Cmd: ['old'] }, [
      'env A=1 B="two words" C=$HOME/x',
      'ENV LEGACY value with spaces',
      'LABEL "com.example.a"=b c=d',
      'EXPOSE 80 53/udp 8000-8001/tcp',
      'WORKDIR /srv',
      'WORKDIR app',
      'USER nobody',
      'VOLUME /a /b',
      'VOLUME ["/c"]',
      'STOPSIGNAL 9',
      'ONBUILD add . /src',
      'HEALTHCHECK --interval=30s --timeout=1m30s --retries=3 CMD curl -f http://localhost/',
    ]);
    expect(c.Env).toEqual(['PATH=/bin', 'HOME=/root', 'A=1', 'B=two words', 'C=/root/x', 'LEGACY=value with spaces']);
    expect(c.Labels).toEqual({ 'com.example.a': 'b', c: 'd' });
    expect(c.ExposedPorts).toEqual({ '80/tcp': {}, '53/udp': {}, '8000/tcp': {}, '8001/tcp': {} });
    expect(c.WorkingDir).toBe('/srv/app');
    expect(c.User).toBe('nobody');
    expect(c.Volumes).toEqual({ '/a': {}, '/b': {}, '/c': {} });
    expect(c.StopSignal).toBe('9');
    expect(c.OnBuild).toEqual(['ADD . /src']);
    expect(c.Healthcheck).toEqual({ Interval: 30e9, Timeout: 90e9, Retries: 3, Test: ['CMD-SHELL', 'curl -f http://localhost/'] });
    expect(c.Cmd).toEqual(['old']);
  });

  it('CMD and ENTRYPOINT: exec and shell forms; a new ENTRYPOINT drops an inherited CMD', () => {
    expect(applyChanges({}, ['CMD ["a", "b"]']).Cmd).toEqual(['a', 'b']);
    expect(applyChanges({}, ['CMD echo $HOME']).Cmd).toEqual(['/bin/sh', '-c', 'echo $HOME']);
    expect(applyChanges({ Cmd: ['x'] }, ['ENTRYPOINT ["/e"]'])).toMatchObject({ Entrypoint: ['/e'], Cmd: null });
    expect(applyChanges({}, ['CMD ["x"]', 'ENTRYPOINT ["/e"]'])).toMatchObject({ Entrypoint: ['/e'], Cmd: ['x'] });
    expect(applyChanges({}, ['HEALTHCHECK NONE']).Healthcheck).toEqual({ Test: ['NONE'] });
  });

  it('leaves the input alone and takes lines joined with newlines and continuations', () => {
    const base = { Env: ['A=0'] };
    expect(applyChanges(base, ['ENV A=1\nLABEL x=\\\n  y'])).toMatchObject({ Env: ['A=1'], Labels: { x: 'y' } });
    expect(base).toEqual({ Env: ['A=0'] });
  });

  it('refuses the rest with docker\'s messages (InvalidArgument)', () => {
    expect(CHANGE_COMMANDS).toContain('healthcheck');
    const cases: Array<[string, string]> = [
      ['RUN make', 'run is not a valid change command'],
      ['FROM alpine', 'from is not a valid change command'],
      ['COPY a b', 'copy is not a valid change command'],
      ['ONBUILD ONBUILD RUN x', 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed'],
      ['ONBUILD FROM x', 'FROM isn\'t allowed as an ONBUILD trigger'],
      ['USER a b', 'USER requires exactly one argument'],
      ['WORKDIR', 'WORKDIR requires exactly one argument'],
      ['EXPOSE', 'EXPOSE requires at least one argument'],
      ['EXPOSE 99999', 'Invalid containerPort: 99999'],
      ['STOPSIGNAL SIGNOPE', 'Invalid signal: SIGNOPE'],
      ['ENV', 'ENV requires at least one argument'],
      ['LABEL novalue', 'LABEL requires at least one argument'],
      ['HEALTHCHECK --interval=abc CMD x', 'time: invalid duration "abc" for flag --interval'],
      ['HEALTHCHECK --retries=-1 CMD x', '--retries cannot be negative'],
      ['HEALTHCHECK RUN x', 'Unknown type "RUN" in HEALTHCHECK (try CMD)'],
    ];
    for (const [line, message] of cases) {
      let err: unknown;
      try { applyChanges({}, [line]); } catch (e) { err = e; }
      expect(err, line).toMatchObject({ code: 'InvalidArgument', message });
    }
  });
});
