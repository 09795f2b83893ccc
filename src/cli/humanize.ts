/**
 * Docker's human forms of sizes and times (go-units): 1000-based units, Go `%g` precision,
 * "2 hours ago". Kept byte-for-byte compatible so scripts that parse docker output keep working.
 */

const DECIMAL_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];

/** Go's `%.<p>g`: shortest of fixed/scientific with p significant digits, trailing zeros removed. */
export function formatG(value: number, precision: number): string {
  if (value === 0) return '0';
  if (!Number.isFinite(value)) return String(value);
  const [mantissa, expText] = value.toExponential(precision - 1).split('e') as [string, string];
  const exponent = Number(expText);
  if (exponent < -4 || exponent >= precision) {
    const sign = exponent < 0 ? '-' : '+';
    const digits = String(Math.abs(exponent)).padStart(2, '0');
    return `${stripZeros(mantissa)}e${sign}${digits}`;
  }
  return stripZeros(value.toFixed(Math.max(0, precision - 1 - exponent)));
}

function stripZeros(s: string): string {
  if (!s.includes('.')) return s;
  return s.replace(/0+$/, '').replace(/\.$/, '');
}

/** `units.HumanSizeWithPrecision`: 7.8MB, 5.59MB, 0B. */
export function humanSize(bytes: number, precision = 3): string {
  let size = bytes;
  let i = 0;
  while (size >= 1000 && i < DECIMAL_UNITS.length - 1) { size /= 1000; i++; }
  return `${formatG(size, precision)}${DECIMAL_UNITS[i]}`;
}

/** `units.HumanSize` (4 significant digits), used by progress bars and `system df`. */
export function humanSize4(bytes: number): string { return humanSize(bytes, 4); }

/** `units.HumanDuration`: "Less than a second", "About a minute", "3 hours", "2 weeks". */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(ms / 60_000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(Math.trunc(ms / 3_600_000) / 24 / 365)} years`;
}

/** "2 hours ago" for a Unix time in seconds (docker's CreatedSince). */
export function since(unixSeconds: number, now = Date.now()): string {
  return `${humanDuration(now - unixSeconds * 1000)} ago`;
}

/** Docker's `CreatedAt` form: `2024-01-27 00:01:02 +0000 UTC` (Go's time.String, UTC). */
export function goTime(unixSeconds: number): string {
  const iso = new Date(unixSeconds * 1000).toISOString(); // 2024-01-27T00:01:02.000Z
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} +0000 UTC`;
}

/** `stringid.TruncateID`: drop the algorithm, keep 12 characters. */
export function shortId(id: string): string {
  const colon = id.indexOf(':');
  const hex = colon >= 0 ? id.slice(colon + 1) : id;
  return hex.length > 12 ? hex.slice(0, 12) : hex;
}

/** Docker's `Ellipsis`: cut to `max` display characters, the last being "…". */
export function ellipsis(s: string, max: number): string {
  const chars = [...s];
  if (chars.length <= max) return s;
  if (max <= 1) return chars.slice(0, max).join('');
  return chars.slice(0, max - 1).join('') + '…';
}
