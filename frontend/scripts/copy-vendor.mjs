// Copies the third-party browser files the service embeds in its standalone pages (the
// printable zone-check report and a chief's map, drawn with folium/Leaflet) and the API
// documentation pages (/docs: Swagger UI, /redoc: ReDoc) load into dist/vendor, so those pages
// work without the internet: the service inlines or serves them from there.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const files = {
  leaflet: ['dist/leaflet.js', 'dist/leaflet.css', 'LICENSE'],
  'swagger-ui-dist': ['swagger-ui-bundle.js', 'swagger-ui.css', 'favicon-32x32.png', 'LICENSE'],
  redoc: ['bundles/redoc.standalone.js', 'LICENSE'],
};
for (const [pkg, paths] of Object.entries(files)) {
  const target = join(root, 'dist', 'vendor', pkg);
  mkdirSync(target, { recursive: true });
  for (const path of paths) copyFileSync(join(root, 'node_modules', pkg, path), join(target, path.split('/').pop()));
}
console.log(`vendor: ${Object.keys(files).join(', ')} -> dist/vendor`);
