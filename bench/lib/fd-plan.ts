// File-descriptor planning of the scale run, pure: how many sockets each Iris node and each
// load-generator process must hold, checked against the per-process open-files hard limit
// (every socket is one fd) with the process's own fds and a margin on top.

/** Sockets one load-generator process may hold: its own ~40 fds stay well clear of 20,000. */
export const LOADGEN_SOCKETS_PER_PROCESS = 18_000;
/** fds a node may open beyond its idle count while loaded (NATS reconnects, store files, HTTP probes). */
export const NODE_FD_MARGIN = 32;

export interface FdPlan {
  users: number;
  nodes: number;
  /** Most sockets on one node (users are spread evenly). */
  perNode: number;
  loadgenProcesses: number;
  perLoadgen: number;
  /** Empty when the plan fits; otherwise why not, one line each. */
  problems: string[];
}

/**
 * `nodeIdleFds`: fds an idle node already holds; `nodeMaxConns`: the cap the node planned for
 * itself (it answers 503 beyond it).
 */
export function planFds(
  users: number,
  nodes: number,
  hardLimit: number,
  nodeIdleFds: number,
  nodeMaxConns: number,
): FdPlan {
  const perNode = Math.ceil(users / nodes);
  const loadgenProcesses = Math.max(1, Math.ceil(users / LOADGEN_SOCKETS_PER_PROCESS));
  const problems: string[] = [];
  const nodeNeeds = perNode + nodeIdleFds + NODE_FD_MARGIN;
  if (nodeNeeds > hardLimit) {
    const most = Math.max(0, hardLimit - nodeIdleFds - NODE_FD_MARGIN);
    problems.push(
      `${users} users on ${nodes} nodes is ${perNode} sockets per node; with the node's ${nodeIdleFds} idle fds ` +
        `and a margin of ${NODE_FD_MARGIN} that needs ${nodeNeeds} fds, above the open-files hard limit ` +
        `${hardLimit}: at most ${most} users per node (${most * nodes} in total) on ${nodes} nodes`,
    );
  }
  if (perNode > nodeMaxConns) {
    problems.push(
      `${perNode} sockets per node exceed the node's own connection cap ${nodeMaxConns} (it would answer 503)`,
    );
  }
  return {
    users,
    nodes,
    perNode,
    loadgenProcesses,
    perLoadgen: Math.ceil(users / loadgenProcesses),
    problems,
  };
}
