/** The fenced code blocks of a markdown text in one language, each with its final newline. */
export function readmeBlocks(markdown: string, lang: string): string[] {
  return [...markdown.matchAll(new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```$', 'gm'))].map((m) => m[1]!);
}

/** Every `ts` block of the README and the guides but the vitest example, each a module of its own. */
export function documentedSnippets(repo: string, read: (file: string) => string): Array<{ name: string; code: string }> {
  const sources = ['README.md', 'docs/guides/offline-cache.md', 'docs/guides/rootless-tooling.md', 'docs/guides/tests.md'];
  const out: Array<{ name: string; code: string }> = [];
  for (const file of sources) {
    const text = read(`${repo}/${file}`);
    readmeBlocks(text, 'ts').filter((b) => !b.includes("from 'vitest'")).forEach((code, i) => out.push({ name: `${file.replace(/\W+/g, '-')}-${i}`, code }));
  }
  return out;
}
