// A leaf with no imports: the dashboard's page imports it as a type.

/** The image demo's task counts, as its db app answers GET /stats. */
export interface PipelineStats {
  ready: number;
  leased: number;
  done: number;
  failed: number;
  total: number;
  byWorker: Record<string, number>;
}
