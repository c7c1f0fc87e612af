// Builds the SDF glyph ranges MapLibre needs for Latin/Greek/Cyrillic label text, offline.
//
// Output: dist/fonts/Noto Sans Regular/{start}-{end}.pbf, the layout the service's style points
// at (`glyphs: "<base>/fonts/{fontstack}/{range}.pbf"`). Chinese text does not come from here:
// the map draws CJK characters with the browser's local font (`localIdeographFontFamily`).
//
// The glyph outlines come from the Noto Sans files of @fontsource/noto-sans (npm, OFL-1.1).
// Each glyph is flattened to line segments and turned into a signed distance field the same way
// Mapbox's sdf-glyph-foundry does (24 px em, 3 px buffer, radius 8, cutoff 0.25), so the PBFs
// are interchangeable with fontnik-generated ones.

import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { inflateSync } from 'node:zlib';
import * as fontkit from 'fontkit';
import { PbfWriter } from 'pbf';

const FONTSTACK = 'Noto Sans Regular';
const FONT_SIZE = 24;
const BUFFER = 3;
const RADIUS = 8;
const CUTOFF = 0.25;
// Unicode subsets of Noto Sans to include; Devanagari is left out (MapLibre draws complex
// scripts locally anyway).
const SUBSETS = ['latin', 'latin-ext', 'greek', 'greek-ext', 'cyrillic', 'cyrillic-ext', 'vietnamese'];

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const outDir = resolve(process.argv[2] ?? join(here, '..', 'dist', 'fonts', FONTSTACK));

/** Finds the WOFF file of one Noto Sans subset inside the installed @fontsource package. */
function subsetFile(subset) {
  const pkgDir = dirname(require.resolve('@fontsource/noto-sans/package.json'));
  const file = join(pkgDir, 'files', `noto-sans-${subset}-400-normal.woff`);
  if (!existsSync(file)) throw new Error(`missing ${file}: run "npm ci" in frontend/`);
  return file;
}

/**
 * Unpacks a WOFF 1.0 file into a plain sfnt (TTF/OTF) buffer. fontkit reads WOFF itself but
 * re-inflates the glyph table for every glyph it loads, which is ~30x slower.
 */
function woffToSfnt(woff) {
  if (woff.readUInt32BE(0) !== 0x774f4646) throw new Error('not a WOFF 1.0 file');
  const numTables = woff.readUInt16BE(12);
  const tables = [];
  for (let i = 0; i < numTables; i++) {
    const at = 44 + i * 20;
    const offset = woff.readUInt32BE(at + 4);
    const compLength = woff.readUInt32BE(at + 8);
    const origLength = woff.readUInt32BE(at + 12);
    const raw = woff.subarray(offset, offset + compLength);
    tables.push({
      tag: woff.readUInt32BE(at),
      checksum: woff.readUInt32BE(at + 16),
      data: compLength < origLength ? inflateSync(raw) : raw,
    });
  }
  const headerSize = 12 + numTables * 16;
  const total = tables.reduce((n, t) => n + ((t.data.length + 3) & ~3), headerSize);
  const out = Buffer.alloc(total);
  const log2 = Math.floor(Math.log2(numTables));
  out.writeUInt32BE(woff.readUInt32BE(4), 0); // flavor
  out.writeUInt16BE(numTables, 4);
  out.writeUInt16BE(2 ** log2 * 16, 6);
  out.writeUInt16BE(log2, 8);
  out.writeUInt16BE(numTables * 16 - 2 ** log2 * 16, 10);
  let offset = headerSize;
  tables.forEach((t, i) => {
    const at = 12 + i * 16;
    out.writeUInt32BE(t.tag, at);
    out.writeUInt32BE(t.checksum, at + 4);
    out.writeUInt32BE(offset, at + 8);
    out.writeUInt32BE(t.data.length, at + 12);
    t.data.copy(out, offset);
    offset += (t.data.length + 3) & ~3;
  });
  return out;
}

