import { Authorizer, withChallenges, withCredentials } from './auth.js';
import type { HostSchemes } from './hosts.js';
import { withSchemeFallback } from './hosts.js';
import { withRedirects } from './redirect.js';
import { withRetry, type RetrySettings } from './retry.js';
import type { RoundTripper, Transport } from './transport.js';

export interface RegistryStackOptions {
  /** The wire: one HTTP exchange. */
  transport: Transport;
  authorizer: Authorizer;
  schemes: HostSchemes;
  userAgent: string;
  retry: RetrySettings;
}

/**
 * The registry client's HTTP layers, composed once, outermost first: retry transient failures, answer
 * 401 challenges, follow redirects, settle the scheme of loopback and insecure hosts, and add credentials
 * for the registry's origin only. Each layer is a small wrapper of the same one-method shape.
 */
export function registryStack(o: RegistryStackOptions): RoundTripper {
  const credentials = withCredentials(o.transport, o.authorizer, o.schemes, o.userAgent);
  const scheme = withSchemeFallback(credentials, o.schemes);
  const redirects = withRedirects(scheme);
  const challenges = withChallenges(redirects, o.authorizer, o.schemes);
  return withRetry(challenges, o.retry);
}
