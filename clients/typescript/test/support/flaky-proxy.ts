/**
 * A real HTTP server in front of the live one that misbehaves as a test scripts it: each
 * request takes the next step of the script (answer with a status, pass the request on, pass it
 * on and then lose the answer, or drop the connection); once the script is used up every
 * request is passed on. It records what it received.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";

import { ATTUNE_URL } from "./live.js";

export type Step =
  | { answer: number; headers?: Record<string, string>; body?: unknown }
  | { forward: true }
  /** The request reaches the live server, which acts on it; the client gets this status. */
  | { forwardThenAnswer: number }
  | { drop: true };

export interface Received {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
  /** performance.now() when the request arrived. */
  at: number;
}

export class FlakyProxy {
  readonly received: Received[] = [];
  #script: Step[] = [];
  #server: Server;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(): Promise<FlakyProxy> {
    const server = createServer();
    const proxy = new FlakyProxy(server);
    server.on("request", (request, response) => {
      proxy.#handle(request, response).catch((error: unknown) => {
        response.destroy(error instanceof Error ? error : new Error(String(error)));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return proxy;
  }

  get url(): string {
    const { port } = this.#server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  /** The steps the next requests take, in order. */
  script(...steps: Step[]): void {
    this.#script = steps;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve, reject) =>
      this.#server.close((error) => (error ? reject(error) : resolve())),
    );
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    this.received.push({
      method: request.method ?? "GET",
      path: request.url ?? "/",
      headers: request.headers,
      body,
      at: performance.now(),
    });

    const step: Step = this.#script.shift() ?? { forward: true };
    if ("drop" in step) {
      request.socket.destroy();
      return;
    }
    if ("answer" in step) {
      const payload =
        step.body === undefined
          ? { type: "server_error", errors: [{ code: "error", detail: "Scripted.", attr: null }] }
          : step.body;
      response.writeHead(step.answer, { "Content-Type": "application/json", ...step.headers });
      response.end(JSON.stringify(payload));
      return;
    }
    const upstream = await this.#forward(request, body);
    if ("forwardThenAnswer" in step) {
      await upstream.arrayBuffer();
      response.writeHead(step.forwardThenAnswer, { "Content-Type": "text/html" });
      response.end("<html><body>Bad gateway</body></html>");
      return;
    }
    const text = await upstream.text();
    response.writeHead(upstream.status, {
      "Content-Type": upstream.headers.get("Content-Type") ?? "application/json",
    });
    response.end(text);
  }

  #forward(request: IncomingMessage, body: string): Promise<Response> {
    const headers: Record<string, string> = {};
    for (const name of ["authorization", "content-type", "accept", "x-on-behalf-of"]) {
      const value = request.headers[name];
      if (typeof value === "string") headers[name] = value;
    }
    return fetch(new URL(request.url ?? "/", ATTUNE_URL), {
      method: request.method ?? "GET",
      headers,
      ...(body ? { body } : {}),
    });
  }
}
