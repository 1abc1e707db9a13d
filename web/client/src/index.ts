// @ragpulse/client: typed events, the connection manager with HTTP fallback, the live model.
// React bindings are in './react.js' (import '@ragpulse/client/react').
export * from './events.js';
export * from './fallback.js';
export * from './client.js';
export { subscriptionsFor, tokenPipelines } from './token.js';
export * from './model.js';
export * from './live.js';
