/**
 * WWW-Authenticate parsing (RFC 7235 as registries use it): several challenges in one header or several
 * headers, parameters as tokens or quoted strings (commas and escaped quotes inside quotes allowed).
 */
export interface Challenge {
  /** Lower-case scheme: 'bearer', 'basic', … */
  scheme: string;
  /** Lower-case parameter names: realm, service, scope, error… */
  params: Record<string, string>;
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

export function parseChallenges(headers: string | string[] | undefined): Challenge[] {
  if (headers === undefined) return [];
  const list = Array.isArray(headers) ? headers : [headers];
  return list.flatMap(parseOne);
}

function parseOne(s: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const skipWs = (): void => { while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++; };
  const token = (): string => { const start = i; while (i < s.length && TOKEN.test(s[i]!)) i++; return s.slice(start, i); };
  const quoted = (): string => {
    let v = '';
    i++; // opening quote
    while (i < s.length && s[i] !== '"') {
      if (s[i] === '\\' && i + 1 < s.length) i++;
      v += s[i++];
    }
    i++; // closing quote
    return v;
  };
  let current: Challenge | undefined;
  while (i < s.length) {
    skipWs();
    if (s[i] === ',') { i++; continue; }
    const start = i;
    const name = token();
    if (name === '') { i++; continue; }
    skipWs();
    if (s[i] === '=' && current) {
      i++;
      skipWs();
      const value = s[i] === '"' ? quoted() : token();
      current.params[name.toLowerCase()] = value;
      continue;
    }
    if (s[i] === '=' && !current) { i = start; break; }
    current = { scheme: name.toLowerCase(), params: {} };
    out.push(current);
  }
  return out;
}
