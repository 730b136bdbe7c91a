import type { Host } from '../host/host.js';
import type { Argv } from '../host/quote.js';
import type { VmSpec } from '../smartos/vmadm.js';
import type { ImageFile } from './image-install.js';
import type { ListedSet } from './list-sets.js';

/**
 * Where a restore reads a VM's backups from: a ZFS backup host over SSH or an object store. One
 * restore core (restore-vm.ts) runs above it, so both targets pick, check and install alike.
 */
export interface RestoreSource<S extends BackupSet = BackupSet> {
  /** `user@host:port` or `s3://bucket/prefix`, for messages. */
  readonly label: string;
  /**
   * Whether a clone can be received whole when the recreated VM's origin has another guid: a
   * backup host sends any snapshot in full, the object store keeps only the stream from the origin.
   */
  readonly sendsClonesWhole: boolean;
  /** The VM's complete backup sets, newest first, each with how consistent it is. Only reads. */
  listSets(uuid: string): Promise<ListedSet[]>;
  /** The set asked for, or the newest complete one; a RestoreError saying why when there is none. */
  readSet(uuid: string, wanted?: string): Promise<S>;
  /**
   * Before anything changes here: a RestoreError when a stream the set needs is not as it was
   * stored. `readStreams: false` (a dry run) checks only what can be seen without reading them.
   */
  verify(set: S, options: { readStreams: boolean }): Promise<void>;
  /** Receives one dataset of the set through the local `zfs receive` argvs `into` gives. */
  receive(set: S, dataset: SetDataset, into: ReceiveInto, local: Host): Promise<Received>;
  /** What `receive` would run, one line per stream, for a dry run; reads nothing. */
  describeReceive(set: S, dataset: SetDataset, into: ReceiveInto): string[];
  /**
   * Bytes `receive` will bring, for the room check before anything changes: what `zfs send -nP`
   * says on a backup host, the stored (compressed, so a lower bound) bytes of an object store.
   */
  estimate(set: S, dataset: SetDataset, into: ReceiveInto): Promise<number>;
  /**
   * What writes the full stream of a clone's origin (an image) into a file on `local`, for imgadm
   * install, and what it runs (for a dry run); undefined when the backup does not have it.
   */
  originWriter(set: S, origin: OriginSnapshot, local: Host): OriginWriter | undefined;
}

export interface OriginWriter {
  /** The command line that writes the stream, ending in `> FILE`. */
  describe(file: string): string;
  write(file: string): Promise<ImageFile>;
}

/** One backup set: the VM as it was at `snapshot`, and what restoring it needs. */
export interface BackupSet {
  vm: string;
  snapshot: string;
  spec: VmSpec;
  /** `imgadm get` of each image the VM's datasets were cloned from, as stored with the set. */
  images: StoredImage[];
  /** The VM's datasets in vmadm's order, then the children below them. */
  datasets: SetDataset[];
}

export interface SetDataset {
  /** The dataset's name on the SmartOS host when it was backed up. */
  source: string;
  /** Where the backup keeps it (a dataset on the backup host, the key of its newest object). */
  backup: string;
  /** Set for a clone: the snapshot it was made from, with its real name and guid. */
  origin?: OriginSnapshot;
  /** Received raw on the backup host (ciphertext there): only a raw send, which needs no key, gets it out. */
  raw?: boolean;
  /**
   * The snapshots a stream of this dataset can start from, oldest first, up to and including the
   * set's own (its guid last): what a host that still has one of them needs only the rest of.
   */
  history?: SnapshotRef[];
}

/** A snapshot by its name in the backup and its guid (the same everywhere it was received). */
export interface SnapshotRef {
  name: string;
  guid: string;
}

/** A clone's origin as the backup knows it: `dataset` is where the source keeps it (ends in the image UUID). */
export interface OriginSnapshot {
  dataset: string;
  snapshot: string;
  guid: string;
}

export interface StoredImage {
  manifest?: { uuid?: string } & Record<string, unknown>;
}

export interface ReceiveInto {
  /** The local dataset, for messages. */
  name: string;
  /** The first stream is incremental from the origin, which the recreated dataset here is a clone of (same guid). */
  fromOrigin: boolean;
  /** The local `zfs receive` of each stream in order; `first` is the full one or the one from the origin. */
  argv(first: boolean): Argv;
  /**
   * The first stream is incremental from this snapshot of the set's history (by guid), which the
   * dataset `argv(true)` creates is a clone of: a host that still has it gets only what changed.
   */
  base?: SnapshotRef;
}

export interface Received {
  mode: 'incremental' | 'full';
  bytes: number;
  seconds: number;
}
