// Vite build of the EcoMap Xiamen map UI. The service serves dist/ at "/", so asset URLs are
// relative ("./assets/...") and nothing is loaded from a CDN.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { defineConfig } from 'vite';

/** Every file under `dir`, as paths relative to `root` with forward slashes. */
function filesUnder(dir, root = dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesUnder(join(dir, entry.name), root) : [relative(root, join(dir, entry.name)).split('\\').join('/')],
  );
}

/**
 * The service worker (src/field/sw.js) written to dist/sw.js with the app shell to precache —
 * the page, every file of the bundle and of public/ — and a version that changes with them, so
 * a new build replaces the old shell. Hand-written rather than vite-plugin-pwa/Workbox: the
 * worker is ~100 lines, and the build keeps its few, pinned dependencies.
 */
function serviceWorker() {
  return {
    name: 'ecomap-service-worker',
    apply: 'build',
    generateBundle(_options, bundle) {
      const files = ['./', ...Object.keys(bundle), ...filesUnder('public')].filter((name) => !name.endsWith('.map'));
      const version = createHash('sha256').update(files.join('\n')).digest('hex').slice(0, 12);
      const source = readFileSync('src/field/sw.js', 'utf8')
        .replace('self.__ECOMAP_PRECACHE', JSON.stringify(files))
        .replace('self.__ECOMAP_VERSION', JSON.stringify(version));
      this.emitFile({ type: 'asset', fileName: 'sw.js', source });
    },
  };
}

// `npm run dev` proxies the service's public API to a running `ecomap serve`.
const backend = process.env.ECOMAP_BACKEND ?? 'http://127.0.0.1:8000';

export default defineConfig({
  base: './',
  plugins: [serviceWorker()],
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
