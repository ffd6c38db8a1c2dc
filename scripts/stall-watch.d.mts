export interface ThreadState {
  tid: number;
  name: string;
  /** /proc state letter: R running, S sleeping, D disk wait... */
  state: string;
  /** the kernel function the thread waits in (futex_do_wait, do_epoll_wait...), "?" if unreadable */
  wchan: string;
  cpuS: number;
}

export interface StallSnapshot {
  pid: number;
  file: string;
  ageS: number;
  threads: ThreadState[];
  children: Array<{ pid: number; cmd: string; threads: ThreadState[] }>;
}

export function watchTestFiles(
  runnerPid: number,
  o?: { afterS?: number; everyMs?: number; onLook?: (s: StallSnapshot) => void },
): { stop(): void; snapshot(file: string): StallSnapshot | undefined };

export function describeStall(file: string, snap: StallSnapshot | undefined, reportDir: string): string;
