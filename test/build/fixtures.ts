/**
 * Build contexts for the builder's tests: files with several modes, a nested directory, a symlink, a
 * gzip archive for ADD, a .dockerignore with an exception, a root filesystem with /etc/passwd and
 * /etc/group for --chown by name, and Dockerfiles that use every instruction the builder supports.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const BASE_DOCKERFILE = `FROM scratch
COPY rootfs/ /
ENV PATH=/bin
ONBUILD LABEL from.onbuild=yes
ONBUILD COPY a.txt /onbuild/
`;

/** Needs the image \`base:1\` built from BASE_DOCKERFILE (ONBUILD triggers run when it is used). */
export const MAIN_DOCKERFILE = `# syntax=docker/dockerfile:1
ARG BASE=base:1
ARG WHO
FROM \${BASE} AS build
ARG VERSION=1.0
ARG WHO
ENV APP_HOME=/srv/app \\
    GREETING="hello world" V=\${VERSION:-none} ALT=\${WHO:+set}
# a comment inside the stage
LABEL org.example.version=$VERSION "quoted key"="quoted value" multi=a\\ b
WORKDIR $APP_HOME
COPY a.txt b.txt ./
COPY src /srv/src/
COPY --chown=app:staff run.sh bin/
COPY --chown=1000 *.txt /numeric/
ADD pkg.tar.gz /opt/pkg/
ADD a.txt /added
COPY logs /logs
COPY . /whole/
WORKDIR sub/dir
USER app
EXPOSE 8080 53/udp 9000-9001
VOLUME ["/data", "/cache"]
ENTRYPOINT ["/bin/tool", "--flag"]
CMD ["serve"]
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --timeout=3s --retries=3 CMD /bin/tool check
SHELL ["/bin/sh", "-ec"]
ONBUILD ENV CHILD=1
FROM scratch AS final
COPY --from=build /srv/app /app
COPY --from=0 /opt/pkg/inner/f /f
COPY --from=base:1 /etc/passwd /etc/passwd
CMD echo final
`;

export const ESCAPE_DOCKERFILE = `# escape=\`
FROM base:1
ENV WIN=C:\\dir \`
    OTHER=x
LABEL a=\`$notvar b=\${UNSET:-dflt}
COPY a.txt C:\\odd\\
WORKDIR /w
WORKDIR rel
HEALTHCHECK NONE
ENTRYPOINT echo shell form
`;

/** More forms: legacy ENV/LABEL, several ARGs, SHELL before a shell-form CMD, MAINTAINER, globs over directories, a symlink source, ADD --chown. */
export const MORE_DOCKERFILE = `FROM base:1
MAINTAINER someone <someone@example.com>
ARG PORT=8080 NAME=app
ENV LEGACY value with spaces
LABEL legacy the rest of the line
ENV PORT_COPY=$PORT
EXPOSE $PORT \${PORT_COPY}/udp
USER \${NAME}:staff
VOLUME /a /b
COPY s* /globbed/
COPY src/link.c /linked
ADD --chown=1000:1000 pkg.tar.gz /owned/
COPY --chown=1234:777 b.txt /numeric
HEALTHCHECK --start-period=2m --retries=5 CMD ["/bin/tool", "health"]
STOPSIGNAL 9
SHELL ["/bin/tool", "-x"]
CMD run this
WORKDIR /srv
`;

/** Writes the context into `dir` (created). */
export function makeContext(dir: string): void {
  const w = (rel: string, text: string, mode = 0o644): void => {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
    fs.chmodSync(path.join(dir, rel), mode);
  };
  w('rootfs/etc/passwd', 'root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345:app:/home/app:/bin/sh\n');
  w('rootfs/etc/group', 'root:x:0:\nstaff:x:2345:\nwheel:x:777:\n');
  w('rootfs/bin/tool', 'bin\n', 0o755);
  w('a.txt', 'hello\n');
  w('b.txt', 'b\n');
  w('run.sh', '#!/bin/sh\n', 0o750);
  w('src/one.c', 's1\n');
  w('src/sub/two.c', 's2\n');
  fs.chmodSync(path.join(dir, 'src/sub'), 0o700);
  fs.mkdirSync(path.join(dir, 'src/empty'));
  fs.symlinkSync('one.c', path.join(dir, 'src/link.c'));
  w('logs/x.log', 'log\n');
  w('logs/keep.log', 'keep\n');
  w('x.tmp', 'tmp\n');
  w('.dockerignore', 'logs\n!logs/keep.log\n*.tmp\n');
  const arch = path.join(dir, '.arch');
  fs.mkdirSync(path.join(arch, 'inner'), { recursive: true });
  fs.writeFileSync(path.join(arch, 'inner/f'), 'in\n');
  fs.chmodSync(path.join(arch, 'inner/f'), 0o600);
  execFileSync('tar', ['-czf', path.join(dir, 'pkg.tar.gz'), '--owner=0', '--group=0', '-C', arch, '.']);
  fs.rmSync(arch, { recursive: true });
  w('Dockerfile.base', BASE_DOCKERFILE);
  w('Dockerfile.main', MAIN_DOCKERFILE);
  w('Dockerfile.escape', ESCAPE_DOCKERFILE);
  w('Dockerfile.more', MORE_DOCKERFILE);
}

/** One line per path: type, permission bits, owner, link target or content hash (no times). */
export function treeFingerprint(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const abs = path.join(root, r);
      const st = fs.lstatSync(abs);
      const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : 'o';
      const extra = st.isSymbolicLink() ? fs.readlinkSync(abs) : st.isFile() ? fs.readFileSync(abs).toString('base64') : '';
      out.push(`${r} ${type} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${extra}`);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

/** The lines docker's build and ours print the same way (docker's CLI adds its own banner and context-size line). */
export const comparableBuildLines = (out: string): string[] => out.split('\n').filter((l) => /^Step \d+\/\d+ : |^ ---> Using cache$|^# Executing|^Successfully tagged/.test(l));
