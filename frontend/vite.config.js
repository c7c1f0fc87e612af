// Vite build of the EcoMap Xiamen map UI. The service serves dist/ at "/", so asset URLs are
// relative ("./assets/...") and nothing is loaded from a CDN.
import { defineConfig } from 'vite';

// `npm run dev` proxies the service's public API to a running `ecomap serve`.
const backend = process.env.ECOMAP_BACKEND ?? 'http://127.0.0.1:8000';

export default defineConfig({
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 1500,
    rolldownOptions: {
      output: {
        // MapLibre in its own long-cacheable chunk; the app code changes more often.
        codeSplitting: { groups: [{ name: 'maplibre', test: /node_modules[\\/]maplibre-gl/ }] },
        // The worker is an ES module file (.mjs); ship it as .js so any static server sends a
        // JavaScript MIME type, which module workers require.
        assetFileNames: (asset) =>
          (asset.names?.[0] ?? '').endsWith('.mjs') ? 'assets/[name]-[hash].js' : 'assets/[name]-[hash][extname]',
      },
    },
  },
  server: {
    proxy: Object.fromEntries(['/api', '/tiles', '/styles', '/fonts'].map((path) => [path, backend])),
  },
});
