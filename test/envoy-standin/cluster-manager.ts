import { Agent } from 'node:http';
import type { EnvoyAddress } from './addresses.ts';
import type { StaticCluster } from './bootstrap-model.ts';
import type { StatsStore } from './stats.ts';

/** A cluster the stand-in knows: static ones with endpoints, CDS ones by name (no data path to them). */
export interface ClusterEntry {
  readonly name: string;
  readonly endpoints: readonly EnvoyAddress[];
  readonly connectTimeoutMilliseconds: number;
  readonly addedViaApi: boolean;
  /** Keep-alive connection pool for HTTP/1.1 upstream requests, as Envoy pools upstream connections. */
  readonly agent: Agent;
}

/**
 * Envoy's cluster manager as far as the stand-in needs it: clusters by name, round-robin endpoint choice,
 * `cluster_manager.active_clusters` and the per-cluster stats the data path writes.
 */
export class ClusterManager {
  readonly #clusters = new Map<string, ClusterEntry>();
  readonly #next = new Map<string, number>();
  readonly #stats: StatsStore;

  constructor(staticClusters: readonly StaticCluster[], stats: StatsStore) {
    this.#stats = stats;
    for (const cluster of staticClusters) {
      this.#add(cluster.name, cluster.endpoints, cluster.connectTimeoutMilliseconds, false);
    }
    this.#updateGauges();
  }

  #add(
    name: string,
    endpoints: readonly EnvoyAddress[],
    connectTimeoutMilliseconds: number,
    addedViaApi: boolean,
  ) {
    this.#clusters.set(name, {
      name,
      endpoints,
      connectTimeoutMilliseconds,
      addedViaApi,
      agent: new Agent({ keepAlive: true }),
    });
    // Envoy creates each cluster's stats when the cluster is added.
    this.#stats.counter(`cluster.${name}.upstream_rq_total`);
    this.#stats.gauge(`cluster.${name}.membership_total`).set(endpoints.length);
  }

  #updateGauges(): void {
    this.#stats.gauge('cluster_manager.active_clusters').set(this.#clusters.size);
    this.#stats.gauge('cluster_manager.warming_clusters').set(0);
  }

  get(name: string): ClusterEntry | undefined {
    return this.#clusters.get(name);
  }

  names(): string[] {
    return [...this.#clusters.keys()];
  }

  /** Replaces the CDS clusters with `names` (static clusters are never touched by CDS). */
  setDynamicClusters(names: readonly string[]): { added: number; removed: number } {
    const wanted = new Set(names);
    let added = 0;
    let removed = 0;
    for (const [name, cluster] of this.#clusters) {
      if (cluster.addedViaApi && !wanted.has(name)) {
        cluster.agent.destroy();
        this.#clusters.delete(name);
        removed++;
      }
    }
    for (const name of wanted) {
      const existing = this.#clusters.get(name);
      if (existing) continue;
      this.#add(name, [], 5000, true);
      added++;
    }
    if (added > 0) this.#stats.counter('cluster_manager.cluster_added').inc(added);
    if (removed > 0) this.#stats.counter('cluster_manager.cluster_removed').inc(removed);
    this.#updateGauges();
    return { added, removed };
  }

  /** Round-robin over the cluster's endpoints. */
  pickEndpoint(cluster: ClusterEntry): EnvoyAddress | undefined {
    if (cluster.endpoints.length === 0) return undefined;
    const index = this.#next.get(cluster.name) ?? 0;
    this.#next.set(cluster.name, index + 1);
    return cluster.endpoints[index % cluster.endpoints.length];
  }

  close(): void {
    for (const cluster of this.#clusters.values()) cluster.agent.destroy();
  }
}