/** Flattens a fontkit path (font units, y up) into closed rings of [x, y] pixel points. */
function pathToRings(commands, scale) {
  const rings = [];
  let ring = [];
  let cx = 0;
  let cy = 0;
  const close = () => {
    if (ring.length > 1) {
      const [fx, fy] = ring[0];
      const [lx, ly] = ring[ring.length - 1];
      if (fx !== lx || fy !== ly) ring.push([fx, fy]);
      rings.push(ring);
    }
    ring = [];
  };
  for (const { command, args } of commands) {
    const a = args.map((v) => v * scale);
    if (command === 'moveTo') {
      close();
      [cx, cy] = a;
      ring.push([cx, cy]);
    } else if (command === 'lineTo') {
      [cx, cy] = a;
      ring.push([cx, cy]);
    } else if (command === 'quadraticCurveTo') {
      const [qx, qy, x, y] = a;
      const steps = curveSteps(Math.hypot(qx - cx, qy - cy) + Math.hypot(x - qx, y - qy));
      for (let i = 1; i <= steps; i++) {
        const t = i / steps;
        const u = 1 - t;
        ring.push([u * u * cx + 2 * u * t * qx + t * t * x, u * u * cy + 2 * u * t * qy + t * t * y]);
      }
      [cx, cy] = [x, y];
    } else if (command === 'bezierCurveTo') {
      const [x1, y1, x2, y2, x, y] = a;
      const len = Math.hypot(x1 - cx, y1 - cy) + Math.hypot(x2 - x1, y2 - y1) + Math.hypot(x - x2, y - y2);
      const steps = curveSteps(len);
      for (let i = 1; i <= steps; i++) {
        const t = i / steps;
        const u = 1 - t;
        ring.push([
          u * u * u * cx + 3 * u * u * t * x1 + 3 * u * t * t * x2 + t * t * t * x,
          u * u * u * cy + 3 * u * u * t * y1 + 3 * u * t * t * y2 + t * t * t * y,
        ]);
      }
      [cx, cy] = [x, y];
    } else if (command === 'closePath') {
      close();
    }
  }
  close();
  return rings;
}

/** Number of straight pieces for a curve whose control polygon is `length` pixels long. */
function curveSteps(length) {
  return Math.max(2, Math.min(16, Math.ceil(length / 1.5)));
}

/** Renders one glyph's signed distance field, following sdf-glyph-foundry's RenderSDF. */
function renderSDF(rings) {
  let xmin = Infinity;
  let ymin = Infinity;
  let xmax = -Infinity;
  let ymax = -Infinity;
  for (const ring of rings) {
    for (const [x, y] of ring) {
      if (x < xmin) xmin = x;
      if (y < ymin) ymin = y;
      if (x > xmax) xmax = x;
      if (y > ymax) ymax = y;
    }
  }
  xmin = Math.round(xmin);
  ymin = Math.round(ymin);
  xmax = Math.round(xmax);
  ymax = Math.round(ymax);
  const width = xmax - xmin;
  const height = ymax - ymin;
  if (!rings.length || width <= 0 || height <= 0) return null;

  // Segments in bitmap space: origin at the buffered bottom-left corner.
  const segs = [];
  for (const ring of rings) {
    for (let i = 0; i + 1 < ring.length; i++) {
      segs.push(
        ring[i][0] - xmin + BUFFER,
        ring[i][1] - ymin + BUFFER,
        ring[i + 1][0] - xmin + BUFFER,
        ring[i + 1][1] - ymin + BUFFER,
      );
    }
  }
  const bw = width + 2 * BUFFER;
  const bh = height + 2 * BUFFER;
  const bitmap = new Uint8Array(bw * bh);
  const r2 = RADIUS * RADIUS;
  const near = new Float64Array(segs.length);
  for (let y = 0; y < bh; y++) {
    const py = y + 0.5;
    // Only segments within RADIUS of this row can be nearest or cross the row's ray.
    let count = 0;
    for (let s = 0; s < segs.length; s += 4) {
      const ay = segs[s + 1];
      const by = segs[s + 3];
      if (Math.min(ay, by) <= py + RADIUS && Math.max(ay, by) >= py - RADIUS) {
        near[count++] = segs[s];
        near[count++] = ay;
        near[count++] = segs[s + 2];
        near[count++] = by;
      }
    }
    for (let x = 0; x < bw; x++) {
      const px = x + 0.5;
      let best = Infinity;
      let inside = false;
      for (let s = 0; s < count; s += 4) {
        const ax = near[s];
        const ay = near[s + 1];
        const bx = near[s + 2];
        const by = near[s + 3];
        // Even-odd ray casting for inside/outside.
        if (ay > py !== by > py && px < ((bx - ax) * (py - ay)) / (by - ay) + ax) inside = !inside;
        // Squared distance from the pixel centre to the segment.
        const dx = bx - ax;
        const dy = by - ay;
        const l2 = dx * dx + dy * dy;
        let t = l2 === 0 ? 0 : ((px - ax) * dx + (py - ay) * dy) / l2;
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        const ex = ax + t * dx - px;
        const ey = ay + t * dy - py;
        const d2 = ex * ex + ey * ey;
        if (d2 < best && d2 < r2) best = d2;
      }
      let d = Math.sqrt(best) * (256 / RADIUS);
      if (inside) d = -d;
      d += CUTOFF * 256;
      const n = d > 255 ? 255 : d < 0 ? 0 : Math.trunc(d);
      // Bitmap rows run top to bottom.
      bitmap[(bh - y - 1) * bw + x] = 255 - n;
    }
  }
  return { bitmap, width, height, left: xmin, top: ymax };
}

