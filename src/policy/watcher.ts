/**
 * Watches the policy and rule directories and calls onChange once per burst of edits
 * (editors and `git checkout` write several files; one reload should see them all).
 */
import { watch, type FSWatcher } from "chokidar";

export interface PolicyWatcher {
  /** resolves once the initial scan is done and changes will be seen */
  ready: Promise<void>;
  close(): Promise<void>;
}

export function watchPolicyFiles(dirs: string[], onChange: (paths: string[]) => void, o: { debounceMs?: number } = {}): PolicyWatcher {
  const debounceMs = o.debounceMs ?? 250;
  const w: FSWatcher = watch(dirs, {
    ignoreInitial: true,
    ignored: (p: string) => /(^|[\\/])\.|~$|\.swp$/.test(p.split(/[\\/]/).pop() ?? ""),
  });
  let pending = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  w.on("all", (_event, path) => {
    if (!/\.ya?ml$|\.json$/.test(path)) return;
    pending.add(path);
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      const paths = [...pending];
      pending = new Set();
      onChange(paths);
    }, debounceMs);
  });
  const ready = new Promise<void>((resolve) => w.once("ready", () => resolve()));
  return {
    ready,
    close: async () => {
      if (timer) clearTimeout(timer);
      await w.close();
    },
  };
}
