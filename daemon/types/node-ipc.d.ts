// The part of node-ipc 14.0.0 the daemon uses (the package ships no type declarations).
declare module 'node-ipc' {
  import type { Server as NetServer, Socket } from 'node:net';

  export class IPCProtocolError extends Error {
    constructor(code: string, message: string);
    readonly code: string;
  }

  export class GuardedParser {
    constructor(config: unknown);
    readonly profile: string;
    maxMessageSize: number;
    decodeMessage(frame: string): unknown;
    read(buffer: string, data: string, receive: (message: unknown) => void): string;
    encode(type: string, data: unknown): string;
  }

  export class AssuredParser extends GuardedParser {}

  export interface IpcConfig {
    appspace: string;
    socketRoot: string;
    id: string;
    parser: string | typeof GuardedParser;
    maxMessageSize: number;
    maxPendingBytes: number;
    messageTimeout: number;
    allowedEvents: string[] | false;
    silent: boolean;
    logPayloads: boolean;
    unlink: boolean;
    readableAll: boolean;
    writableAll: boolean;
    secureSocketRoot: boolean;
    maxConnections: number;
    delimiter: string;
    logger: (...args: unknown[]) => void;
  }

  export interface IpcServer {
    /** The underlying net.Server once started. */
    server: NetServer | false;
    path: string;
    sockets: Socket[];
    start(): void;
    stop(): void;
    on(event: 'start', handler: (server: NetServer) => void): void;
    on(event: 'connect', handler: (socket: Socket) => void): void;
    on(event: 'socket.disconnected', handler: (socket: Socket, id: string | false) => void): void;
    on(event: 'error', handler: (error: Error & { code?: string }) => void): void;
    on(event: string, handler: (data: unknown, socket: Socket) => void): void;
    emit(socket: Socket, type: string, data: unknown): boolean;
  }

  export class IPCModule {
    config: IpcConfig;
    server: IpcServer;
    serve(path: string, callback?: () => void): void;
  }

  const singleton: IPCModule;
  export default singleton;
}
