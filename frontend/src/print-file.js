// The files a print is saved as: a PNG that carries its resolution (a pHYs chunk, so it prints at
// paper size), and a one-page PDF holding the composed sheet as a JPEG with the sheet's text as
// an invisible, searchable layer. The text uses the PDF's standard Chinese font STSong-Light
// (Adobe-GB1, UniGB-UCS2-H encoding): readers supply it, so nothing is embedded, and Latin
// letters come through the same encoding.

const encoder = new TextEncoder();

let crcTable = null;
function crc32(bytes) {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const b of bytes) crc = crcTable[(crc ^ b) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** The PNG bytes with a pHYs chunk saying `dpi` (inserted right after IHDR). */
export function pngWithDpi(png, dpi) {
  const perMetre = Math.round(dpi / 0.0254);
  const chunk = new Uint8Array(21);
  const view = new DataView(chunk.buffer);
  view.setUint32(0, 9);
  chunk.set(encoder.encode('pHYs'), 4);
  view.setUint32(8, perMetre);
  view.setUint32(12, perMetre);
  chunk[16] = 1; // unit: metre
  view.setUint32(17, crc32(chunk.subarray(4, 17)));
  const ihdrEnd = 8 + 8 + 13 + 4; // signature, IHDR length+type, data, CRC
  const out = new Uint8Array(png.length + chunk.length);
  out.set(png.subarray(0, ihdrEnd));
  out.set(chunk, ihdrEnd);
  out.set(png.subarray(ihdrEnd), ihdrEnd + chunk.length);
  return out;
}

/** A string as UCS-2 big-endian hex, for UniGB-UCS2-H text (characters beyond the BMP dropped). */
function ucs2Hex(text) {
  let hex = '';
  for (const ch of text) {
    const code = ch.codePointAt(0);
    if (code <= 0xffff) hex += code.toString(16).padStart(4, '0');
  }
  return `<${hex}>`;
}

/**
 * A one-page PDF of `widthPt` × `heightPt` points: the JPEG `jpeg` ({bytes, width, height})
 * filling the page, and `texts` ([{text, x, y, size}] in points from the top-left) as invisible
 * text over the places they are drawn. Returns the file as a Blob.
 */
export function pdfWithImage({ widthPt, heightPt, jpeg, texts = [], title = '' }) {
  const w = widthPt.toFixed(2);
  const hgt = heightPt.toFixed(2);
  const lines = texts
    .filter((item) => item.text)
    .map((item) => {
      const y = heightPt - item.y - item.size;
      return `BT /F1 ${item.size.toFixed(2)} Tf 3 Tr 1 0 0 1 ${item.x.toFixed(2)} ${y.toFixed(2)} Tm ${ucs2Hex(item.text)} Tj ET`;
    });
  const content = encoder.encode(`q ${w} 0 0 ${hgt} 0 0 cm /Im0 Do Q\n${lines.join('\n')}\n`);
  const objects = [
    encoder.encode('<< /Type /Catalog /Pages 2 0 R >>'),
    encoder.encode('<< /Type /Pages /Kids [3 0 R] /Count 1 >>'),
    encoder.encode(
      `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 ${w} ${hgt}] /Contents 4 0 R ` +
        '/Resources << /XObject << /Im0 5 0 R >> /Font << /F1 6 0 R >> >> >>',
    ),
    [encoder.encode(`<< /Length ${content.length} >>\nstream\n`), content, encoder.encode('\nendstream')],
    [
      encoder.encode(
        `<< /Type /XObject /Subtype /Image /Width ${jpeg.width} /Height ${jpeg.height} /ColorSpace /DeviceRGB ` +
          `/BitsPerComponent 8 /Filter /DCTDecode /Length ${jpeg.bytes.length} >>\nstream\n`,
      ),
      jpeg.bytes,
      encoder.encode('\nendstream'),
    ],
    encoder.encode('<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H /DescendantFonts [7 0 R] >>'),
    encoder.encode(
      '<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light ' +
        '/CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 4 >> /FontDescriptor 8 0 R >>',
    ),
    encoder.encode(
      '<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [-25 -254 1000 880] ' +
        '/ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 /StemV 93 >>',
    ),
    encoder.encode(`<< /Title ${ucs2HexWithBom(title)} /Producer (EcoMap Xiamen) >>`),
  ];
  const parts = [encoder.encode('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n')];
  let length = parts[0].length;
  const offsets = [];
  objects.forEach((body, i) => {
    offsets.push(length);
    const chunks = [encoder.encode(`${i + 1} 0 obj\n`), ...(Array.isArray(body) ? body : [body]), encoder.encode('\nendobj\n')];
    for (const c of chunks) {
      parts.push(c);
      length += c.length;
    }
  });
  const xref = [`xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`, ...offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`)];
  parts.push(
    encoder.encode(
      `${xref.join('')}trailer\n<< /Size ${objects.length + 1} /Root 1 0 R /Info ${objects.length} 0 R >>\nstartxref\n${length}\n%%EOF\n`,
    ),
  );
  return new Blob(parts, { type: 'application/pdf' });
}

/** A PDF text string (document information) as UTF-16BE with its byte-order mark. */
function ucs2HexWithBom(text) {
  return `<feff${ucs2Hex(text).slice(1, -1)}>`;
}
