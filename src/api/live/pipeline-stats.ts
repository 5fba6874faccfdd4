// The image demo's task counts, as its db app answers GET /stats: the demo's own type. A
// leaf of types only: the dashboard's page imports it as a type too.
export type { TaskStats as PipelineStats } from '@uigniter-demo/common/task-record';
