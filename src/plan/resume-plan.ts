import type { DatasetState, SnapshotInfo } from '../zfs/list.js';
import { splitSnapshot, targetDatasetName } from '../zfs/names.js';
import type { AbortResumeStep, ResumeStep } from './steps.js';

/** What `zfs send -nv -t TOKEN` on the source said of one interrupted receive on the backup host. */
export interface ResumeCheck {
  token: string;
  /** The source can send the rest of the stream. */
  accepted: boolean;
  /** The snapshot the stream was for, as the source names it (the token's `toname`). */
  toname?: string;
  /** Its guid (the token's `toguid`), in decimal as ZFS lists guids. */
  toguid?: string;
  /** Bytes that had arrived. */
  bytes?: number;
  /** Why the source refused: the last line it printed. */
  refusal?: string;
}

export interface ResumePlan {
  steps: Array<ResumeStep | AbortResumeStep>;
  /** The backup host as the rest of the plan sees it: each resume done, each abort's partial state gone. */
  remote: Map<string, DatasetState>;
  warnings: string[];
}

/**
 * Resume-or-abort for every target an earlier run left with a receive_resume_token: resumed
 * when the source accepts the token and still has its snapshot (found by guid), aborted
 * otherwise. The rest of the plan is made as if each resume succeeds; one that fails is aborted
 * by the executor and fails its dataset for this run.
 */
export function planResumes(input: {
  datasets: readonly string[];
  basePath: string;
  local: ReadonlyMap<string, DatasetState>;
  remote: ReadonlyMap<string, DatasetState>;
  resumes?: ReadonlyMap<string, ResumeCheck>;
}): ResumePlan {
  const remote = new Map(input.remote);
  const steps: ResumePlan['steps'] = [];
  const warnings: string[] = [];
  const sources = sourcesByTarget(input);
  for (const [target, check] of input.resumes ?? []) {
    const state = remote.get(target);
    const source = sources.get(target);
    if (!state || !source) continue;
    const resumed = check.accepted ? resumedSnapshot(check, input.local.get(source)) : undefined;
    if (resumed) {
      steps.push({
        kind: 'resume',
        source,
        target,
        token: check.token,
        snapshot: `${target}@${resumed.name}`,
        ...(check.bytes !== undefined ? { arrived: check.bytes } : {}),
      });
      const newest = Math.max(0, ...state.snapshots.map((s) => s.createtxg));
      const arrived: SnapshotInfo = { ...resumed, createtxg: newest + 1, userrefs: 0 };
      remote.set(target, { ...state, resumeToken: undefined, snapshots: [...state.snapshots, arrived] });
      continue;
    }
    const why = check.accepted
      ? `${source} no longer has ${check.toname ?? 'the snapshot it was for'}`
      : (check.refusal ?? 'the source refused its token');
    warnings.push(
      `the resume token of ${target} no longer matches the source (${why}); aborting it (zfs receive -A) and sending again`,
    );
    steps.push({ kind: 'abort-resume', source, target });
    if (state.snapshots.length === 0) remote.delete(target);
    else remote.set(target, { ...state, resumeToken: undefined });
  }
  return { steps, remote, warnings };
}

/** The source snapshot the token's stream carries: by guid when the token says it, else by name. */
function resumedSnapshot(check: ResumeCheck, local: DatasetState | undefined): SnapshotInfo | undefined {
  if (!check.toname || !local) return undefined;
  const { dataset, snapshot } = splitSnapshot(check.toname);
  if (dataset !== local.name) return undefined;
  return local.snapshots.find((s) => (check.toguid ? s.guid === check.toguid : s.name === snapshot));
}

/** Each target the plan may touch, with the source dataset whose row it counts in (a VM dataset or an image). */
function sourcesByTarget(input: {
  datasets: readonly string[];
  basePath: string;
  local: ReadonlyMap<string, DatasetState>;
}): Map<string, string> {
  const sources = new Map<string, string>();
  for (const dataset of input.datasets) {
    sources.set(targetDatasetName(input.basePath, dataset), dataset);
    const origin = input.local.get(dataset)?.origin;
    if (origin) {
      const image = splitSnapshot(origin).dataset;
      sources.set(targetDatasetName(input.basePath, image), image);
    }
  }
  return sources;
}
