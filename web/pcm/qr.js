// The QR code of a room's link: loaded only when someone asks to see it (a chunk of its own,
// `import('./qr.js')`), so that nobody else downloads the QR code encoder.

import qrcode from 'qrcode-generator';

// `text` as a QR code: the side of the square in modules, with the standard quiet zone of 4 modules
// around the code, and an SVG path of the dark modules.
export function qrPath(text) {
  const qr = qrcode(0, 'M');
  qr.addData(text);
  qr.make();
  const n = qr.getModuleCount();
  let d = '';
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) if (qr.isDark(r, c)) d += `M${c + 4},${r + 4}h1v1h-1z`;
  }
  return { size: n + 8, d };
}
