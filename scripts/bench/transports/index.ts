// Every transport, in the order the tables show them.
import { transport as forkIpc } from './fork-ipc.js';
import { transport as redis } from './redis.js';
import { transport as shmstore } from './shmstore.js';
import { transport as singleProcess } from './single-process.js';
import { transport as unixSocket } from './unix-socket.js';
import type { Transport } from './types.js';

export const TRANSPORTS: readonly Transport[] = [singleProcess, shmstore, unixSocket, forkIpc, redis];
