/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and sums self time per function, so the report can
 * say where the bridge's CPU goes. Our code is named by its path under dist/; dependencies by
 * their package.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileLine {
  readonly name: string;
  readonly where: string;
  readonly selfPct: number;
}

/** Where a script URL lives, shortly: `src/ami/protocol.ts`, `rabbitmq-client`, `node:net`, … */
function shortWhere(url: string): string {
  if (url === '') return '(native/vm)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0)
    return url
      .slice(nm + 13)
      .split('/')
      .slice(0, url.slice(nm + 13).startsWith('@') ? 2 : 1)
      .join('/');
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return 'src/' + url.slice(dist + 6).replace(/\.js$/, '.ts');
  return url.replace(/^file:\/\//, '');
}

/** Top `n` functions by self time, and the share of time in each "area" (ours, deps, node, gc/idle). */
export function summarizeProfile(file: string, n = 20): { top: ProfileLine[]; areas: Record<string, number>; seconds: number } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0) || 1;
  const byFn = new Map<string, { name: string; where: string; us: number }>();
  const areas: Record<string, number> = {};
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame;
    if (frame === undefined) continue;
    const where = shortWhere(frame.url);
    const name = frame.functionName || '(anonymous)';
    const key = `${name}@${where}:${frame.lineNumber}`;
    const entry = byFn.get(key) ?? { name, where: `${where}:${frame.lineNumber + 1}`, us: 0 };
    entry.us += us;
    byFn.set(key, entry);
    const area =
      name === '(idle)'
        ? 'idle'
        : name === '(garbage collector)'
          ? 'gc'
          : where.startsWith('src/')
            ? 'ours'
            : where.startsWith('node:')
              ? 'node'
              : where === '(native/vm)'
                ? 'native'
                : 'deps';
    areas[area] = (areas[area] ?? 0) + (us / total) * 100;
  }
  const top = [...byFn.values()]
    .filter((e) => e.name !== '(idle)')
    .sort((a, b) => b.us - a.us)
    .slice(0, n)
    .map((e) => ({ name: e.name, where: e.where, selfPct: (e.us / total) * 100 }));
  return { top, areas, seconds: (profile.endTime - profile.startTime) / 1e6 };
}

/** The newest .cpuprofile in `dir`. */
export function newestProfile(dir: string): string | undefined {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort();
  const last = files.at(-1);
  return last === undefined ? undefined : path.join(dir, last);
}
