import { isIP } from 'node:net';
import { DEFAULT_DOMAIN } from '../oci/index.js';

/** Where Docker Hub's API really lives (docker.io is only the name in references). */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
/** The key docker's config.json uses for Docker Hub credentials. */
export const DOCKER_HUB_CONFIG_KEY = 'https://index.docker.io/v1/';

/** The API host for a reference domain: docker.io → registry-1.docker.io, others unchanged. */
export function apiHost(domain: string): string {
  return domain === DEFAULT_DOMAIN || domain === 'index.docker.io' ? DOCKER_HUB_API_HOST : domain;
}

/** Host name without the port (IPv6 brackets removed). */
export function hostname(host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'));
  const i = host.lastIndexOf(':');
  return i === -1 ? host : host.slice(0, i);
}

/** localhost, 127.0.0.0/8 and ::1: docker talks plain HTTP to these without being told. */
export function isLoopback(host: string): boolean {
  const h = hostname(host).toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1';
  return false;
}

/**
 * http: for loopback hosts and hosts listed insecure (entries are `host[:port]`, or a bare hostname that
 * covers every port); https: for everything else.
 */
export function schemeFor(host: string, insecure: readonly string[] = []): 'http' | 'https' {
  if (isLoopback(host)) return 'http';
  const h = host.toLowerCase();
  for (const entry of insecure) {
    const e = entry.toLowerCase().replace(/^https?:\/\//, '').replace(/\/+$/, '');
    if (e === h || e === hostname(h)) return 'http';
  }
  return 'https';
}

/** `host[:port]` as URL.host prints it, to compare a redirect target with the registry host. */
export function sameHost(a: URL, registryHost: string, scheme: string): boolean {
  return a.host.toLowerCase() === new URL(`${scheme}://${registryHost}`).host.toLowerCase();
}
