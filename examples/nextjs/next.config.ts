// No bundler configuration: @ragpulse/client is plain ESM with .d.ts, and its React entry
// says 'use client' itself. Strict mode stays on (React 19 mounts, unmounts and mounts every
// component once in development; the provider must survive it).
import type { NextConfig } from 'next';

const nextConfig: NextConfig = {
  reactStrictMode: true,
};

export default nextConfig;
