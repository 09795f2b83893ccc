/**
 * Errors on the wire: a StowageError's `code` chooses docker's HTTP status (moby's errdefs classes: NotFound 404, InvalidParameter 400, Conflict 409, ..., the rest 500),
 * its message goes out unchanged as `{"message": ...}`, which the docker CLI prints after
 * "Error response from daemon: ".
 */
import type http from 'node:http';
import { InvalidArgumentError, StowageError, stowageErrorOf, type ErrorCode } from '../../errors/index.js';

const STATUS: Partial<Record<ErrorCode, number>> = {
  NotFound: 404,
  InvalidArgument: 400,
  Conflict: 409,
  AlreadyExists: 409,
  Unauthorized: 401,
  Forbidden: 403,
  Unavailable: 503,
  NotImplemented: 501,
};

/** The HTTP status docker's daemon gives an error of this class (500 for the rest: system, cancelled, unknown). */
export function statusOf(e: unknown): number {
  const se = stowageErrorOf(e);
  return se ? STATUS[se.code] ?? 500 : 500;
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Writes `{"message": ...}` with the mapped status (headers not sent yet). */
export function writeError(res: http.ServerResponse, e: unknown, status = statusOf(e)): void {
  const body = JSON.stringify({ message: messageOf(e) }) + '\n';
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** 400 with docker's text, for request validation in the handlers. */
export function badParameter(message: string, data: Record<string, unknown> = {}): StowageError {
  return new InvalidArgumentError(message, data);
}

/**
 * A route of the Engine API this image-only server does not serve (containers, networks, volumes, swarm...).
 * Lookups (GET) are NotFound: `docker inspect NAME` asks for a container first and goes on to images only
 * after a 404. Anything else is NotImplemented (501).
 */
export class NotAnImageEndpointError extends StowageError {
  constructor(method: string, path: string) {
    super(method === 'GET' || method === 'HEAD' ? 'NotFound' : 'NotImplemented', `this server (stowage) manages images only: ${method} ${path} is not available`, { method, path });
  }
}
