/**
 * Prometheus publishing: exposition text (text 0.0.4 and OpenMetrics 1.0.0) and the cache that
 * serves it. The pieces live in prometheus-*.ts; this is the module the server and the wiring import.
 */
export type { ExpositionFormat } from '../metric/names.js';
export { renderFamilies, renderFamily, formatValue, formatLe } from './prometheus-render.js';
export { ExpositionCache } from './prometheus-cache.js';