function writeGlyph(glyph, pbf) {
  pbf.writeVarintField(1, glyph.id);
  if (glyph.bitmap) pbf.writeBytesField(2, glyph.bitmap);
  pbf.writeVarintField(3, glyph.width);
  pbf.writeVarintField(4, glyph.height);
  pbf.writeSVarintField(5, glyph.left);
  pbf.writeSVarintField(6, glyph.top);
  pbf.writeVarintField(7, glyph.advance);
}

function encodeRange(start, glyphs) {
  const pbf = new PbfWriter();
  pbf.writeMessage(
    1,
    (stack, p) => {
      p.writeStringField(1, FONTSTACK);
      p.writeStringField(2, `${start}-${start + 255}`);
      for (const glyph of stack) p.writeMessage(3, writeGlyph, glyph);
    },
    glyphs,
  );
  return pbf.finish();
}

function main() {
  const t0 = performance.now();
  /** codepoint -> glyph record; the first subset that has a codepoint wins. */
  const glyphs = new Map();
  for (const subset of SUBSETS) {
    const font = fontkit.create(woffToSfnt(readFileSync(subsetFile(subset))));
    const scale = FONT_SIZE / font.unitsPerEm;
    // FreeType's scaled ascender, rounded up to whole pixels; fontnik reports `top` relative to it.
    const ascender = Math.ceil(font.ascent * scale);
    for (const cp of font.characterSet) {
      if (glyphs.has(cp) || cp > 0xffff) continue;
      const glyph = font.glyphForCodePoint(cp);
      if (!glyph || glyph.id === 0) continue;
      const sdf = renderSDF(pathToRings(glyph.path.commands, scale));
      const advance = Math.round(glyph.advanceWidth * scale);
      glyphs.set(
        cp,
        sdf
          ? { id: cp, bitmap: sdf.bitmap, width: sdf.width, height: sdf.height, left: sdf.left, top: sdf.top - ascender, advance }
          : { id: cp, bitmap: null, width: 0, height: 0, left: 0, top: -ascender, advance },
      );
    }
  }
  const ranges = new Map();
  for (const glyph of glyphs.values()) {
    const start = Math.floor(glyph.id / 256) * 256;
    if (!ranges.has(start)) ranges.set(start, []);
    ranges.get(start).push(glyph);
  }
  mkdirSync(outDir, { recursive: true });
  let bytes = 0;
  for (const [start, list] of [...ranges].sort((a, b) => a[0] - b[0])) {
    list.sort((a, b) => a.id - b.id);
    const data = encodeRange(start, list);
    bytes += data.length;
    writeFileSync(join(outDir, `${start}-${start + 255}.pbf`), data);
  }
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(`glyphs: ${glyphs.size} glyphs in ${ranges.size} ranges (${(bytes / 1024).toFixed(0)} KiB) -> ${outDir} in ${secs}s`);
}

main();
