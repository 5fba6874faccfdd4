import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from './http-error.js';
import { sendError } from './http-io.js';
import { describeError, log } from './log.js';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: Record<string, string>;
}

export type RouteHandler = (ctx: RequestContext) => Promise<void> | void;

interface Route {
  method: string;
  segments: string[];
  handler: RouteHandler;
}

function splitPath(path: string): string[] {
  return path.split('/').filter((s) => s.length > 0);
}

/**
 * Routes by method and path pattern (`/task/:id`). Routes are tried in the
 * order they were added, so a literal route (`/task/next`) must be added
 * before a parameter route that would also match it (`/task/:id`).
 */
export class Router {
  private readonly routes: Route[] = [];

  on(method: string, pattern: string, handler: RouteHandler): this {
    this.routes.push({ method: method.toUpperCase(), segments: splitPath(pattern), handler });
    return this;
  }

  get(pattern: string, handler: RouteHandler): this {
    return this.on('GET', pattern, handler);
  }
  head(pattern: string, handler: RouteHandler): this {
    return this.on('HEAD', pattern, handler);
  }
  put(pattern: string, handler: RouteHandler): this {
    return this.on('PUT', pattern, handler);
  }
  post(pattern: string, handler: RouteHandler): this {
    return this.on('POST', pattern, handler);
  }
  delete(pattern: string, handler: RouteHandler): this {
    return this.on('DELETE', pattern, handler);
  }

  /** The request listener to hand to `http.createServer`. */
  readonly listener = (req: IncomingMessage, res: ServerResponse): void => {
    void this.dispatch(req, res);
  };

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const segments = splitPath(url.pathname);
      const allowed = new Set<string>();
      for (const route of this.routes) {
        const params = matchSegments(route.segments, segments);
        if (params === undefined) continue;
        if (route.method !== req.method) {
          allowed.add(route.method);
          continue;
        }
        await route.handler({ req, res, url, params });
        return;
      }
      if (allowed.size > 0) {
        res.setHeader('allow', [...allowed].join(', '));
        throw new HttpError(405, 'method_not_allowed', `${req.method} not allowed on ${url.pathname}`);
      }
      throw new HttpError(404, 'not_found', `no route for ${req.method} ${url.pathname}`);
    } catch (err) {
      if (err instanceof HttpError) {
        sendError(res, err);
        return;
      }
      log(`internal error on ${req.method} ${req.url}: ${err instanceof Error ? (err.stack ?? describeError(err)) : describeError(err)}`);
      sendError(res, new HttpError(500, 'internal', describeError(err)));
    }
  }
}

function matchSegments(pattern: string[], actual: string[]): Record<string, string> | undefined {
  if (pattern.length !== actual.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i] as string;
    const a = actual[i] as string;
    if (p.startsWith(':')) {
      try {
        params[p.slice(1)] = decodeURIComponent(a);
      } catch {
        throw new HttpError(400, 'invalid_path', `bad percent-encoding in "${a}"`);
      }
    } else if (p !== a) {
      return undefined;
    }
  }
  return params;
}
